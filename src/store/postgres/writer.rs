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
//!
//! This file owns the batching loop: taking queued changes, grouping runs of them into one
//! statement each, committing, retrying alone after a failed batch, and answering callers. The
//! statements themselves live in [`create`] (new sessions), [`apply`] (status changes) and
//! [`outbox`] (numbering, outbox rows and notifications).

mod apply;
mod create;
mod outbox;
mod unanswered;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};

use super::copy_error;
use crate::domain::{Session, SessionId, Status};
use crate::store::{Created, Event, NewSession, StatusWrite, StoreError};
use apply::apply_many;
pub(super) use create::{by_key, insert};
use create::{create, create_many};
pub(super) use outbox::number;

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
    /// `apply` found the session in the expected status but leased to another claim.
    LeaseLost(SessionId),
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
            // The commit's answer never came: read back whether it was written.
            Err(Failed::Commit(e, xid, staged)) => settle(&pool, ops, e, xid, staged).await,
            Err(Failed::Before(e)) if ops.len() > 1 => {
                tracing::warn!(error = %e, writes = ops.len(), "PostgreSQL write batch failed; retrying each write alone");
                for op in ops {
                    let result = write(&pool, &instance, &[&op.change]).await;
                    match result {
                        Ok(results) => answer(&pool, vec![op], results).await,
                        Err(Failed::Commit(e, xid, staged)) => {
                            settle(&pool, vec![op], e, xid, staged).await
                        }
                        Err(Failed::Before(e)) => fail(op.reply, e),
                    }
                }
            }
            Err(Failed::Before(e)) => ops
                .into_iter()
                .for_each(|op| fail(op.reply, copy_error(&e))),
        }
    }
}

/// Answers the callers of a batch whose COMMIT got no answer, from what PostgreSQL says
/// became of its transaction `xid`.
async fn settle(
    pool: &PgPool,
    ops: Vec<Op>,
    e: StoreError,
    xid: i64,
    staged: Vec<(Done, Option<Event>)>,
) {
    let wrote = staged.iter().any(|(_, ev)| ev.is_some());
    let outcome = if wrote {
        unanswered::committed(pool, xid).await
    } else {
        unanswered::no_write();
        Ok(true)
    };
    match outcome {
        Ok(true) => {
            tracing::warn!(error = %e, writes = ops.len(), "a COMMIT got no answer but was written; answering from its transaction's status");
            answer(pool, ops, staged).await
        }
        Ok(false) => ops
            .into_iter()
            .for_each(|op| fail(op.reply, copy_error(&e))),
        Err(unknown) => {
            tracing::error!(error = %e, status = %unknown, "a COMMIT got no answer and its outcome is unknown");
            ops.into_iter()
                .for_each(|op| fail(op.reply, copy_error(&e)))
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
            (Reply::Applied(tx), Done::LeaseLost(id)) => {
                drop(tx.send(Err(StoreError::LeaseLost(id))))
            }
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
/// (it may or may not have been written; what it would have come to is kept to answer with).
enum Failed {
    Before(StoreError),
    Commit(StoreError, i64, Vec<(Done, Option<Event>)>),
}

/// Writes `changes` in one transaction; returns what each came to, with its event.
async fn write(
    pool: &PgPool,
    instance: &str,
    changes: &[&Change],
) -> Result<Vec<(Done, Option<Event>)>, Failed> {
    let mut conn = pool.acquire().await.map_err(|e| Failed::Before(e.into()))?;
    let mut tx = conn.begin().await.map_err(|e| Failed::Before(e.into()))?;
    // Asked after a COMMIT that gets no answer (see `unanswered`).
    let xid: i64 = sqlx::query_scalar("SELECT txid_current()")
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| Failed::Before(e.into()))?;
    let (done, events) = stage(&mut tx, instance, changes)
        .await
        .map_err(Failed::Before)?;
    let results: Vec<(Done, Option<Event>)> = done.into_iter().zip(events).collect();
    match tx.commit().await {
        Ok(()) => Ok(results),
        Err(e) => Err(Failed::Commit(e.into(), xid, results)),
    }
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
            Change::Apply(_) => done.extend(apply_many(tx, instance, &rest[..run]).await?),
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
