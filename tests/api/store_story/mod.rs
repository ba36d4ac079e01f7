//! One story of the store contract, run against SQLite and PostgreSQL alike, plus what only a
//! shared database must do: exclusive leases, takeover after a lease expires, fan-in of other
//! instances' events.
//!
//! One file per behaviour: `contract` (the story every store tells), `batches` (writes and
//! pushes queued together), `leases`, `fan_in` (PostgreSQL LISTEN), `sqlite_wal` (checkpoints),
//! `postgres_plans` (plans and index use on a grown table), `postgres_server` (server features
//! and dropped connections). The helpers shared by them live here.

mod batches;
mod commit_unanswered;
mod contract;
pub(crate) mod fan_in;
mod leases;
mod postgres_plans;
mod postgres_server;
mod queues;
mod retention;
mod sqlite_wal;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kyso::domain::{Session, SessionId, Status};
use kyso::store::{self, Change, Claim, Event, Held, Store, StoreError, StoreOptions, Woken, Work};

use crate::helpers::{new_session as new, smartca_session as session};
use crate::pg::{fresh_db, TestDb};

/// Whether a push (without a claim) found an unfinished session of `provider`.
async fn woke(store: &dyn Store, id: &SessionId, provider: &str) -> bool {
    store.wake(id, provider, false).await.expect("wake").found()
}

/// Creates `s` (a busy signer refused) and claims it with the next look at due work; returns
/// everything that look claimed.
async fn create_claimed(store: &dyn Store, s: &Session, hash: u8) -> Vec<Work> {
    store
        .create(&new(s, None, hash, false))
        .await
        .expect("create");
    let claimed = store
        .due(Utc::now(), 10, Claim::default())
        .await
        .expect("due");
    assert!(claimed.iter().any(|w| w.session.id == s.id));
    claimed
}

async fn release_all(store: &dyn Store, claimed: &[Work]) {
    let held: Vec<Held> = claimed.iter().map(Work::held).collect();
    store.release(&held).await.expect("release");
}

/// Gives back the claim of `id` among `claimed`.
async fn release_one(store: &dyn Store, claimed: &[Work], id: &SessionId) {
    let held: Vec<Held> = claimed
        .iter()
        .filter(|w| w.session.id == *id)
        .map(Work::held)
        .collect();
    assert_eq!(held.len(), 1, "{id} was claimed");
    store.release(&held).await.expect("release");
}

/// Claims what is due now (up to 10); the claimed sessions' references, sorted.
async fn claim_due(store: &dyn Store) -> Vec<String> {
    let mut refs: Vec<String> = store
        .due(Utc::now(), 10, Claim::default())
        .await
        .expect("due")
        .into_iter()
        .filter_map(|w| w.session.reference)
        .collect();
    refs.sort();
    refs
}

/// A fresh SQLite store with default options: the directory holding it (keep it), its URL.
pub(crate) async fn sqlite_store() -> (tempfile::TempDir, String, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = store::open(&url, &StoreOptions::default())
        .await
        .expect("sqlite");
    (dir, url, store)
}

/// A fresh PostgreSQL database (keep it) and a store on it with default options; `None`, with
/// [`fresh_db`]'s notice, when there is no server.
pub(crate) async fn postgres_store(test: &str) -> Option<(TestDb, Arc<dyn Store>)> {
    let db = fresh_db(test).await?;
    let store = store::open(&db.url, &StoreOptions::default())
        .await
        .expect("postgres");
    Some((db, store))
}

/// The two tests running `$story` on a fresh SQLite store and on a fresh PostgreSQL database
/// (that one skipped, with [`fresh_db`]'s notice, when there is no server).
macro_rules! on_both_stores {
    ($story:ident, $on_sqlite:ident, $on_postgres:ident) => {
        #[tokio::test]
        async fn $on_sqlite() {
            let (_dir, _, store) = sqlite_store().await;
            $story(store).await;
        }

        #[tokio::test]
        async fn $on_postgres() {
            if let Some((_db, store)) = postgres_store(stringify!($on_postgres)).await {
                $story(store).await;
            }
        }
    };
}
pub(crate) use on_both_stores;

pub(crate) fn instance(name: &str, lease_ms: u64) -> StoreOptions {
    StoreOptions {
        instance: name.into(),
        lease: Duration::from_millis(lease_ms),
        max_connections: 4,
        ..StoreOptions::default()
    }
}

/// `n` sessions of tenant t1 created (claimable), signers `{signers}00000`…, references
/// `{reference}0`….
async fn created(store: &dyn Store, n: usize, signers: &str, reference: &str) -> Vec<Session> {
    let mut sessions = Vec::with_capacity(n);
    for i in 0..n {
        let s = session(
            "t1",
            &format!("{signers}{i:05}"),
            &format!("{reference}{i}"),
        );
        store.create(&new(&s, None, 1, true)).await.expect("create");
        sessions.push(s);
    }
    sessions
}

/// Claiming pushes for every one of `sessions`, queued together (one task, one thread: all
/// are queued before the waker runs).
async fn wake_all(store: &dyn Store, sessions: &[Session]) -> Vec<Result<Woken, StoreError>> {
    let wakes = sessions
        .iter()
        .map(|s| store.wake(&s.id, "vnpt-smartca", true));
    futures_util::future::join_all(wakes).await
}

/// Moves `s` from pending to awaiting_user (next checked in ten seconds, within a lease), alone
/// in its write.
async fn to_awaiting(store: &dyn Store, s: &Session) {
    assert!(apply_awaiting(store, s).await.expect("apply").is_some());
}

/// Writes `s` moved from pending to awaiting_user (next checked in ten seconds).
async fn apply_awaiting(store: &dyn Store, s: &Session) -> Result<Option<Event>, StoreError> {
    move_from_pending(store, s, Status::AwaitingUser, None).await
}

/// Writes `s` moved from pending to `to` (under `lease`, if given): checked again in ten
/// seconds while unfinished, never once terminal.
pub(crate) async fn move_from_pending(
    store: &dyn Store,
    s: &Session,
    to: Status,
    lease: Option<&Held>,
) -> Result<Option<Event>, StoreError> {
    let mut next = s.clone();
    assert!(next.become_(to, Utc::now()));
    let next_check_at =
        (!next.status.is_terminal()).then(|| Utc::now() + chrono::Duration::seconds(10));
    let change = Change {
        session: &next,
        expected: Status::Pending,
        next_check_at,
        work: None,
        lease,
    };
    store.apply(change).await
}
