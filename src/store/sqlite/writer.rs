//! Group commit for SQLite. Every write goes to one task that owns the writer connection; it
//! takes whatever writes are queued (one when the gateway is quiet, dozens under load), runs
//! them in order inside one transaction, commits once, and only then answers each caller — so
//! an event is never published before it is durable, and a session costs a handful of
//! statements instead of a transaction per state change (SPEC §9: ~3,800 transactions/s on
//! this class of machine). Writes run in arrival order on one connection, so each sees the
//! ones before it exactly as if they had committed separately. A statement that fails rolls
//! the whole batch back and every write in it reports the failure (callers retry; the engine
//! leaves the session due). The writer also keeps each tenant's last event `seq` in memory
//! (nobody else writes the file), so an event costs one statement and `tenant_seq` is written
//! once per tenant per batch.
//!
//! This file owns the batching loop: the queued writes, the held-back replies, and the commit
//! of one batch. [`ops`] runs the writes inside the transaction; [`wal`] starts the WAL over
//! between batches.

mod ops;
mod wal;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::super::{Created, Event, NewSession, StatusWrite, StoreError};
use super::sql::{plain, Seqs, Woke, APPLY_CHUNK};
use crate::domain::{SessionId, Status};
use ops::{execute, run_group};
use wal::restart_wal;

/// Writes one transaction may carry; more wait for the next commit.
const MAX_BATCH: usize = 256;
/// Every connection's wait for a lock held by another connection.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Claimed due sessions: (body, work).
type Claimed = Vec<(String, Option<String>)>;

/// One write and where its answer goes.
pub(super) enum Op {
    Create(
        Box<NewSession>,
        oneshot::Sender<Result<Created, StoreError>>,
    ),
    Apply {
        write: StatusWrite,
        reply: oneshot::Sender<Result<Option<Event>, StoreError>>,
    },
    Reschedule {
        id: SessionId,
        expected: Status,
        next_check_at: i64,
        work: Option<String>,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Wakes a session; claims it until the time given, if nobody works on it.
    Wake {
        id: SessionId,
        provider: String,
        claim_until: Option<i64>,
        reply: oneshot::Sender<Result<Woke, StoreError>>,
    },
    /// Claims up to `limit` due sessions until `until`: (body, work) rows.
    Claim {
        now: i64,
        until: i64,
        limit: u32,
        claim: super::sql::OwnedClaim,
        reply: oneshot::Sender<Result<Claimed, StoreError>>,
    },
    /// Stores a certificate bundle under its digest, unless it is there already.
    Bundle {
        digest: String,
        bundle: String,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// `sql` with `(…)` standing for the id list and one leading time parameter.
    Ids {
        sql: &'static str,
        at: i64,
        ids: Vec<SessionId>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// An answer held back until the batch commits.
enum Reply {
    Created(oneshot::Sender<Result<Created, StoreError>>, Created),
    Event(
        oneshot::Sender<Result<Option<Event>, StoreError>>,
        Option<Event>,
    ),
    Flag(oneshot::Sender<Result<bool, StoreError>>, bool),
    Rows(oneshot::Sender<Result<Claimed, StoreError>>, Claimed),
    Woke(oneshot::Sender<Result<Woke, StoreError>>, Woke),
    Done(oneshot::Sender<Result<(), StoreError>>),
}

impl Reply {
    fn send(self) {
        match self {
            Reply::Created(tx, v) => drop(tx.send(Ok(v))),
            Reply::Event(tx, v) => drop(tx.send(Ok(v))),
            Reply::Flag(tx, v) => drop(tx.send(Ok(v))),
            Reply::Rows(tx, v) => drop(tx.send(Ok(v))),
            Reply::Woke(tx, v) => drop(tx.send(Ok(v))),
            Reply::Done(tx) => drop(tx.send(Ok(()))),
        }
    }

    fn fail(self, why: &str) {
        let e = || StoreError::Batch(why.to_owned());
        match self {
            Reply::Created(tx, _) => drop(tx.send(Err(e()))),
            Reply::Event(tx, _) => drop(tx.send(Err(e()))),
            Reply::Flag(tx, _) => drop(tx.send(Err(e()))),
            Reply::Rows(tx, _) => drop(tx.send(Err(e()))),
            Reply::Woke(tx, _) => drop(tx.send(Err(e()))),
            Reply::Done(tx) => drop(tx.send(Err(e()))),
        }
    }
}

impl Op {
    /// Answers a write that never ran (its batch failed before it).
    fn fail(self, why: &str) {
        let e = || StoreError::Batch(why.to_owned());
        match self {
            Op::Create(_, tx) => drop(tx.send(Err(e()))),
            Op::Apply { reply, .. } => drop(reply.send(Err(e()))),
            Op::Reschedule { reply, .. } => drop(reply.send(Err(e()))),
            Op::Wake { reply, .. } => drop(reply.send(Err(e()))),
            Op::Claim { reply, .. } => drop(reply.send(Err(e()))),
            Op::Ids { reply, .. } | Op::Bundle { reply, .. } => drop(reply.send(Err(e()))),
        }
    }
}

/// Runs until every sender is gone. Between two batches, when the checkpointer has asked
/// (`restart`), starts the WAL over.
pub(super) async fn run(
    mut conn: PoolConnection<Sqlite>,
    mut rx: mpsc::Receiver<Op>,
    restart: Arc<AtomicBool>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut seqs = Seqs::default();
    let mut not_before = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let ops = std::mem::take(&mut batch);
        commit_batch(&mut conn, &mut seqs, ops).await;
        if restart.swap(false, Ordering::Relaxed)
            && not_before.is_none_or(|t| tokio::time::Instant::now() >= t)
        {
            not_before = restart_wal(&mut conn).await;
        }
    }
}

async fn commit_batch(conn: &mut SqliteConnection, seqs: &mut Seqs, ops: Vec<Op>) {
    metrics::histogram!("kyso_sqlite_batch_writes").record(ops.len() as f64);
    if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        let why = format!("could not begin a transaction: {e}");
        ops.into_iter().for_each(|op| op.fail(&why));
        return;
    }
    let mut replies = Vec::with_capacity(ops.len());
    let mut ops = ops.into_iter().peekable();
    let mut failure = None;
    while let Some(op) = ops.next() {
        let result = match op.group() {
            // Writes of one kind in a row, each to another session, go in one statement.
            Some((kind, _)) => {
                let mut group = vec![op];
                while group.len() < APPLY_CHUNK {
                    match ops.peek().and_then(Op::group) {
                        Some((k, id))
                            if k == kind
                                && !group.iter().any(|g| g.group().is_some_and(|g| g.1 == id)) =>
                        {
                            group.extend(ops.next());
                        }
                        _ => break,
                    }
                }
                run_group(conn, seqs, kind, group).await
            }
            None => execute(conn, seqs, op)
                .await
                .map(|r| vec![r])
                .map_err(|(r, e)| (vec![r], e)),
        };
        match result {
            Ok(done) => replies.extend(done),
            Err((done, e)) => {
                replies.extend(done);
                failure = Some(format!("a write failed, batch rolled back: {e}"));
                break;
            }
        }
    }
    if failure.is_none() {
        if let Err(e) = seqs.write(conn).await {
            failure = Some(format!("writing event sequences failed: {e}"));
        }
    }
    if failure.is_none() {
        if let Err(e) = sqlx::query("COMMIT").execute(&mut *conn).await {
            failure = Some(format!("commit failed: {e}"));
        }
    }
    match failure {
        None => replies.into_iter().for_each(Reply::send),
        Some(why) => {
            tracing::error!(error = %why, "SQLite write batch failed");
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            // The rolled-back events never happened: re-read the sequences next time.
            *seqs = Seqs::default();
            replies.into_iter().for_each(|r| r.fail(&why));
            ops.for_each(|op| op.fail(&why));
        }
    }
}

/// Writes that one statement runs for many sessions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Apply,
    Create,
    Wake,
}

impl Op {
    /// The group this write can join, and the session it writes.
    fn group(&self) -> Option<(Group, &SessionId)> {
        match self {
            Op::Apply { write, .. } => Some((Group::Apply, &write.session.id)),
            Op::Create(new, _) if plain(new) => Some((Group::Create, &new.session.id)),
            Op::Wake {
                id,
                claim_until: Some(_),
                ..
            } => Some((Group::Wake, id)),
            _ => None,
        }
    }
}
