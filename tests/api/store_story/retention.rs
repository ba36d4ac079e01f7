//! Retention on both stores: a prune deletes old events first, finished sessions once none of
//! their events is left, and bundles not stored since the cutoff; unfinished sessions stay,
//! seqs go on where they were, and a cutoff in the past deletes nothing.

use std::sync::Arc;

use chrono::Utc;
use kyso::config::RetentionConfig;
use kyso::domain::Status;
use kyso::store::prune::{Cutoffs, Pruned};
use kyso::store::Store;

use super::{move_from_pending, on_both_stores, postgres_store, sqlite_store};
use crate::helpers::{new_session as new, smartca_session as session};

async fn prunes_what_is_finished_and_old(store: Arc<dyn Store>) {
    let done = session("t1", "001099300001", "done");
    let open = session("t1", "001099300002", "open");
    for s in [&done, &open] {
        store.create(&new(s, None, 1, true)).await.expect("create");
    }
    move_from_pending(&*store, &done, Status::Signed, None)
        .await
        .expect("apply")
        .expect("an event");
    store
        .put_bundle(&"a".repeat(64), "{}")
        .await
        .expect("bundle");
    let last = store.last_seq("t1").await.expect("last");
    assert_eq!(last, 3);

    // Nothing is older than a cutoff a day ago.
    let day = chrono::Duration::days(1);
    let past = Cutoffs {
        finished: Utc::now() - day,
        bundles: Utc::now() - day,
        batch: 10,
    };
    assert_eq!(store.prune(past).await.expect("prune"), Pruned::default());
    assert_eq!(store.oldest_seq("t1").await.expect("oldest"), Some(1));

    // A cutoff past everything, one row per batch: events first, then the finished session.
    let future = Cutoffs {
        finished: Utc::now() + day,
        bundles: Utc::now() + day,
        batch: 1,
    };
    let mut all = Pruned::default();
    for _ in 0..10 {
        let got = store.prune(future).await.expect("prune");
        if got.sessions > 0 {
            let left = store.oldest_seq("t1").await.expect("oldest");
            assert_eq!(left, None, "a session went while events were left: {got:?}");
        }
        all += got;
    }
    assert_eq!(
        all,
        Pruned {
            events: 3,
            sessions: 1,
            bundles: 1
        }
    );
    assert!(store.get("t1", &done.id).await.expect("get").is_none());
    assert!(
        store.get("t1", &open.id).await.expect("get").is_some(),
        "unfinished stays"
    );
    assert!(store
        .bundle(&"a".repeat(64))
        .await
        .expect("bundle")
        .is_none());
    assert_eq!(store.oldest_seq("t1").await.expect("oldest"), None);
    // Seqs go on from where they were, never reused.
    assert_eq!(store.last_seq("t1").await.expect("last"), last);
    let later = session("t1", "001099300003", "later");
    store
        .create(&new(&later, None, 1, true))
        .await
        .expect("create");
    assert_eq!(store.last_seq("t1").await.expect("last"), last + 1);
    assert_eq!(
        store.oldest_seq("t1").await.expect("oldest"),
        Some(last + 1)
    );
}

on_both_stores!(
    prunes_what_is_finished_and_old,
    retention_on_sqlite,
    retention_on_postgres
);

/// The task's pass: with `finished_days = 0` (everything finished before now) and batches of
/// two, it repeats batches until nothing is left.
#[tokio::test]
async fn a_pass_repeats_batches_until_nothing_is_left() {
    let (_dir, _, store) = sqlite_store().await;
    for i in 0..5 {
        let s = session("t1", &format!("0010993001{i:02}"), "r");
        store.create(&new(&s, None, 1, true)).await.expect("create");
        move_from_pending(&*store, &s, Status::Rejected, None)
            .await
            .expect("apply")
            .expect("event");
    }
    // Sessions expire five minutes after creation: only a cutoff past that finds them.
    let config = RetentionConfig {
        finished_days: 0,
        batch: 2,
        interval_s: 60,
    };
    let (_stop, mut stop) = tokio::sync::watch::channel(false);
    let events = kyso::engine::retention::pass(store.as_ref(), &config, &mut stop)
        .await
        .expect("pass");
    assert_eq!(events.events, 10, "{events:?}");
    assert_eq!(events.sessions, 0, "not expired yet: {events:?}");
    assert_eq!(store.oldest_seq("t1").await.expect("oldest"), None);
}
