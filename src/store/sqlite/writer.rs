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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::super::{Created, Event, NewSession, StatusWrite, StoreError};
use super::sql::{
    apply_many, claim, create, create_many, mark_woken, plain, put_bundle, reschedule, update_ids,
    wake_many, Seqs, WakeClaim, Woke, APPLY_CHUNK,
};
use crate::domain::{SessionId, Status};

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
        /// JSON array of provider ids; `[]` for all.
        providers: String,
        only_expired: bool,
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
        let e = || StoreError::Database(sqlx::Error::Protocol(why.to_owned()));
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
        let e = || StoreError::Database(sqlx::Error::Protocol(why.to_owned()));
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

/// How long a RESTART checkpoint may wait for readers still on the old log, holding writes
/// back meanwhile (a long reader — a backup, the sqlite3 shell — must not stall them).
const RESTART_WAIT_MS: u32 = 100;
/// After a RESTART that readers kept from finishing, the next one waits this long.
const RESTART_BACKOFF: Duration = Duration::from_secs(5);

/// A RESTART checkpoint on the writer's own connection, between two batches: no lock to
/// fight for, and queued writes wait in the channel, not on a lock. Copies the frames the
/// checkpointer's PASSIVE pass missed, then waits briefly for readers to leave the old log, so
/// the next transaction writes from the log's start. Returns when the next may run.
async fn restart_wal(conn: &mut SqliteConnection) -> Option<tokio::time::Instant> {
    let restart = async {
        sqlx::query(&format!("PRAGMA busy_timeout = {RESTART_WAIT_MS}"))
            .execute(&mut *conn)
            .await?;
        let busy: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
                .fetch_one(&mut *conn)
                .await;
        sqlx::query(&format!(
            "PRAGMA busy_timeout = {}",
            BUSY_TIMEOUT.as_millis()
        ))
        .execute(&mut *conn)
        .await?;
        busy.map(|(busy, _, _)| busy == 0)
    };
    let done = match restart.await {
        Ok(done) => done,
        Err(e) => {
            tracing::warn!(error = %e, "WAL restart failed");
            false
        }
    };
    metrics::counter!("kyso_sqlite_wal_restarts_total", "done" => done.to_string()).increment(1);
    if done {
        return None;
    }
    tracing::warn!(
        "readers kept the SQLite WAL from starting over; retrying in {}s",
        RESTART_BACKOFF.as_secs()
    );
    Some(tokio::time::Instant::now() + RESTART_BACKOFF)
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
                failure = Some(format!("batched write failed, batch rolled back: {e}"));
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

/// Runs a group of writes of one kind, each to another session.
async fn run_group(
    conn: &mut SqliteConnection,
    seqs: &mut Seqs,
    kind: Group,
    group: Vec<Op>,
) -> Result<Vec<Reply>, (Vec<Reply>, StoreError)> {
    match kind {
        Group::Apply => apply_group(conn, seqs, group).await,
        Group::Create => create_group(conn, seqs, group).await,
        Group::Wake => wake_group(conn, group).await,
    }
}

/// Runs a group of claiming wakes with one statement per piece.
async fn wake_group(
    conn: &mut SqliteConnection,
    group: Vec<Op>,
) -> Result<Vec<Reply>, (Vec<Reply>, StoreError)> {
    let mut wakes = Vec::with_capacity(group.len());
    let mut senders = Vec::with_capacity(group.len());
    for op in group {
        if let Op::Wake {
            id,
            provider,
            claim_until: Some(until),
            reply,
        } = op
        {
            wakes.push(WakeClaim {
                id,
                provider,
                until,
            });
            senders.push(reply);
        }
    }
    answers(senders, wake_many(conn, &wakes).await, Reply::Woke, |tx| {
        Reply::Woke(tx, Err(false))
    })
}

/// Runs a group of status changes of distinct sessions with one statement.
async fn apply_group(
    conn: &mut SqliteConnection,
    seqs: &mut Seqs,
    group: Vec<Op>,
) -> Result<Vec<Reply>, (Vec<Reply>, StoreError)> {
    let mut writes = Vec::with_capacity(group.len());
    let mut senders = Vec::with_capacity(group.len());
    for op in group {
        if let Op::Apply { write, reply } = op {
            writes.push(write);
            senders.push(reply);
        }
    }
    let events = apply_many(conn, seqs, &writes).await;
    answers(senders, events, Reply::Event, |tx| Reply::Event(tx, None))
}

/// Runs a group of [`plain`] creates with one statement per piece.
async fn create_group(
    conn: &mut SqliteConnection,
    seqs: &mut Seqs,
    group: Vec<Op>,
) -> Result<Vec<Reply>, (Vec<Reply>, StoreError)> {
    let mut news = Vec::with_capacity(group.len());
    let mut senders = Vec::with_capacity(group.len());
    for op in group {
        if let Op::Create(new, reply) = op {
            news.push(new);
            senders.push(reply);
        }
    }
    let news: Vec<&NewSession> = news.iter().map(|n| n.as_ref()).collect();
    let created = create_many(conn, seqs, &news).await;
    answers(senders, created, Reply::Created, |tx| {
        Reply::Created(tx, Created::SignerBusy)
    })
}

/// A group's replies: each sender with its value, or, when the group's statement failed, each
/// reply to be failed (`failed` fills in a value nobody reads) with the error.
fn answers<S, V>(
    senders: Vec<S>,
    result: Result<Vec<V>, StoreError>,
    ok: impl Fn(S, V) -> Reply,
    failed: impl Fn(S) -> Reply,
) -> Result<Vec<Reply>, (Vec<Reply>, StoreError)> {
    match result {
        Ok(values) => Ok(senders
            .into_iter()
            .zip(values)
            .map(|(tx, v)| ok(tx, v))
            .collect()),
        Err(e) => Err((senders.into_iter().map(failed).collect(), e)),
    }
}

/// Runs one write; on failure returns its reply (to be failed) with the error.
async fn execute(
    conn: &mut SqliteConnection,
    seqs: &mut Seqs,
    op: Op,
) -> Result<Reply, (Reply, StoreError)> {
    macro_rules! attempt {
        ($reply:expr, $fut:expr, $wrap:expr) => {
            match $fut.await {
                Ok(v) => Ok($wrap($reply, v)),
                Err(e) => Err(($wrap($reply, Default::default()), e)),
            }
        };
    }
    match op {
        Op::Create(new, reply) => match create(conn, seqs, &new).await {
            Ok(v) => Ok(Reply::Created(reply, v)),
            Err(e) => Err((Reply::Created(reply, Created::SignerBusy), e)),
        },
        Op::Reschedule {
            id,
            expected,
            next_check_at,
            work,
            reply,
        } => attempt!(
            reply,
            reschedule(conn, &id, expected, next_check_at, work.as_deref()),
            Reply::Flag
        ),
        // commit_batch groups these; one reaching here alone is a group of one.
        op @ (Op::Apply { .. }
        | Op::Wake {
            claim_until: Some(_),
            ..
        }) => {
            let kind = op.group().map_or(Group::Apply, |(kind, _)| kind);
            match run_group(conn, seqs, kind, vec![op]).await {
                Ok(mut replies) => Ok(replies.remove(0)),
                Err((mut replies, e)) => Err((replies.remove(0), e)),
            }
        }
        Op::Wake {
            id,
            provider,
            reply,
            ..
        } => match mark_woken(conn, &id, &provider).await {
            Ok(found) => Ok(Reply::Woke(reply, Err(found))),
            Err(e) => Err((Reply::Woke(reply, Err(false)), e)),
        },
        Op::Claim {
            now,
            until,
            limit,
            providers,
            only_expired,
            reply,
        } => attempt!(
            reply,
            claim(conn, now, until, limit, &providers, only_expired),
            Reply::Rows
        ),
        Op::Ids {
            sql,
            at,
            ids,
            reply,
        } => match update_ids(conn, sql, at, &ids).await {
            Ok(()) => Ok(Reply::Done(reply)),
            Err(e) => Err((Reply::Done(reply), e)),
        },
        Op::Bundle {
            digest,
            bundle,
            reply,
        } => match put_bundle(conn, &digest, &bundle).await {
            Ok(()) => Ok(Reply::Done(reply)),
            Err(e) => Err((Reply::Done(reply), e)),
        },
    }
}
