//! Lease fencing, driven on the store directly: the interleaving of issue 16 item 1. Instance A
//! claims S and stalls past its lease; B takes S over; A's late writes (status change, renewal,
//! reschedule, release) are refused and B's lease survives. Before epochs, A's status write
//! checked only the status and cleared B's lease, so a third instance could claim S while B
//! was still calling the provider.

use std::time::Duration;

use chrono::Utc;
use kyso::domain::{Session, Status};
use kyso::store::{self, Claim, Event, Held, Store, StoreError};

use crate::helpers::{new_session as new, smartca_session as session};
use crate::pg::fresh_db;
use crate::store_story::{instance, move_from_pending, sqlite_store};

/// Writes `s` moved from pending to awaiting_user under `lease`.
async fn step(store: &dyn Store, s: &Session, lease: &Held) -> Result<Option<Event>, StoreError> {
    move_from_pending(store, s, Status::AwaitingUser, Some(lease)).await
}

fn lost(r: Result<impl std::fmt::Debug, StoreError>, what: &str) {
    match r {
        Err(StoreError::LeaseLost(_)) => {}
        other => panic!("{what}: expected LeaseLost, got {other:?}"),
    }
}

#[tokio::test]
async fn a_lapsed_holder_writes_nothing_and_the_new_holder_keeps_its_lease_on_postgres() {
    let Some(db) = fresh_db("lease_fencing").await else {
        return;
    };
    let open = |name: &'static str| {
        let url = db.url.clone();
        async move { store::open(&url, &instance(name, 400)).await.expect(name) }
    };
    let (a, b, c) = (open("a").await, open("b").await, open("c").await);
    let s = session("t1", "001099400001", "fenced");
    a.create(&new(&s, None, 1, false)).await.expect("create");

    // A claims S, then stalls past its lease; B takes S over.
    let mut claimed = a.due(Utc::now(), 10, Claim::default()).await.expect("due");
    let held_a = claimed.pop().expect("A claims S").held();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let held_b = b
        .due(Utc::now(), 10, Claim::default())
        .await
        .expect("due")
        .pop()
        .expect("B takes S over")
        .held();
    assert!(held_b.epoch > held_a.epoch, "{held_b:?} after {held_a:?}");

    // A's late writes are refused, and A learns it lost S.
    lost(step(&*a, &s, &held_a).await, "A's status write");
    assert_eq!(
        a.renew(std::slice::from_ref(&held_a)).await.expect("renew"),
        std::slice::from_ref(&s.id)
    );
    let later = Utc::now() + chrono::Duration::seconds(30);
    lost(
        a.reschedule(&held_a, Status::Pending, later, None).await,
        "A's reschedule",
    );
    a.release(std::slice::from_ref(&held_a))
        .await
        .expect("release");

    // B's lease survived all of it: nobody else can claim S, and B still holds it.
    assert!(
        c.due(Utc::now(), 10, Claim::default())
            .await
            .expect("due")
            .is_empty(),
        "S is B's"
    );
    assert!(b
        .renew(std::slice::from_ref(&held_b))
        .await
        .expect("renew")
        .is_empty());
    assert_eq!(
        a.get("t1", &s.id).await.expect("get").map(|s| s.status),
        Some(Status::Pending),
        "A's step left no trace"
    );

    // The fence is the epoch, not only the owner: B gives S back, A claims it again, and A's
    // first lease still writes nothing while its new one does.
    b.release(std::slice::from_ref(&held_b))
        .await
        .expect("release");
    let held_a2 = a
        .due(Utc::now(), 10, Claim::default())
        .await
        .expect("due")
        .pop()
        .expect("A claims S again")
        .held();
    lost(step(&*a, &s, &held_a).await, "A's first lease");
    lost(step(&*b, &s, &held_b).await, "B's given-back lease");
    let ev = step(&*a, &s, &held_a2)
        .await
        .expect("apply")
        .expect("event");
    assert_eq!(ev.status, Status::AwaitingUser);
    // A write that holds no lease (an API cancel) needs only the status; a stale one whose
    // status moved on reads as unchanged, not as a lost lease.
    assert!(step(&*a, &s, &held_a2).await.expect("apply").is_none());
}

/// SQLite serves one instance: nobody can take a lease over, so the token is accepted whatever
/// its epoch, and a renewal never reports a lease lost.
#[tokio::test]
async fn sqlite_accepts_a_lease_token_without_comparing_its_epoch() {
    let (_dir, _, store) = sqlite_store().await;
    let s = session("t1", "001099400002", "single");
    store
        .create(&new(&s, None, 1, false))
        .await
        .expect("create");
    let claimed = store
        .due(Utc::now(), 10, Claim::default())
        .await
        .expect("due");
    let mut held = claimed[0].held();
    assert!(store
        .renew(std::slice::from_ref(&held))
        .await
        .expect("renew")
        .is_empty());
    held.epoch += 7;
    assert!(step(&*store, &s, &held).await.expect("apply").is_some());
}
