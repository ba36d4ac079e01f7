//! The story every store tells: sessions, events, claims, pushes, bundles.

use std::sync::Arc;

use chrono::Utc;
use kyso::domain::Status;
use kyso::store::{Change, Claim, Created, ListFilter, Store, Woken, Work};

use super::{
    create_claimed, on_both_stores, postgres_store, release_all, release_one, sqlite_store,
    to_awaiting, woke,
};
use crate::helpers::{new_session as new, smartca_session as session};

async fn story(store: Arc<dyn Store>) {
    // Creating writes the session and its first event.
    let a = session("t1", "001099012345", "r1");
    let Created::New(ev) = store
        .create(&new(&a, Some("k1"), 1, false))
        .await
        .expect("create")
    else {
        panic!("a new session");
    };
    assert_eq!((ev.seq, ev.status), (1, Status::Pending));

    // Idempotency, signer_busy, tenant isolation.
    let retry = session("t1", "001099012345", "r1");
    assert!(
        matches!(store.create(&new(&retry, Some("k1"), 1, false)).await.expect("c"), Created::Existing(s) if s.id == a.id)
    );
    assert!(matches!(
        store
            .create(&new(&retry, Some("k1"), 2, false))
            .await
            .expect("c"),
        Created::IdempotencyMismatch
    ));
    assert!(matches!(
        store.create(&new(&retry, None, 3, false)).await.expect("c"),
        Created::SignerBusy
    ));
    let b = session("t1", "001099012345", "r2");
    assert!(matches!(
        store.create(&new(&b, None, 4, true)).await.expect("c"),
        Created::New(_)
    ));
    assert!(store.get("t2", &a.id).await.expect("get").is_none());
    assert_eq!(
        store.get("t1", &a.id).await.expect("get").map(|s| s.id),
        Some(a.id.clone())
    );

    // Due work is claimed, then moved on by a state change with its event.
    // A claim for another provider leaves these alone.
    let other = store
        .due(
            Utc::now(),
            10,
            Claim::provider(&["another-provider".to_owned()]),
        )
        .await
        .expect("due");
    assert!(other.is_empty());
    let due = store
        .due(
            Utc::now(),
            10,
            Claim::provider(&["vnpt-smartca".to_owned()]),
        )
        .await
        .expect("due");
    assert_eq!(due.len(), 2);
    let mut a2 = a.clone();
    assert!(a2.become_(Status::AwaitingUser, Utc::now()));
    let next = Utc::now() + chrono::Duration::seconds(60);
    let change = Change {
        session: &a2,
        expected: Status::Pending,
        next_check_at: Some(next),
        work: Some("{\"provider\":1}"),
        lease: None,
    };
    let ev = store.apply(change).await.expect("apply").expect("event");
    assert_eq!((ev.seq, ev.status), (3, Status::AwaitingUser));
    let stale = Change {
        session: &a2,
        expected: Status::Pending,
        next_check_at: None,
        work: None,
        lease: None,
    };
    assert!(
        store.apply(stale).await.expect("apply").is_none(),
        "a stale change is refused"
    );
    release_one(&*store, &due, &b.id).await;

    // Not due until its time, or until a callback wakes it.
    let due = store
        .due(Utc::now(), 10, Claim::default())
        .await
        .expect("due");
    let ids: Vec<_> = due.iter().map(|w| w.session.id.clone()).collect();
    assert_eq!(ids, vec![b.id.clone()]);
    release_all(&*store, &due).await;
    assert!(
        !woke(&*store, &a.id, "viettel-sim").await,
        "only by its own provider"
    );
    assert!(woke(&*store, &a.id, "vnpt-smartca").await);
    let due = store
        .due(Utc::now(), 10, Claim::default())
        .await
        .expect("due");
    let woken = due
        .iter()
        .find(|w| w.session.id == a.id)
        .expect("woken session is due");
    assert_eq!(woken.work.as_deref(), Some("{\"provider\":1}"));
    release_all(&*store, &due).await;

    // A terminal state is final: never due again, never changed.
    let mut a3 = a2.clone();
    assert!(a3.become_(Status::Signed, Utc::now()));
    let done = Change {
        session: &a3,
        expected: Status::AwaitingUser,
        next_check_at: None,
        work: None,
        lease: None,
    };
    let signed = store.apply(done).await.expect("apply").expect("an event");
    assert!(!woke(&*store, &a.id, "vnpt-smartca").await);
    let mut a4 = a2.clone();
    a4.become_(Status::Rejected, Utc::now());
    let late = Change {
        session: &a4,
        expected: Status::AwaitingUser,
        next_check_at: None,
        work: None,
        lease: None,
    };
    assert!(store.apply(late).await.expect("apply").is_none());
    let due = store
        .due(Utc::now(), 10, Claim::default())
        .await
        .expect("due");
    assert!(due.iter().all(|w| w.session.id != a.id));
    assert_eq!(
        store.get("t1", &a.id).await.expect("get").map(|s| s.status),
        Some(Status::Signed)
    );

    // Reschedule (under the lease that look took) moves the next check without an event.
    let ids: Vec<_> = due.iter().map(|w| w.session.id.clone()).collect();
    assert_eq!(ids, vec![b.id.clone()]);
    assert!(store
        .reschedule(
            &due[0].held(),
            Status::Pending,
            Utc::now() + chrono::Duration::seconds(60),
            None
        )
        .await
        .expect("resched"));

    // The outbox has every event, gap-free, in order, per tenant.
    let events = store.events_after("t1", 0, 100).await.expect("events");
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert!(events[3].frame.contains("\"status\":\"signed\""));
    // A terminal event's frame is rendered from the session's row on replay (it is not stored
    // twice): the same bytes as the frame sent live.
    assert_eq!(events[3].frame, signed.frame);
    assert!(events[..3].iter().all(|e| !e.frame.contains("\"signed\"")));
    assert_eq!(
        store
            .events_after("t1", 2, 100)
            .await
            .expect("events")
            .len(),
        2
    );
    assert!(store
        .events_after("t2", 0, 100)
        .await
        .expect("events")
        .is_empty());

    // Listing: newest first, filtered, paginated.
    let all = store
        .list(
            "t1",
            &ListFilter {
                limit: 10,
                ..ListFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(
        all.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![b.id.clone(), a.id.clone()]
    );
    let signed = store
        .list(
            "t1",
            &ListFilter {
                status: Some(Status::Signed),
                limit: 10,
                ..ListFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(signed.len(), 1);
    let r2 = store
        .list(
            "t1",
            &ListFilter {
                reference: Some("r2".into()),
                limit: 10,
                ..ListFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(r2.len(), 1);
    let older = store
        .list(
            "t1",
            &ListFilter {
                before: Some(b.id.clone()),
                limit: 10,
                ..ListFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(
        older.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![a.id.clone()]
    );
    // A callback that lands while a step is writing its change is not lost: the session is
    // due at once rather than at the time the step scheduled.
    let c = session("t1", "001099012347", "r3");
    create_claimed(&*store, &c, 5).await;
    assert!(woke(&*store, &c.id, "vnpt-smartca").await);
    let mut c2 = c.clone();
    c2.become_(Status::AwaitingUser, Utc::now());
    let later = Utc::now() + chrono::Duration::seconds(60);
    let step = Change {
        session: &c2,
        expected: Status::Pending,
        next_check_at: Some(later),
        work: None,
        lease: None,
    };
    assert!(store.apply(step).await.expect("apply").is_some());
    let due = store
        .due(Utc::now(), 10, Claim::default())
        .await
        .expect("due");
    assert!(
        due.iter().any(|w| w.session.id == c.id),
        "the callback's wake survived the step"
    );
    release_all(&*store, &due).await;

    // A push may claim the session it wakes, so its check starts without a scheduler pass;
    // a session already claimed is only marked, and is claimed by nobody else meanwhile.
    let d = session("t1", "001099012348", "r4");
    // On the phone, next checked in a minute.
    let claimed = create_claimed(&*store, &d, 6).await;
    to_awaiting(&*store, &d).await;
    let others: Vec<_> = claimed
        .iter()
        .filter(|w| w.session.id != d.id)
        .map(Work::held)
        .collect();
    store.release(&others).await.expect("release");
    let pushed = match store.wake(&d.id, "vnpt-smartca", true).await.expect("wake") {
        Woken::Claimed(w) => *w,
        other => panic!("expected a claim, got {other:?}"),
    };
    assert_eq!(pushed.session.id, d.id);
    // A pushed session whose claim is given back unstarted is due at once, not at its
    // scheduled check a minute away: the push is not lost.
    release_all(&*store, std::slice::from_ref(&pushed)).await;
    let due = store
        .due(Utc::now(), 10, Claim::default())
        .await
        .expect("due");
    assert!(
        due.iter().any(|w| w.session.id == d.id),
        "a released pushed session is due now"
    );
    // Claimed (by that look at due work): a push only marks it, and nobody else takes it.
    assert!(matches!(
        store.wake(&d.id, "vnpt-smartca", true).await.expect("wake"),
        Woken::Marked
    ));
    let again = store
        .due(Utc::now(), 10, Claim::default())
        .await
        .expect("due");
    assert!(
        again.iter().all(|w| w.session.id != d.id),
        "a claimed session is nobody else's"
    );
    let all: Vec<_> = due.iter().chain(&again).map(Work::held).collect();
    store.release(&all).await.expect("release");
    assert!(matches!(
        store.wake(&d.id, "viettel-sim", true).await.expect("wake"),
        Woken::Missing
    ));

    store.ping().await.expect("ping");
}

#[tokio::test]
async fn the_store_story_holds_on_sqlite() {
    let (_dir, url, store) = sqlite_store().await;
    story(store).await;
    let pool = sqlx::SqlitePool::connect(&url).await.expect("reopen");
    assert_eq!(
        sqlx::query_scalar::<_, String>(BARE_FRAMES)
            .fetch_all(&pool)
            .await
            .expect("outbox"),
        ["signed"]
    );
}

/// The statuses of the story's events stored without a frame: only the terminal one keeps no
/// copy of the session's body (it is rendered from the session row on replay).
const BARE_FRAMES: &str =
    "SELECT status FROM outbox WHERE tenant = 't1' AND frame IS NULL ORDER BY seq";

#[tokio::test]
async fn the_store_story_holds_on_postgres() {
    let Some((db, store)) = postgres_store("the_store_story_holds_on_postgres").await else {
        return;
    };
    story(store).await;
    let pool = sqlx::PgPool::connect(&db.url).await.expect("reconnect");
    assert_eq!(
        sqlx::query_scalar::<_, String>(BARE_FRAMES)
            .fetch_all(&pool)
            .await
            .expect("outbox"),
        ["signed"]
    );
}

/// A certificate bundle is stored once under its digest and read back by it.
async fn bundles_story(store: Arc<dyn Store>) {
    assert_eq!(store.bundle("ab").await.expect("read"), None);
    store
        .put_bundle("ab", r#"{"certificate":"AA=="}"#)
        .await
        .expect("put");
    // A second put of the digest changes nothing (another session of the same signer).
    store
        .put_bundle("ab", r#"{"other":true}"#)
        .await
        .expect("put again");
    let got = store.bundle("ab").await.expect("read");
    assert_eq!(got.as_deref(), Some(r#"{"certificate":"AA=="}"#));
}

on_both_stores!(
    bundles_story,
    bundles_are_stored_once_on_sqlite,
    bundles_are_stored_once_on_postgres
);
