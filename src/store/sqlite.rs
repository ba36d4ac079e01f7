//! The SQLite backend: WAL, one writer connection (SQLite has one writer anyway, and a single
//! writer never meets "database is locked" on a read-to-write upgrade) and a pool of readers.
//! Due sessions are claimed as on PostgreSQL, but the lease lives in `next_check_at` itself
//! (pushed to the lease's end, `claimed = 1`): the scheduler's next look at due work then
//! reads only sessions nobody is working on, and the earliest `next_check_at` stays one index
//! probe. A restart gives every claim back, since one instance owns the file.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{
    decode, encode, event_from_row, from_ms, ms, render_frame, Change, Created, Event, ListFilter,
    NewSession, Store, StoreError, Work,
};
use crate::domain::{Session, SessionId, Status};

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    lease_ms: i64,
}

/// The lease when the caller names none (tests that open a store directly).
const DEFAULT_LEASE: Duration = Duration::from_secs(30);

const OPEN: &str = "('pending','awaiting_user')";

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, DEFAULT_LEASE).await
    }

    /// Opens the file with `lease` as the length of a claim between renewals.
    pub async fn open_with(url: &str, lease: Duration) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
            }
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        // Claims of a previous run: nobody works on those sessions any more.
        sqlx::query("UPDATE sessions SET next_check_at = ?, claimed = 0 WHERE claimed = 1")
            .bind(ms(Utc::now()))
            .execute(&writer)
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self {
            writer,
            reader,
            lease_ms: lease.as_millis().try_into().unwrap_or(i64::MAX),
        })
    }

    /// Runs `sql` (which has one `?` for `now`-based time, then the id list) over `ids` in
    /// chunks that stay under SQLite's bound-parameter limit.
    async fn update_ids(&self, sql: &str, at: i64, ids: &[SessionId]) -> Result<(), StoreError> {
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = sql.replace("(…)", &format!("({marks})"));
            let mut q = sqlx::query(&sql).bind(at);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            q.execute(&self.writer).await?;
        }
        Ok(())
    }

    async fn next_seq(tx: &mut sqlx::SqliteConnection, tenant: &str) -> Result<i64, StoreError> {
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO tenant_seq (tenant, last_seq) VALUES (?, 1)
             ON CONFLICT (tenant) DO UPDATE SET last_seq = last_seq + 1
             RETURNING last_seq",
        )
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await?;
        Ok(seq)
    }

    async fn write_event(
        tx: &mut sqlx::SqliteConnection,
        session: &Session,
        body: &str,
    ) -> Result<Event, StoreError> {
        let seq = Self::next_seq(tx, &session.tenant).await?;
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
        .execute(&mut *tx)
        .await?;
        Ok(Event {
            tenant: session.tenant.as_str().into(),
            seq,
            session_id: session.id.clone(),
            status: session.status,
            frame: frame.into(),
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create(&self, new: &NewSession) -> Result<Created, StoreError> {
        let s = &new.session;
        let mut tx = self.writer.begin().await?;
        if let Some(key) = &new.idempotency_key {
            let row = sqlx::query(
                "SELECT request_hash, body FROM sessions WHERE tenant = ? AND idempotency_key = ?",
            )
            .bind(&s.tenant)
            .bind(key)
            .fetch_optional(&mut *tx)
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
            .fetch_optional(&mut *tx)
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
        .execute(&mut *tx)
        .await?;
        let event = Self::write_event(&mut tx, s, &body).await?;
        tx.commit().await?;
        Ok(Created::New(event))
    }

    async fn get(&self, tenant: &str, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM sessions WHERE id = ? AND tenant = ?")
                .bind(id.as_str())
                .bind(tenant)
                .fetch_optional(&self.reader)
                .await?;
        body.as_deref().map(decode).transpose()
    }

    async fn list(&self, tenant: &str, f: &ListFilter) -> Result<Vec<Session>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM sessions WHERE tenant = ?1
               AND (?2 IS NULL OR reference = ?2)
               AND (?3 IS NULL OR status = ?3)
               AND (?4 IS NULL OR id < ?4)
             ORDER BY id DESC LIMIT ?5",
        )
        .bind(tenant)
        .bind(&f.reference)
        .bind(f.status.map(Status::as_str))
        .bind(f.before.as_ref().map(SessionId::as_str))
        .bind(f.limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|b| decode(b)).collect()
    }

    async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Work>, StoreError> {
        let rows = sqlx::query(
            "UPDATE sessions SET next_check_at = ?, claimed = 1
             WHERE id IN (SELECT id FROM sessions
                          WHERE next_check_at IS NOT NULL AND next_check_at <= ?
                          ORDER BY next_check_at LIMIT ?)
             RETURNING body, work",
        )
        .bind(ms(now) + self.lease_ms)
        .bind(ms(now))
        .bind(limit)
        .fetch_all(&self.writer)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Work {
                    session: decode(r.try_get("body")?)?,
                    work: r.try_get("work")?,
                })
            })
            .collect()
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_check_at) FROM sessions WHERE next_check_at IS NOT NULL",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(v.map(from_ms))
    }

    async fn apply(&self, change: Change<'_>) -> Result<Option<Event>, StoreError> {
        let s = change.session;
        let body = encode(s)?;
        let mut tx = self.writer.begin().await?;
        let next = if s.status.is_terminal() {
            None
        } else {
            change.next_check_at.map(ms)
        };
        let updated = sqlx::query(
            "UPDATE sessions SET status = ?, body = ?, next_check_at = ?, work = ?, claimed = 0
             WHERE id = ? AND status = ?",
        )
        .bind(s.status.as_str())
        .bind(&body)
        .bind(next)
        .bind(change.work)
        .bind(s.id.as_str())
        .bind(change.expected.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        let event = Self::write_event(&mut tx, s, &body).await?;
        tx.commit().await?;
        Ok(Some(event))
    }

    async fn reschedule(
        &self,
        id: &SessionId,
        expected: Status,
        next_check_at: DateTime<Utc>,
        work: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE sessions
             SET next_check_at = CASE WHEN woken = 1 THEN ? ELSE ? END,
                 woken = 0, work = COALESCE(?, work), claimed = 0
             WHERE id = ? AND status = ?",
        )
        .bind(ms(Utc::now()))
        .bind(ms(next_check_at))
        .bind(work)
        .bind(id.as_str())
        .bind(expected.as_str())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn wake(&self, id: &SessionId) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE sessions SET next_check_at = MIN(next_check_at, ?), woken = 1
             WHERE id = ? AND next_check_at IS NOT NULL",
        )
        .bind(ms(Utc::now()))
        .bind(id.as_str())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn events_after(
        &self,
        tenant: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, session_id, status, frame FROM outbox
             WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(tenant)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        let tenant: Arc<str> = tenant.into();
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("session_id")?;
                let status: String = r.try_get("status")?;
                event_from_row(
                    &tenant,
                    r.try_get("seq")?,
                    &id,
                    &status,
                    r.try_get("frame")?,
                )
            })
            .collect()
    }

    async fn renew(&self, ids: &[SessionId]) -> Result<(), StoreError> {
        let sql = "UPDATE sessions SET next_check_at = ? WHERE claimed = 1 AND id IN (…)";
        self.update_ids(sql, ms(Utc::now()) + self.lease_ms, ids)
            .await
    }

    async fn release(&self, ids: &[SessionId]) -> Result<(), StoreError> {
        let sql = "UPDATE sessions SET next_check_at = ?, claimed = 0 WHERE claimed = 1 AND id IN (…)";
        self.update_ids(sql, ms(Utc::now()), ids).await
    }

    /// One instance owns the file: there is nobody else to hear from.

    async fn fan_in(&self, _: crate::events::Hub, _: tokio::sync::watch::Receiver<bool>) {}

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }
}
