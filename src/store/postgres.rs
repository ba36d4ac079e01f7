//! The PostgreSQL backend, for several gateway instances on one database. Due sessions are
//! claimed with `FOR UPDATE SKIP LOCKED` into a lease (owner + expiry) so exactly one instance
//! works on each; a dead instance's leases expire and another instance takes over. Each
//! committed event is announced with `pg_notify` carrying only ids; every instance listens and
//! publishes the events it did not write itself.
//!
//! This file owns the [`PgStore`] handle, the writer queue in front of it and the helpers the
//! writer shares with the store; [`connect`] opens it, [`store`] implements
//! [`Store`](super::Store) on it.

mod connect;
mod fan_in;
mod lease;
mod prune;
mod shared;
mod store;
mod waker;
mod writer;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::{Created, NewSession, StoreError};

const CHANNEL: &str = "kyso_events";

pub struct PgStore {
    pool: PgPool,
    /// Writes that only steer the work (claims, lease renewals and releases, wakes), on
    /// connections with `synchronous_commit = off`: they are visible to every instance at
    /// once but do not wait for a WAL flush each. A database crash can lose the last few
    /// hundred milliseconds of them, which costs at most a repeated or later status check;
    /// sessions, events and provider state are always written with a flushed commit.
    hints: PgPool,
    /// One connection for lease renewals only (unflushed, as `hints`): a renewal never waits
    /// behind claims or writes for a connection, so a busy pool cannot lapse leases.
    leases: PgPool,
    instance: String,
    lease_ms: i64,
    /// Creates and status changes, committed in groups by [`writer`].
    writes: mpsc::Sender<writer::Op>,
    /// Pushes, claimed or marked in groups by [`waker`].
    wakes: mpsc::Sender<waker::Wake>,
    /// The writer and the waker, until [`Store::take_tasks`].
    tasks: std::sync::Mutex<Vec<(&'static str, tokio::task::JoinHandle<()>)>>,
    /// Counts window hits, to sweep old windows now and then (see [`shared`]).
    sweeps: std::sync::atomic::AtomicU64,
}

/// Changes waiting for the writer before callers wait to enqueue.
const QUEUE: usize = 16_384;

/// A copy of `e` for each of several callers that share one failure (one batch's error).
fn copy_error(e: &impl std::fmt::Display) -> StoreError {
    StoreError::Batch(e.to_string())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Notice {
    /// The instance that committed the event.
    i: String,
    t: String,
    /// The first and last sequence numbers this notice announces (one commit's events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    f: Option<i64>,
    s: i64,
    /// Commit time (ms), for the fan-out lag metric.
    at: i64,
}

impl PgStore {
    /// Queues a change for the writer and waits for its commit.
    async fn write<T>(
        &self,
        change: writer::Change,
        reply: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> writer::Reply,
    ) -> Result<T, StoreError> {
        super::request(&self.writes, |tx| writer::Op {
            change,
            reply: reply(tx),
        })
        .await
    }
}

/// The answer to a repeat of the create that used `new`'s idempotency key, if one did: its
/// session, or a mismatch if the request differs.
async fn by_key(pool: &PgPool, new: &NewSession) -> Result<Option<Created>, StoreError> {
    if new.idempotency_key.is_none() {
        return Ok(None);
    }
    let mut conn = pool.acquire().await?;
    Ok(match writer::by_key(&mut conn, new).await? {
        Some(writer::Done::Existing(session)) => Some(Created::Existing(session)),
        Some(writer::Done::Mismatch) => Some(Created::IdempotencyMismatch),
        _ => None,
    })
}

/// The session an idempotency key names after another writer's insert won the key.
async fn existing(pool: &PgPool, new: &NewSession) -> Result<Created, StoreError> {
    by_key(pool, new)
        .await?
        .ok_or_else(|| StoreError::Corrupt("an idempotency key's conflict names no session".into()))
}
