//! The statements behind each SQLite write, run by [`super::writer`] inside its batch's
//! transaction, and the per-tenant event sequence the writer keeps in memory.

use std::collections::HashMap;

use chrono::Utc;
use sqlx::{Row, SqliteConnection};

use super::super::{
    bind_session, decode, encode, ms, render_frame, stored_frame, Created, Event, NewSession,
    StatusWrite, StoreError, SESSION_COLUMNS,
};
use crate::domain::{Session, SessionId, Status};
use crate::store::claim::{claim_where, Claim};

#[path = "sql_wake.rs"]
mod wake;
pub(super) use wake::{mark_woken, wake_many, WakeClaim, Woke};

/// Each tenant's last committed-or-batched `seq`, the tenants this batch moved, and the
/// batch's outbox rows, written together just before the commit (one statement per few
/// dozen events instead of one per event).
#[derive(Default)]
pub(super) struct Seqs {
    last: HashMap<String, i64>,
    moved: Vec<String>,
    outbox: Vec<Event>,
}

/// Rows per multi-row statement, largest first: any count splits into pieces of these sizes,
/// so each statement shape is prepared once and kept (3 to 13 parameters a row, far under
/// SQLite's limit of 32,766).
const PIECES: [usize; 4] = [64, 16, 4, 1];

/// Splits `items` into pieces whose lengths are all in [`PIECES`].
fn pieces<T>(mut items: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    for size in PIECES {
        while items.len() >= size {
            let (piece, rest) = items.split_at(size);
            out.push(piece);
            items = rest;
        }
    }
    out
}

impl Seqs {
    pub(super) async fn next(
        &mut self,
        conn: &mut SqliteConnection,
        tenant: &str,
    ) -> Result<i64, StoreError> {
        let last = match self.last.get(tenant) {
            Some(v) => *v,
            None => sqlx::query_scalar("SELECT last_seq FROM tenant_seq WHERE tenant = ?")
                .bind(tenant)
                .fetch_optional(&mut *conn)
                .await?
                .unwrap_or(0),
        };
        if !self.moved.iter().any(|t| t == tenant) {
            self.moved.push(tenant.to_owned());
        }
        self.last.insert(tenant.to_owned(), last + 1);
        Ok(last + 1)
    }

    /// Persists the batch's outbox rows and the moved tenants' sequences in the batch's
    /// transaction.
    pub(super) async fn write(&mut self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        let now = ms(Utc::now());
        let rows = std::mem::take(&mut self.outbox);
        for chunk in pieces(&rows) {
            let values = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO outbox (tenant, seq, session_id, status, frame, created_at)
                 VALUES {values}"
            );
            let mut q = sqlx::query(&sql);
            for ev in chunk {
                q = q
                    .bind(&*ev.tenant)
                    .bind(ev.seq)
                    .bind(ev.session_id.as_str())
                    .bind(ev.status.as_str())
                    .bind(stored_frame(ev))
                    .bind(now);
            }
            q.execute(&mut *conn).await?;
        }
        for tenant in self.moved.drain(..) {
            let last = self.last.get(&tenant).copied().unwrap_or(0);
            sqlx::query(
                "INSERT INTO tenant_seq (tenant, last_seq) VALUES (?, ?)
                 ON CONFLICT (tenant) DO UPDATE SET last_seq = excluded.last_seq",
            )
            .bind(&tenant)
            .bind(last)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

const OPEN: &str = "('pending','awaiting_user')";

pub(super) async fn create(
    conn: &mut SqliteConnection,
    seqs: &mut Seqs,
    new: &NewSession,
) -> Result<Created, StoreError> {
    let s = &new.session;
    if let Some(earlier) = by_key(&mut *conn, new).await? {
        return Ok(earlier);
    }
    if !new.allow_concurrent {
        let busy: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT 1 FROM sessions WHERE tenant = ? AND signer = ?
             AND next_check_at IS NOT NULL AND status IN {OPEN} LIMIT 1"
        ))
        .bind(&s.tenant)
        .bind(&s.signer)
        .fetch_optional(&mut *conn)
        .await?;
        if busy.is_some() {
            return Ok(Created::SignerBusy);
        }
    }
    let mut created = create_many(conn, seqs, &[new]).await?;
    created
        .pop()
        .ok_or_else(|| StoreError::Corrupt("a create wrote no row".into()))
}

/// The answer to a create whose idempotency key an earlier create used, if one did.
pub(super) async fn by_key(
    conn: &mut SqliteConnection,
    new: &NewSession,
) -> Result<Option<Created>, StoreError> {
    let Some(key) = &new.idempotency_key else {
        return Ok(None);
    };
    let row = sqlx::query(
        "SELECT request_hash, body FROM sessions WHERE tenant = ? AND idempotency_key = ?",
    )
    .bind(&new.session.tenant)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let hash: Vec<u8> = row.try_get("request_hash")?;
    if hash != new.request_hash {
        return Ok(Some(Created::IdempotencyMismatch));
    }
    let session = decode(row.try_get("body")?)?;
    Ok(Some(Created::Existing(Box::new(session))))
}

/// A create that needs no look at other rows: no idempotency key to find, concurrent sessions
/// of the signer allowed. Such creates queued together are written by [`create_many`].
pub(super) fn plain(new: &NewSession) -> bool {
    new.idempotency_key.is_none() && new.allow_concurrent
}

/// Inserts new sessions (a leased one claimed), a multi-row INSERT per piece of [`PIECES`]
/// rows, with their first events. The caller has done any look at other rows.
pub(super) async fn create_many(
    conn: &mut SqliteConnection,
    seqs: &mut Seqs,
    news: &[&NewSession],
) -> Result<Vec<Created>, StoreError> {
    let mut created = Vec::with_capacity(news.len());
    for piece in pieces(news) {
        let bodies = piece
            .iter()
            .map(|new| encode(&new.session))
            .collect::<Result<Vec<_>, _>>()?;
        let row = format!("({})", ["?"; 13].join(", "));
        let sql = format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}, claimed) VALUES {}",
            vec![row.as_str(); piece.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (new, body) in piece.iter().zip(&bodies) {
            q = bind_session(q, new, body).bind(new.lease_until.is_some());
        }
        q.execute(&mut *conn).await?;
        for (new, body) in piece.iter().zip(&bodies) {
            created.push(Created::New(
                write_event(conn, seqs, &new.session, body).await?,
            ));
        }
    }
    Ok(created)
}

/// The next seq of the tenant and its outbox row, written with the batch.
async fn write_event(
    conn: &mut SqliteConnection,
    seqs: &mut Seqs,
    session: &Session,
    body: &str,
) -> Result<Event, StoreError> {
    let seq = seqs.next(conn, &session.tenant).await?;
    let event = Event {
        tenant: session.tenant.as_str().into(),
        seq,
        session_id: session.id.clone(),
        status: session.status,
        frame: render_frame(seq, body).into(),
    };
    seqs.outbox.push(event.clone());
    Ok(event)
}

/// Status changes of distinct sessions, a statement per piece of [`PIECES`] rows; returns
/// each change's event, `None` where the session no longer had its expected status.
pub(super) async fn apply_many(
    conn: &mut SqliteConnection,
    seqs: &mut Seqs,
    rows: &[StatusWrite],
) -> Result<Vec<Option<Event>>, StoreError> {
    let mut events = Vec::with_capacity(rows.len());
    for piece in pieces(rows) {
        events.extend(apply_piece(conn, seqs, piece).await?);
    }
    Ok(events)
}

async fn apply_piece(
    conn: &mut SqliteConnection,
    seqs: &mut Seqs,
    rows: &[StatusWrite],
) -> Result<Vec<Option<Event>>, StoreError> {
    let values = vec!["(?, ?, ?, ?, ?, ?)"; rows.len()].join(", ");
    let sql = format!(
        "UPDATE sessions SET status = v.column3, body = v.column4,
             next_check_at = CASE WHEN sessions.woken = 1 AND v.column5 IS NOT NULL
                                  THEN MIN(v.column5, sessions.created_at) ELSE v.column5 END,
             work = v.column6, claimed = 0, woken = 0
         FROM (VALUES {values}) AS v
         WHERE sessions.id = v.column1 AND sessions.status = v.column2
         RETURNING sessions.id"
    );
    let mut q = sqlx::query(&sql);
    for r in rows {
        q = q
            .bind(r.session.id.as_str())
            .bind(r.expected.as_str())
            .bind(r.session.status.as_str())
            .bind(&r.body)
            .bind(r.next_check_at)
            .bind(r.work.as_deref());
    }
    let updated: std::collections::HashSet<String> = q
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?;
    let mut events = Vec::with_capacity(rows.len());
    for r in rows {
        events.push(if updated.contains(r.session.id.as_str()) {
            Some(write_event(conn, seqs, &r.session, &r.body).await?)
        } else {
            None
        });
    }
    Ok(events)
}

/// Writes the writer groups for one call of [`apply_many`], [`create_many`] or [`wake_many`]:
/// their largest statement.
pub(super) const APPLY_CHUNK: usize = PIECES[0];

pub(super) async fn reschedule(
    conn: &mut SqliteConnection,
    id: &SessionId,
    expected: Status,
    next_check_at: i64,
    work: Option<&str>,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE sessions
         SET next_check_at = CASE WHEN woken = 1 THEN MIN(?, created_at) ELSE ? END,
             woken = 0, work = COALESCE(?, work), claimed = 0
         WHERE id = ? AND status = ?",
    )
    .bind(ms(Utc::now()))
    .bind(next_check_at)
    .bind(work)
    .bind(id.as_str())
    .bind(expected.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// A claim as the writer carries it (owned).
#[derive(Debug)]
pub(in crate::store::sqlite) struct OwnedClaim {
    pub providers: Vec<String>,
    pub tenant: Option<String>,
    pub only_expired: bool,
}

impl OwnedClaim {
    pub fn of(claim: &Claim<'_>) -> Self {
        Self {
            providers: claim.providers.to_vec(),
            tenant: claim.tenant.map(str::to_owned),
            only_expired: claim.only_expired,
        }
    }
}

pub(super) fn placeholder(n: u8) -> String {
    format!("?{n}")
}

pub(super) async fn claim(
    conn: &mut SqliteConnection,
    now: i64,
    until: i64,
    limit: u32,
    owned: &OwnedClaim,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let claim = Claim {
        providers: &owned.providers,
        tenant: owned.tenant.as_deref(),
        only_expired: owned.only_expired,
    };
    let list = |n: String| format!("provider IN (SELECT value FROM json_each({n}))");
    let sql = format!(
        "UPDATE sessions SET next_check_at = ?1, claimed = 1, woken = 0
         WHERE id IN (SELECT id FROM sessions WHERE {})
         RETURNING body, work",
        claim_where(&claim, placeholder, 2, list, "1")
    );
    let mut q = sqlx::query(&sql).bind(until).bind(now).bind(limit);
    q = match claim.providers {
        [] => q,
        [one] => q.bind(one.as_str()),
        many => {
            q.bind(serde_json::to_string(many).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        }
    };
    if let Some(tenant) = claim.tenant {
        q = q.bind(tenant);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("body")?, r.try_get("work")?)))
        .collect()
}

/// Runs `sql` over `ids` in chunks that stay under SQLite's bound-parameter limit.
pub(super) async fn update_ids(
    conn: &mut SqliteConnection,
    sql: &str,
    at: i64,
    ids: &[SessionId],
) -> Result<(), StoreError> {
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql = sql.replace("(…)", &format!("({marks})"));
        let mut q = sqlx::query(&sql).bind(at);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Stores a certificate bundle under its digest; one there already is marked stored now.
pub(super) async fn put_bundle(
    conn: &mut SqliteConnection,
    digest: &str,
    bundle: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO cert_bundles (digest, bundle, created_at) VALUES (?, ?, ?)
         ON CONFLICT (digest) DO UPDATE SET created_at = excluded.created_at",
    )
    .bind(digest)
    .bind(bundle)
    .bind(ms(Utc::now()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{pieces, PIECES};

    #[test]
    fn pieces_keep_order_and_use_only_the_prepared_sizes() {
        for n in 0..200usize {
            let items: Vec<usize> = (0..n).collect();
            let split = pieces(&items);
            assert!(split.iter().all(|p| PIECES.contains(&p.len())), "{n}");
            assert_eq!(split.concat(), items, "{n}");
        }
        let lens: Vec<usize> = pieces(&[0u8; 85]).iter().map(|p| p.len()).collect();
        assert_eq!(lens, vec![64, 16, 4, 1]);
    }
}
