//! Running the writes of a batch inside its transaction: a group of writes of one kind (status
//! changes, plain creates, claiming wakes) with one statement per piece, or one write on its
//! own, each turned into the reply held back until the commit.

use sqlx::SqliteConnection;

use super::{Group, Op, Reply};
use crate::store::sqlite::sql::{
    apply_many, claim, create, create_many, mark_woken, put_bundle, reschedule, update_ids,
    wake_many, Seqs, WakeClaim, Woke,
};
use crate::store::{Created, NewSession, StoreError};

/// Runs a group of writes of one kind, each to another session.
pub(super) async fn run_group(
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
        Reply::Woke(tx, Woke::Missing)
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

/// Runs a group of [`plain`](crate::store::sqlite::sql::plain) creates with one statement per
/// piece.
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
pub(super) async fn execute(
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
            Ok(woke) => Ok(Reply::Woke(reply, woke)),
            Err(e) => Err((Reply::Woke(reply, Woke::Missing), e)),
        },
        Op::Claim {
            now,
            until,
            limit,
            claim: which,
            reply,
        } => attempt!(reply, claim(conn, now, until, limit, &which), Reply::Rows),
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
