//! The statements behind each SQLite write, run by [`super::writer`] inside its batch's
//! transaction, and the per-tenant event sequence the writer keeps in memory.

use std::collections::HashMap;

use chrono::Utc;
use sqlx::{Row, SqliteConnection};

use super::super::{decode, encode, ms, render_frame, Created, Event, NewSession, StoreError};
use crate::domain::{Session, SessionId, Status};

/// Each tenant's last committed-or-batched `seq`, and the tenants this batch moved.
#[derive(Default)]
pub(super) struct Seqs {
    last: HashMap<String, i64>,
    moved: Vec<String>,
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

    /// Persists the moved tenants' sequences in the batch's transaction.
    pub(super) async fn write(&mut self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
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
    if let Some(key) = &new.idempotency_key {
        let row = sqlx::query(
            "SELECT request_hash, body FROM sessions WHERE tenant = ? AND idempotency_key = ?",
        )
        .bind(&s.tenant)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = row {
            let hash: Vec<u8> = row.try_get("request_hash")?;
            if hash != new.request_hash {
                return Ok(Created::IdempotencyMismatch);
            }
            return Ok(Created::Existing(Box::new(decode(row.try_get("body")?)?)));
        }
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
    let body = encode(s)?;
    sqlx::query(
        "INSERT INTO sessions (id, tenant, provider, signer, status, reference,
             idempotency_key, request_hash, created_at, expires_at, next_check_at, body)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(s.id.as_str())
    .bind(&s.tenant)
    .bind(&s.provider)
    .bind(&s.signer)
    .bind(s.status.as_str())
    .bind(&s.reference)
    .bind(&new.idempotency_key)
    .bind(new.request_hash.as_slice())
    .bind(ms(s.created_at))
    .bind(ms(s.expires_at))
    .bind(ms(s.created_at))
    .bind(&body)
    .execute(&mut *conn)
    .await?;
    Ok(Created::New(write_event(conn, seqs, s, &body).await?))
}

pub(super) async fn apply(
    conn: &mut SqliteConnection,
    seqs: &mut Seqs,
    s: &Session,
    body: &str,
    expected: Status,
    next_check_at: Option<i64>,
    work: Option<&str>,
) -> Result<Option<Event>, StoreError> {
    let updated = sqlx::query(
        // A callback that came while this change was in flight makes the next check due now.
        "UPDATE sessions SET status = ?1, body = ?2,
             next_check_at = CASE WHEN woken = 1 AND ?3 IS NOT NULL THEN MIN(?3, ?7) ELSE ?3 END,
             work = ?4, claimed = 0, woken = 0
         WHERE id = ?5 AND status = ?6",
    )
    .bind(s.status.as_str())
    .bind(body)
    .bind(next_check_at)
    .bind(work)
    .bind(s.id.as_str())
    .bind(expected.as_str())
    .bind(ms(Utc::now()))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(None);
    }
    Ok(Some(write_event(conn, seqs, s, body).await?))
}

/// The next seq of the tenant and its outbox row, in the batch's transaction.
async fn write_event(
    conn: &mut SqliteConnection,
    seqs: &mut Seqs,
    session: &Session,
    body: &str,
) -> Result<Event, StoreError> {
    let seq = seqs.next(conn, &session.tenant).await?;
    let frame = render_frame(seq, body);
    sqlx::query(
        "INSERT INTO outbox (tenant, seq, session_id, status, frame, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&session.tenant)
    .bind(seq)
    .bind(session.id.as_str())
    .bind(session.status.as_str())
    .bind(&frame)
    .bind(ms(Utc::now()))
    .execute(&mut *conn)
    .await?;
    Ok(Event {
        tenant: session.tenant.as_str().into(),
        seq,
        session_id: session.id.clone(),
        status: session.status,
        frame: frame.into(),
    })
}

pub(super) async fn reschedule(
    conn: &mut SqliteConnection,
    id: &SessionId,
    expected: Status,
    next_check_at: i64,
    work: Option<&str>,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE sessions
         SET next_check_at = CASE WHEN woken = 1 THEN ? ELSE ? END,
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

/// Claims the session until `claim_until` if nobody works on it (and `claim_until` is given);
/// otherwise makes it due now and marks it woken for the step in flight. Returns the claimed
/// (body, work), or whether an unfinished session of `provider` was found.
pub(super) async fn wake(
    conn: &mut SqliteConnection,
    id: &SessionId,
    provider: &str,
    claim_until: Option<i64>,
) -> Result<Result<(String, Option<String>), bool>, StoreError> {
    if let Some(until) = claim_until {
        let row = sqlx::query(
            "UPDATE sessions SET next_check_at = ?, claimed = 1, woken = 0
             WHERE id = ? AND provider = ? AND next_check_at IS NOT NULL AND claimed = 0
             RETURNING body, work",
        )
        .bind(until)
        .bind(id.as_str())
        .bind(provider)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = row {
            return Ok(Ok((row.try_get("body")?, row.try_get("work")?)));
        }
    }
    let n = sqlx::query(
        // A claimed session keeps its lease (its step's write makes it due now).
        "UPDATE sessions
         SET next_check_at = CASE WHEN claimed = 1 THEN next_check_at
                                  ELSE MIN(next_check_at, ?) END,
             woken = 1
         WHERE id = ? AND provider = ? AND next_check_at IS NOT NULL",
    )
    .bind(ms(Utc::now()))
    .bind(id.as_str())
    .bind(provider)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(Err(n > 0))
}

pub(super) async fn claim(
    conn: &mut SqliteConnection,
    now: i64,
    until: i64,
    limit: u32,
    providers: &str,
    only_expired: bool,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let rows = sqlx::query(
        "UPDATE sessions SET next_check_at = ?1, claimed = 1, woken = 0
         WHERE id IN (SELECT id FROM sessions
                      WHERE next_check_at IS NOT NULL AND next_check_at <= ?2
                        AND (?4 = '[]' OR provider IN (SELECT value FROM json_each(?4)))
                        AND (?5 = 0 OR expires_at <= ?2)
                      ORDER BY next_check_at LIMIT ?3)
         RETURNING body, work",
    )
    .bind(until)
    .bind(now)
    .bind(limit)
    .bind(providers)
    .bind(only_expired)
    .fetch_all(&mut *conn)
    .await?;
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
