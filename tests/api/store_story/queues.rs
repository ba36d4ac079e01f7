//! What the scheduler reads, on both stores: each tenant's queue on a provider with its
//! earliest next check, claims per tenant, the earliest deadline, and a woken session going
//! ahead of every session created after it, also when its claim is given back (so under a
//! backlog a started session finishes before new ones start).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kyso::store::{Claim, Store};

use super::{postgres_store, sqlite_store, to_awaiting, woke};
use crate::helpers::{new_session as new, smartca_session as session};

async fn queues_story(store: Arc<dyn Store>) {
    let provider = ["vnpt-smartca".to_owned()];
    // Started first: moved on to awaiting_user, next checked in ten seconds.
    let started = session("t1", "001099700001", "started");
    store
        .create(&new(&started, None, 1, true))
        .await
        .expect("create");
    to_awaiting(&*store, &started).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Created after it: pending, due now.
    let mut later = Vec::new();
    for (i, tenant) in ["t1", "t1", "t2"].iter().enumerate() {
        let s = session(tenant, &format!("00109970001{i}"), &format!("later-{i}"));
        store.create(&new(&s, None, 2, true)).await.expect("create");
        later.push(s);
    }

    let queues = store.queues("vnpt-smartca").await.expect("queues");
    let tenants: Vec<&str> = queues.iter().map(|q| q.tenant.as_str()).collect();
    assert_eq!(tenants, ["t1", "t2"], "{queues:?}");
    assert!(queues.iter().all(|q| q.next <= Utc::now()), "{queues:?}");
    assert!(store.queues("another").await.expect("queues").is_empty());
    let deadline = store.next_expiry("vnpt-smartca").await.expect("expiry");
    assert_eq!(deadline, Some(started.expires_at.trunc_subsecs_ms()));

    // The push for the started session: it goes ahead of the pending ones created after it.
    assert!(woke(&*store, &started.id, "vnpt-smartca").await);
    let first = store
        .due(Utc::now(), 1, Claim::provider(&provider).tenant("t1"))
        .await
        .expect("due");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].session.id, started.id, "the woken session first");
    // Given back unstarted (its token went elsewhere), it keeps its place ahead of them.
    let held: Vec<_> = first.iter().map(|w| w.held()).collect();
    store.release(&held).await.expect("release");
    let again = store
        .due(Utc::now(), 1, Claim::provider(&provider).tenant("t1"))
        .await
        .expect("due");
    assert_eq!(again[0].session.id, started.id, "given back, still first");
    // A tenant's claim takes only that tenant's sessions.
    let t2 = store
        .due(Utc::now(), 10, Claim::provider(&provider).tenant("t2"))
        .await
        .expect("due");
    let ids: Vec<_> = t2.iter().map(|w| w.session.id.clone()).collect();
    assert_eq!(ids, [later[2].id.clone()]);
    // Nothing has expired yet.
    let expired = store
        .due(Utc::now(), 10, Claim::provider(&provider).expired())
        .await
        .expect("due");
    assert!(expired.is_empty());
}

trait Millis {
    fn trunc_subsecs_ms(self) -> Self;
}

impl Millis for chrono::DateTime<Utc> {
    /// The stores keep milliseconds.
    fn trunc_subsecs_ms(self) -> Self {
        chrono::SubsecRound::trunc_subsecs(self, 3)
    }
}

#[tokio::test]
async fn the_scheduler_s_reads_hold_on_sqlite() {
    let (_dir, _url, store) = sqlite_store().await;
    queues_story(store).await;
}

#[tokio::test]
async fn the_scheduler_s_reads_hold_on_postgres() {
    let Some((_db, store)) = postgres_store("the_scheduler_s_reads_hold_on_postgres").await else {
        return;
    };
    queues_story(store).await;
}
