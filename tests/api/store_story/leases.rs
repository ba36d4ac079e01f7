//! Leases: a claimed session belongs to one instance until its lease runs out.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kyso::store::{self, Claim, Created, Held, Store};

use super::{claim_due, instance, on_both_stores, postgres_store, sqlite_store};
use crate::helpers::{new_session as new, smartca_session as session};
use crate::pg::fresh_db;

/// The tokio instant 300 ms after `lease` (a wall-clock time).
fn lease_end(lease: chrono::DateTime<Utc>) -> tokio::time::Instant {
    let left = (lease - Utc::now()).to_std().unwrap_or_default();
    tokio::time::Instant::now() + left + Duration::from_millis(300)
}

/// A session its creator starts at once is written claimed: the scheduler leaves it alone
/// until the lease runs out (the creator never wrote it), then takes it — keyed or not.
async fn leased_creates(store: Arc<dyn Store>) {
    // 2 s: the creates and the first claim fit well inside it on a slow machine.
    let lease = Utc::now() + chrono::Duration::milliseconds(2000);
    let plain = session("t1", "001099200001", "plain");
    let keyed = session("t1", "001099200002", "keyed");
    let open = session("t1", "001099200003", "open");
    let mut news = [
        new(&plain, None, 1, true),
        new(&keyed, Some("lease-key"), 1, true),
        new(&open, None, 1, true),
    ];
    news[0].lease_until = Some(lease);
    news[1].lease_until = Some(lease);
    for n in &news {
        assert!(matches!(
            store.create(n).await.expect("create"),
            Created::New(_)
        ));
    }
    assert_eq!(claim_due(&*store).await, ["open"]);
    tokio::time::sleep_until(lease_end(lease)).await;
    assert_eq!(claim_due(&*store).await, ["keyed", "plain"]);

    // A leased create given back (its creator could not start it after all) is due at once,
    // not at its lease's end.
    let given = session("t1", "001099200004", "given");
    let mut n = new(&given, None, 1, true);
    n.lease_until = Some(Utc::now() + chrono::Duration::seconds(60));
    store.create(&n).await.expect("create");
    assert!(claim_due(&*store).await.is_empty());
    let held = Held {
        id: given.id.clone(),
        epoch: store::CREATED_EPOCH,
    };
    store
        .release(std::slice::from_ref(&held))
        .await
        .expect("release");
    assert_eq!(claim_due(&*store).await, ["given"]);
}

on_both_stores!(
    leased_creates,
    leased_creates_on_sqlite,
    leased_creates_on_postgres
);

#[tokio::test]
async fn a_leased_session_goes_to_one_instance_and_moves_on_when_the_lease_expires() {
    let Some(db) = fresh_db("leases").await else {
        return;
    };
    let one = store::open(&db.url, &instance("one", 3000))
        .await
        .expect("one");
    let two = store::open(&db.url, &instance("two", 3000))
        .await
        .expect("two");
    let s = session("t1", "001099012345", "r");
    one.create(&new(&s, None, 1, false)).await.expect("create");
    let claimed = one
        .due(Utc::now(), 10, Claim::default())
        .await
        .expect("due");
    assert_eq!(claimed.len(), 1);
    assert!(
        two.due(Utc::now(), 10, Claim::default())
            .await
            .expect("due")
            .is_empty(),
        "leased to one"
    );
    // Renewal keeps it; without renewal (the instance died) it moves on. A 3 s lease renewed
    // at 1 s runs to 4 s: checked at 3.3 s (past the first expiry, 0.7 s before the renewed
    // one) and at 4.6 s (0.6 s past it), margins a slow machine keeps.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let lost = one.renew(&[claimed[0].held()]).await.expect("renew");
    assert!(lost.is_empty(), "still held");
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert!(
        two.due(Utc::now(), 10, Claim::default())
            .await
            .expect("due")
            .is_empty(),
        "renewed"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        two.due(Utc::now(), 10, Claim::default())
            .await
            .expect("due")
            .len(),
        1,
        "taken over"
    );
}
