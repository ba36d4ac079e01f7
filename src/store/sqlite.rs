//! The SQLite backend: WAL, one writer connection (SQLite has one writer anyway, and a single
//! writer never meets "database is locked" on a read-to-write upgrade) and a pool of readers.
//! Writes are grouped: [`writer`] owns the writer connection and commits whatever writes are
//! queued in one transaction. Due sessions are claimed as on PostgreSQL, but the lease lives in
//! `next_check_at` itself (pushed to the lease's end, `claimed = 1`): the scheduler's next look
//! at due work then reads only sessions nobody is working on, and the earliest `next_check_at`
//! stays one index probe. A restart gives every claim back, since one instance owns the file.

mod checkpoint;
#[cfg(test)]
mod plans;
mod prune;
mod sql;
mod writer;

use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::claim::{next_expiry_sql, queues_from, queues_sql, MAX_QUEUES};
use super::prune::{Cutoffs, Pruned};
use super::{
    decode, event_from_row, from_ms, ms, Change, Claim, Created, Event, Held, ListFilter,
    NewSession, PushTarget, Queue, StatusWrite, Store, StoreError, StoreOptions, Woken, Work,
    EVENTS_AFTER,
};
use crate::domain::{Session, SessionId, Status};
use sql::Woke;
use writer::Op;

pub struct SqliteStore {
    writes: mpsc::Sender<Op>,
    reader: SqlitePool,
    /// Retention's deletes, beside the writer (see `prune`).
    pruner: SqlitePool,
    lease_ms: i64,
    /// The writer and the checkpointer, until [`Store::take_tasks`].
    tasks: std::sync::Mutex<Vec<(&'static str, tokio::task::JoinHandle<()>)>>,
}

/// Writes waiting for the writer before callers wait to enqueue.
const QUEUE: usize = 16_384;

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// Opens the file with `options.lease` as the length of a claim between renewals and
    /// `options.wal_limit` as the WAL size that makes the checkpointer restart the log.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let (lease, wal_limit, migrations) = (options.lease, options.wal_limit, options.migrations);
        let options = connect_options(url)?;
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
            }
        }
        // The writer never checkpoints: a checkpoint syncs the database file, and on the
        // writer it would stall every queued write behind it (the latency tail at 1,000
        // events/s). The checkpointer task does it from its own connection instead.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(writer_options(options.clone()))
            .await?;
        let migrator = sqlx::migrate!("./migrations/sqlite");
        let has_table: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&writer)
        .await?;
        let applied: Vec<i64> = if has_table > 0 {
            sqlx::query_scalar(super::schema::APPLIED)
                .fetch_all(&writer)
                .await?
        } else {
            Vec::new()
        };
        // One instance per file: nobody else holds a lease, so no migration waits for a stop.
        let found = super::schema::Found {
            applied: &applied,
            live_leases: 0,
        };
        super::schema::check(&migrator, &[], &found, migrations)?;
        migrator.run(&writer).await?;
        // Claims of a previous run: nobody works on those sessions any more.
        sqlx::query("UPDATE sessions SET next_check_at = ?, claimed = 0 WHERE claimed = 1")
            .bind(ms(Utc::now()))
            .execute(&writer)
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().read_only(true))
            .await?;
        let (writes, queue) = mpsc::channel(QUEUE);
        let restart = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(writer::run(writer.acquire().await?, queue, restart.clone()));
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let pruner = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let checkpointer = tokio::spawn(checkpoint::run(
            checkpointer,
            writes.downgrade(),
            wal_limit,
            restart,
        ));
        Ok(Self {
            writes,
            reader,
            pruner,
            lease_ms: lease.as_millis().try_into().unwrap_or(i64::MAX),
            tasks: std::sync::Mutex::new(vec![
                ("sqlite writer", writer),
                ("sqlite checkpointer", checkpointer),
            ]),
        })
    }

    /// Queues a write and waits for its transaction to commit.
    async fn write<T>(
        &self,
        op: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Op,
    ) -> Result<T, StoreError> {
        super::request(&self.writes, op).await
    }

    async fn for_ids(
        &self,
        sql: &'static str,
        at: i64,
        ids: &[SessionId],
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.write(|reply| Op::Ids {
            sql,
            at,
            ids,
            reply,
        })
        .await
    }
}

/// Every connection's options. `synchronous = FULL`: in WAL mode the log is fsynced at every
/// commit, so what a commit answered (and the events then published) survives an OS crash or
/// a power loss; `NORMAL` syncs only at checkpoints, and a lost tail would hand the same seq
/// to a different event (see docs/operations.md for the guarantee and its measured cost).
fn connect_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(writer::BUSY_TIMEOUT)
        .foreign_keys(true))
}

/// The writer's connection: never checkpoints (see [`SqliteStore::open_with`]).
fn writer_options(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options.pragma("wal_autocheckpoint", "0")
}

#[async_trait]
impl Store for SqliteStore {
    async fn create(&self, new: &NewSession) -> Result<Created, StoreError> {
        let new = Box::new(new.clone());
        self.write(|reply| Op::Create(new, reply)).await
    }

    async fn replay(&self, new: &NewSession) -> Result<Option<Created>, StoreError> {
        if new.idempotency_key.is_none() {
            return Ok(None);
        }
        let mut conn = self.reader.acquire().await?;
        sql::by_key(&mut conn, new).await
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

    async fn due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        claim: Claim<'_>,
    ) -> Result<Vec<Work>, StoreError> {
        let (now, until) = (ms(now), ms(now) + self.lease_ms);
        let claim = sql::OwnedClaim::of(&claim);
        let rows = self
            .write(|reply| Op::Claim {
                now,
                until,
                limit,
                claim,
                reply,
            })
            .await?;
        rows.into_iter()
            .map(|(body, work)| Work::from_row(&body, work, 0))
            .collect()
    }

    /// A claimed session's next check is its lease's end, so every row counts as unleased.
    async fn queues(&self, provider: &str) -> Result<Vec<Queue>, StoreError> {
        let rows = sqlx::query_as(&queues_sql(sql::placeholder, "1"))
            .bind(provider)
            .bind(MAX_QUEUES)
            .fetch_all(&self.reader)
            .await?;
        Ok(queues_from(rows))
    }

    async fn next_expiry(&self, provider: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(&next_expiry_sql(sql::placeholder))
            .bind(provider)
            .fetch_optional(&self.reader)
            .await?;
        Ok(at.map(from_ms))
    }

    async fn apply(&self, change: Change<'_>) -> Result<Option<Event>, StoreError> {
        let write = StatusWrite::of(&change)?;
        self.write(|reply| Op::Apply { write, reply }).await
    }

    /// One instance: nobody else can hold the lease, so its epoch is not compared.
    async fn reschedule(
        &self,
        held: &Held,
        expected: Status,
        next_check_at: DateTime<Utc>,
        work: Option<&str>,
    ) -> Result<bool, StoreError> {
        let (id, next_check_at) = (held.id.clone(), ms(next_check_at));
        let work = work.map(str::to_owned);
        self.write(|reply| Op::Reschedule {
            id,
            expected,
            next_check_at,
            work,
            reply,
        })
        .await
    }

    async fn wake(&self, id: &SessionId, provider: &str, claim: bool) -> Result<Woken, StoreError> {
        let (id, provider) = (id.clone(), provider.to_owned());
        let claim_until = claim.then(|| ms(Utc::now()) + self.lease_ms);
        let woke = self
            .write(|reply| Op::Wake {
                id,
                provider,
                claim_until,
                reply,
            })
            .await?;
        Ok(match woke {
            Woke::Claimed { body, work } => {
                Woken::Claimed(Box::new(Work::from_row(&body, work, 0)?))
            }
            Woke::Marked => Woken::Marked,
            Woke::Missing => Woken::Missing,
        })
    }

    async fn push_target(&self, id: &SessionId, provider: &str) -> Result<PushTarget, StoreError> {
        let row = sqlx::query(
            "SELECT next_check_at, claimed, woken FROM sessions WHERE id = ? AND provider = ?",
        )
        .bind(id.as_str())
        .bind(provider)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Ok(PushTarget::Missing);
        };
        let next: Option<i64> = row.try_get("next_check_at")?;
        let (claimed, woken): (bool, bool) = (row.try_get("claimed")?, row.try_get("woken")?);
        Ok(match next {
            None => PushTarget::Missing,
            Some(_) if woken => PushTarget::Pending,
            Some(at) if !claimed && at <= ms(Utc::now()) => PushTarget::Pending,
            Some(_) => PushTarget::Waiting,
        })
    }

    async fn events_after(
        &self,
        tenant: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(EVENTS_AFTER)
            .bind(tenant)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        let tenant: Arc<str> = tenant.into();
        rows.iter().map(|r| event_from_row(&tenant, r)).collect()
    }

    async fn last_seq(&self, tenant: &str) -> Result<i64, StoreError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM tenant_seq WHERE tenant = ?")
                .bind(tenant)
                .fetch_optional(&self.reader)
                .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn oldest_seq(&self, tenant: &str) -> Result<Option<i64>, StoreError> {
        prune::oldest_seq(&self.reader, tenant).await
    }

    async fn prune(&self, cut: Cutoffs) -> Result<Pruned, StoreError> {
        prune::run(&self.pruner, cut).await
    }

    /// One instance owns the file: no lease can be taken over, so none is ever lost.
    async fn renew(&self, held: &[Held]) -> Result<Vec<SessionId>, StoreError> {
        let sql = "UPDATE sessions SET next_check_at = ? WHERE claimed = 1 AND id IN (…)";
        let ids: Vec<SessionId> = held.iter().map(|h| h.id.clone()).collect();
        self.for_ids(sql, ms(Utc::now()) + self.lease_ms, &ids)
            .await
            .map(|()| Vec::new())
    }

    /// Due from the session's creation: a claim given back unstarted (a push's claim that
    /// lost its token to the scheduler) goes ahead of every session created after it.
    async fn release(&self, held: &[Held]) -> Result<(), StoreError> {
        let sql = "UPDATE sessions SET next_check_at = MIN(?, created_at), claimed = 0
             WHERE claimed = 1 AND id IN (…)";
        let ids: Vec<SessionId> = held.iter().map(|h| h.id.clone()).collect();
        self.for_ids(sql, ms(Utc::now()), &ids).await
    }

    /// One instance owns the file: there is nobody else to hear from.
    async fn fan_in(
        &self,
        _: Arc<dyn crate::domain::Publish>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let _ = shutdown.wait_for(|s| *s).await;
    }

    fn take_tasks(&self) -> Vec<(&'static str, tokio::task::JoinHandle<()>)> {
        std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn put_bundle(&self, digest: &str, bundle: &str) -> Result<(), StoreError> {
        let (digest, bundle) = (digest.to_owned(), bundle.to_owned());
        self.write(|reply| Op::Bundle {
            digest,
            bundle,
            reply,
        })
        .await
    }

    async fn bundle(&self, digest: &str) -> Result<Option<String>, StoreError> {
        let bundle = sqlx::query_scalar("SELECT bundle FROM cert_bundles WHERE digest = ?")
            .bind(digest)
            .fetch_optional(&self.reader)
            .await?;
        Ok(bundle)
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    /// The writer's commits are what gets published: `synchronous` must be FULL (2) there, or
    /// an OS crash loses commits whose events were already sent (NORMAL is 1).
    #[tokio::test]
    async fn the_writer_syncs_every_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let options = writer_options(connect_options(&url).expect("options"));
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("connect");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut conn)
            .await
            .expect("pragma");
        assert_eq!(sync, 2, "PRAGMA synchronous on the writer (2 = FULL)");
    }
}
