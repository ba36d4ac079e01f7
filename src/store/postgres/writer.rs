//! Group commit for PostgreSQL's event-writing changes (creates and status changes). A tenant's
//! `tenant_seq` row is locked from the moment an event takes its number until the commit, so
//! one transaction per event serialises every writer of the tenant behind one WAL flush each
//! (~300 events/s here). Instead one task per instance takes whatever changes are queued,
//! writes their session rows in order inside one transaction, then numbers all of the batch's
//! events with one `tenant_seq` update per tenant (tenants in sorted order, so two instances'
//! batches never wait on each other in a cycle), inserts every outbox row in one statement and
//! sends one `pg_notify` per tenant. The row lock is held for a few statements instead of a
//! whole transaction per event, and a flush carries dozens of events.
//!
//! Replies go out only after the commit, so an event is never published before it is durable.
//! If the batch fails (a deadlock with another instance's cancel, a dropped connection), each
//! change is retried on its own, so one bad change cannot fail its neighbours.

use std::collections::BTreeMap;

use chrono::Utc;
use sqlx::{Connection, PgConnection, PgPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{copy_error, Notice, CHANNEL};
use crate::domain::{Session, SessionId, Status};
use crate::store::{
    bind_session, encode, ms, render_frame, stored_frame, Created, Event, NewSession, StatusWrite,
    StoreError, SESSION_COLUMNS,
};

/// Changes one transaction may carry; more wait for the next commit.
const MAX_BATCH: usize = 256;

/// One change, as data, so that it can be run again on its own if its batch fails.
pub(super) enum Change {
    Create(Box<NewSession>),
    Apply(StatusWrite),
}

pub(super) enum Reply {
    Created(oneshot::Sender<Result<Created, StoreError>>),
    Applied(oneshot::Sender<Result<Option<Event>, StoreError>>),
}

pub(super) struct Op {
    pub change: Change,
    pub reply: Reply,
}

/// What a change came to inside the transaction.
pub(super) enum Done {
    /// An event to number: the session as written.
    Event {
        tenant: String,
        id: SessionId,
        status: Status,
        body: String,
    },
    /// `apply` found the session no longer in the expected status.
    Unchanged,
    Existing(Box<Session>),
    Mismatch,
    /// Another writer holds the idempotency key: read it after the commit.
    Conflict,
}

impl Done {
    /// The event of `session`, written as `body`.
    fn event(session: &Session, body: String) -> Self {
        Done::Event {
            tenant: session.tenant.clone(),
            id: session.id.clone(),
            status: session.status,
            body,
        }
    }
}

/// Runs until every sender is gone.
pub(super) async fn run(pool: PgPool, instance: String, mut rx: mpsc::Receiver<Op>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let ops = std::mem::take(&mut batch);
        metrics::histogram!("kyso_postgres_batch_writes").record(ops.len() as f64);
        let changes: Vec<&Change> = ops.iter().map(|op| &op.change).collect();
        match write(&pool, &instance, &changes).await {
            Ok(results) => answer(&pool, ops, results).await,
            // The commit's outcome is unknown (the connection went during COMMIT): running
            // the changes again could misreport a committed change as lost to another writer.
            Err(Failed::Commit(e)) => ops
                .into_iter()
                .for_each(|op| fail(op.reply, copy_error(&e))),
            Err(Failed::Before(e)) if ops.len() > 1 => {
                tracing::warn!(error = %e, writes = ops.len(), "PostgreSQL write batch failed; retrying each write alone");
                for op in ops {
                    let result = write(&pool, &instance, &[&op.change]).await;
                    match result {
                        Ok(results) => answer(&pool, vec![op], results).await,
                        Err(Failed::Before(e) | Failed::Commit(e)) => fail(op.reply, e),
                    }
                }
            }
            Err(Failed::Before(e)) => ops
                .into_iter()
                .for_each(|op| fail(op.reply, copy_error(&e))),
        }
    }
}

fn fail(reply: Reply, e: StoreError) {
    match reply {
        Reply::Created(tx) => drop(tx.send(Err(e))),
        Reply::Applied(tx) => drop(tx.send(Err(e))),
    }
}

/// Answers each caller once the batch is durable.
async fn answer(pool: &PgPool, ops: Vec<Op>, results: Vec<(Done, Option<Event>)>) {
    for (op, (done, event)) in ops.into_iter().zip(results) {
        match (op.reply, done) {
            (Reply::Applied(tx), Done::Unchanged) => drop(tx.send(Ok(None))),
            (Reply::Applied(tx), _) => drop(tx.send(Ok(event))),
            (Reply::Created(tx), Done::Existing(s)) => drop(tx.send(Ok(Created::Existing(s)))),
            (Reply::Created(tx), Done::Mismatch) => drop(tx.send(Ok(Created::IdempotencyMismatch))),
            (Reply::Created(tx), Done::Conflict) => {
                let Change::Create(new) = op.change else {
                    continue;
                };
                drop(tx.send(super::existing(pool, &new).await));
            }
            (Reply::Created(tx), _) => drop(tx.send(match event {
                Some(ev) => Ok(Created::New(ev)),
                None => Err(StoreError::Corrupt("a created session got no event".into())),
            })),
        }
    }
}

/// Why a batch failed: before its COMMIT was sent (nothing was written), or at the COMMIT
/// (it may or may not have been written).
enum Failed {
    Before(StoreError),
    Commit(StoreError),
}

/// Writes `changes` in one transaction; returns what each came to, with its event.
async fn write(
    pool: &PgPool,
    instance: &str,
    changes: &[&Change],
) -> Result<Vec<(Done, Option<Event>)>, Failed> {
    let mut conn = pool.acquire().await.map_err(|e| Failed::Before(e.into()))?;
    let mut tx = conn.begin().await.map_err(|e| Failed::Before(e.into()))?;
    let (done, events) = stage(&mut tx, instance, changes)
        .await
        .map_err(Failed::Before)?;
    tx.commit().await.map_err(|e| Failed::Commit(e.into()))?;
    Ok(done.into_iter().zip(events).collect())
}

/// Runs the batch's statements inside its transaction.
async fn stage(
    tx: &mut PgConnection,
    instance: &str,
    changes: &[&Change],
) -> Result<(Vec<Done>, Vec<Option<Event>>), StoreError> {
    let mut done = Vec::with_capacity(changes.len());
    // Runs of status changes, and of creates without an idempotency key, go in one statement
    // each: every statement is a round trip during which the transaction holds its locks.
    let mut rest = changes;
    while let Some(first) = rest.first() {
        let run = run_len(rest);
        match first {
            Change::Apply(_) => done.extend(apply_many(tx, &rest[..run]).await?),
            Change::Create(new) if new.idempotency_key.is_none() => {
                done.extend(create_many(tx, instance, &rest[..run]).await?)
            }
            Change::Create(new) => done.push(create(tx, instance, new).await?),
        }
        rest = &rest[run..];
    }
    let events = number(tx, instance, &done).await?;
    Ok((done, events))
}

/// How many changes from the start of `changes` one statement can carry: changes of the same
/// kind, each on a different session (a second change of a session must see the first).
fn run_len(changes: &[&Change]) -> usize {
    fn groupable(c: &Change) -> Option<(bool, &str)> {
        match c {
            Change::Apply(w) => Some((true, w.session.id.as_str())),
            Change::Create(new) if new.idempotency_key.is_none() => {
                Some((false, new.session.id.as_str()))
            }
            Change::Create(_) => None,
        }
    }
    let Some((kind, _)) = groupable(changes[0]) else {
        return 1;
    };
    let mut ids = std::collections::HashSet::new();
    changes
        .iter()
        .take(MAX_BATCH)
        .map_while(|c| groupable(c).filter(|(k, id)| *k == kind && ids.insert(*id)))
        .count()
}

/// Creates without an idempotency key, in one INSERT (leased ones leased to `instance`).
async fn create_many(
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
             request_hash, created_at, expires_at, next_check_at, body, lease_owner, lease_until)
         SELECT id, tenant, provider, signer, status, reference, hash, created, expires,
                COALESCE(lease, created), body,
                CASE WHEN lease IS NULL THEN NULL ELSE $12::text END, lease
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

async fn create(
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
pub(super) async fn by_key(
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
        "INSERT INTO sessions ({SESSION_COLUMNS}, lease_owner, lease_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
    )
});

/// Inserts the session (a leased one leased to `instance`); `Conflict` when another writer
/// holds its idempotency key.
pub(super) async fn insert(
    tx: &mut PgConnection,
    instance: &str,
    new: &NewSession,
) -> Result<Done, StoreError> {
    let s = &new.session;
    let body = encode(s)?;
    let inserted = bind_session(sqlx::query(INSERT_SESSION.as_str()), new, &body)
        .bind(new.lease_until.map(|_| instance))
        .bind(new.lease_until.map(ms))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if inserted == 0 {
        return Ok(Done::Conflict);
    }
    Ok(Done::event(s, body))
}

/// Status changes of distinct sessions in one UPDATE; `Unchanged` where a session no longer
/// had its expected status.
async fn apply_many(tx: &mut PgConnection, changes: &[&Change]) -> Result<Vec<Done>, StoreError> {
    let mut c = ApplyColumns::default();
    for change in changes {
        if let Change::Apply(w) = change {
            c.ids.push(w.session.id.as_str());
            c.expected.push(w.expected.as_str());
            c.statuses.push(w.session.status.as_str());
            c.bodies.push(&w.body);
            c.next.push(w.next_check_at);
            c.work.push(w.work.as_deref());
        }
    }
    // Row locks in id order, as lease releases take them, so two writers never wait on each
    // other in a cycle.
    let mut sorted = c.ids.clone();
    sorted.sort_unstable();
    // Prepared, as every statement here: the connections run with `enable_seqscan = off`
    // (see `PgStore::open`), so the generic plan cached while `sessions` was small is an
    // index scan too.
    sqlx::query("SELECT 1 FROM sessions WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&sorted)
        .execute(&mut *tx)
        .await?;
    let updated: Vec<String> = sqlx::query_scalar(
        // A callback that came while this change was in flight makes the next check due
        // now rather than at the scheduled time.
        "UPDATE sessions s SET status = v.status, body = v.body,
             next_check_at = CASE WHEN s.woken AND v.next IS NOT NULL
                                  THEN LEAST(v.next, $7) ELSE v.next END,
             work = v.work, lease_owner = NULL, lease_until = NULL, woken = FALSE
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[])
              AS v(id, expected, status, body, next, work)
         WHERE s.id = v.id AND s.status = v.expected
         RETURNING s.id",
    )
    .bind(&c.ids)
    .bind(&c.expected)
    .bind(&c.statuses)
    .bind(&c.bodies)
    .bind(&c.next)
    .bind(&c.work)
    .bind(ms(Utc::now()))
    .fetch_all(&mut *tx)
    .await?;
    let updated: std::collections::HashSet<&str> = updated.iter().map(String::as_str).collect();
    Ok(changes
        .iter()
        .map(|change| match change {
            Change::Apply(w) if updated.contains(w.session.id.as_str()) => {
                Done::event(&w.session, w.body.clone())
            }
            _ => Done::Unchanged,
        })
        .collect())
}

#[derive(Default)]
struct ApplyColumns<'a> {
    ids: Vec<&'a str>,
    expected: Vec<&'a str>,
    statuses: Vec<&'a str>,
    bodies: Vec<&'a str>,
    next: Vec<Option<i64>>,
    work: Vec<Option<&'a str>>,
}

/// The batch's outbox rows, column by column (inserted with one `unnest`).
#[derive(Default)]
struct OutboxRows<'a> {
    tenants: Vec<&'a str>,
    seqs: Vec<i64>,
    ids: Vec<&'a str>,
    statuses: Vec<&'a str>,
    /// `None` for a terminal event (see [`stored_frame`]).
    frames: Vec<Option<String>>,
}

/// Numbers the batch's events per tenant, writes them to the outbox and announces them.
/// Returns each change's event (in the order of `done`).
pub(super) async fn number(
    tx: &mut PgConnection,
    instance: &str,
    done: &[Done],
) -> Result<Vec<Option<Event>>, StoreError> {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for d in done {
        if let Done::Event { tenant, .. } = d {
            *counts.entry(tenant.as_str()).or_default() += 1;
        }
    }
    // Each tenant's first number in this batch; tenants locked in sorted order.
    let mut next: BTreeMap<&str, i64> = BTreeMap::new();
    let mut notices = Vec::with_capacity(counts.len());
    let now = ms(Utc::now());
    for (&tenant, &count) in &counts {
        let last: i64 = sqlx::query_scalar(
            "INSERT INTO tenant_seq (tenant, last_seq) VALUES ($1, $2)
             ON CONFLICT (tenant) DO UPDATE SET last_seq = tenant_seq.last_seq + $2
             RETURNING last_seq",
        )
        .bind(tenant)
        .bind(count)
        .fetch_one(&mut *tx)
        .await?;
        next.insert(tenant, last - count + 1);
        let notice = Notice {
            i: instance.to_owned(),
            t: tenant.to_owned(),
            f: Some(last - count + 1),
            s: last,
            at: now,
        };
        notices
            .push(serde_json::to_string(&notice).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    }
    let mut events = Vec::with_capacity(done.len());
    let mut rows = OutboxRows::default();
    for d in done {
        let Done::Event {
            tenant,
            id,
            status,
            body,
        } = d
        else {
            events.push(None);
            continue;
        };
        let slot = next
            .get_mut(tenant.as_str())
            .expect("every event's tenant was counted");
        let seq = *slot;
        *slot += 1;
        let frame = render_frame(seq, body);
        rows.tenants.push(tenant);
        rows.seqs.push(seq);
        rows.ids.push(id.as_str());
        rows.statuses.push(status.as_str());
        let event = Event {
            tenant: tenant.as_str().into(),
            seq,
            session_id: id.clone(),
            status: *status,
            frame: frame.into(),
        };
        rows.frames.push(stored_frame(&event).map(str::to_owned));
        events.push(Some(event));
    }
    if rows.tenants.is_empty() {
        return Ok(events);
    }
    sqlx::query(
        "INSERT INTO outbox (tenant, seq, session_id, status, frame, created_at)
         SELECT t, s, i, st, f, $6
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[])
              AS r(t, s, i, st, f)",
    )
    .bind(&rows.tenants)
    .bind(&rows.seqs)
    .bind(&rows.ids)
    .bind(&rows.statuses)
    .bind(&rows.frames)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n")
        .bind(CHANNEL)
        .bind(&notices)
        .execute(&mut *tx)
        .await?;
    Ok(events)
}
