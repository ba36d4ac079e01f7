//! The statements that write new sessions inside a writer batch: creates without an
//! idempotency key in one `unnest` INSERT, and a create with a key looked up by that key first
//! and inserted on its own. [`by_key`] and [`insert`] also serve `PgStore::create`'s
//! transaction for creates that take a signer's advisory lock.

use sqlx::{PgConnection, Row};

use super::{Change, Done};
use crate::store::{
    bind_session, encode, ms, NewSession, StoreError, CREATED_EPOCH, SESSION_COLUMNS,
};

/// Creates without an idempotency key, in one INSERT (leased ones leased to `instance`).
pub(super) async fn create_many(
    tx: &mut PgConnection,
    instance: &str,
    changes: &[&Change],
) -> Result<Vec<Done>, StoreError> {
    let mut c = CreateColumns::default();
    let mut done = Vec::with_capacity(changes.len());
    for change in changes {
        let Change::Create(new) = change else {
            continue;
        };
        let s = &new.session;
        let body = encode(s)?;
        c.ids.push(s.id.as_str());
        c.tenants.push(&s.tenant);
        c.providers.push(&s.provider);
        c.signers.push(&s.signer);
        c.statuses.push(s.status.as_str());
        c.references.push(s.reference.as_deref());
        c.hashes.push(new.request_hash.as_slice());
        c.created.push(ms(s.created_at));
        c.expires.push(ms(s.expires_at));
        c.leases.push(new.lease_until.map(ms));
        c.bodies.push(body.clone());
        done.push(Done::event(s, body));
    }
    sqlx::query(
        // A leased session's next check is its lease's end, as in `bind_session`.
        "INSERT INTO sessions (id, tenant, provider, signer, status, reference,
             request_hash, created_at, expires_at, next_check_at, body, lease_owner, lease_until,
             lease_epoch)
         SELECT id, tenant, provider, signer, status, reference, hash, created, expires,
                COALESCE(lease, created), body,
                CASE WHEN lease IS NULL THEN NULL ELSE $12::text END, lease,
                CASE WHEN lease IS NULL THEN 0 ELSE $13::bigint END
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::bytea[], $8::bigint[], $9::bigint[], $10::text[], $11::bigint[])
              AS r(id, tenant, provider, signer, status, reference, hash, created, expires,
                   body, lease)",
    )
    .bind(&c.ids)
    .bind(&c.tenants)
    .bind(&c.providers)
    .bind(&c.signers)
    .bind(&c.statuses)
    .bind(&c.references)
    .bind(&c.hashes)
    .bind(&c.created)
    .bind(&c.expires)
    .bind(&c.bodies)
    .bind(&c.leases)
    .bind(instance)
    .bind(CREATED_EPOCH)
    .execute(&mut *tx)
    .await?;
    Ok(done)
}

#[derive(Default)]
struct CreateColumns<'a> {
    ids: Vec<&'a str>,
    tenants: Vec<&'a str>,
    providers: Vec<&'a str>,
    signers: Vec<&'a str>,
    statuses: Vec<&'a str>,
    references: Vec<Option<&'a str>>,
    hashes: Vec<&'a [u8]>,
    created: Vec<i64>,
    expires: Vec<i64>,
    leases: Vec<Option<i64>>,
    bodies: Vec<String>,
}

pub(super) async fn create(
    tx: &mut PgConnection,
    instance: &str,
    new: &NewSession,
) -> Result<Done, StoreError> {
    match by_key(tx, new).await? {
        Some(done) => Ok(done),
        None => insert(tx, instance, new).await,
    }
}

/// The session the create's idempotency key already names (or a mismatch), if any.
pub(in crate::store::postgres) async fn by_key(
    tx: &mut PgConnection,
    new: &NewSession,
) -> Result<Option<Done>, StoreError> {
    let Some(key) = &new.idempotency_key else {
        return Ok(None);
    };
    let row = sqlx::query(
        "SELECT request_hash, body FROM sessions WHERE tenant = $1 AND idempotency_key = $2",
    )
    .bind(&new.session.tenant)
    .bind(key)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let stored: Vec<u8> = row.try_get("request_hash")?;
    if stored != new.request_hash {
        return Ok(Some(Done::Mismatch));
    }
    Ok(Some(Done::Existing(Box::new(crate::store::decode(
        row.try_get("body")?,
    )?))))
}

static INSERT_SESSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO sessions ({SESSION_COLUMNS}, lease_owner, lease_until, lease_epoch)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
    )
});

/// Inserts the session (a leased one leased to `instance`); `Conflict` when another writer
/// holds its idempotency key.
pub(in crate::store::postgres) async fn insert(
    tx: &mut PgConnection,
    instance: &str,
    new: &NewSession,
) -> Result<Done, StoreError> {
    let s = &new.session;
    let body = encode(s)?;
    let inserted = bind_session(sqlx::query(INSERT_SESSION.as_str()), new, &body)
        .bind(new.lease_until.map(|_| instance))
        .bind(new.lease_until.map(ms))
        .bind(new.lease_until.map_or(0, |_| CREATED_EPOCH))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if inserted == 0 {
        return Ok(Done::Conflict);
    }
    Ok(Done::event(s, body))
}
