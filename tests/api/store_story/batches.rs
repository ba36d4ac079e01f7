//! Writes and push claims queued together: each keeps its own answer, a bad one fails alone.

use std::sync::Arc;

use chrono::Utc;
use kyso::domain::{Session, SessionId};
use kyso::store::{Claim, Created, NewSession, Store, Woken};
use sqlx::Connection;

use super::{
    apply_awaiting, claim_due, created, on_both_stores, postgres_store, release_all, sqlite_store,
    wake_all,
};
use crate::helpers::{new_session as new, smartca_session as session};

/// Creates queued together (SQLite writes a run of plain ones with one statement per piece):
/// each is its own session with its own event, numbered in queue order, a keyed create among
/// them included.
async fn creates_queued_together(store: Arc<dyn Store>) {
    let sessions: Vec<Session> = (0..70)
        .map(|i| session("t1", &format!("0010990{i:05}"), &format!("r{i}")))
        .collect();
    let mut news: Vec<NewSession> = sessions.iter().map(|s| new(s, None, 1, true)).collect();
    news[40].idempotency_key = Some("keyed".into());
    let created = futures_util::future::join_all(news.iter().map(|n| store.create(n))).await;
    let mut seqs = Vec::new();
    for (s, c) in sessions.iter().zip(created) {
        let Created::New(ev) = c.expect("create") else {
            panic!("a new session");
        };
        assert_eq!(ev.session_id, s.id);
        assert!(ev.frame.contains(s.id.as_str()));
        seqs.push(ev.seq);
        let stored = store.get("t1", &s.id).await.expect("get").expect("stored");
        assert_eq!(
            (stored.signer, stored.reference),
            (s.signer.clone(), s.reference.clone())
        );
    }
    assert_eq!(seqs, (1..=70).collect::<Vec<i64>>());
    let replayed: Vec<SessionId> = store
        .events_after("t1", 0, 100)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.session_id)
        .collect();
    let ids: Vec<SessionId> = sessions.iter().map(|s| s.id.clone()).collect();
    assert_eq!(replayed, ids);
    let retry = new(
        &session("t1", "001099000040", "again"),
        Some("keyed"),
        1,
        true,
    );
    assert!(
        matches!(store.create(&retry).await.expect("retry"), Created::Existing(s) if s.id == sessions[40].id)
    );
}

on_both_stores!(
    creates_queued_together,
    creates_queued_together_on_sqlite,
    creates_queued_together_on_postgres
);

/// Claiming wakes queued together (SQLite claims a run of them with one statement per
/// piece, PostgreSQL a batch with one statement): each gets its own answer — claimed, only
/// marked (its session is leased), missing (unknown id, or another provider's session).
async fn wakes_queued_together(store: Arc<dyn Store>) {
    let sessions = created(&*store, 4, "0010991", "w").await;
    let claimed = store
        .due(Utc::now(), 10, Claim::default())
        .await
        .expect("due");
    assert_eq!(claimed.len(), 4);
    // The last stays leased.
    release_all(&*store, &claimed[..3]).await;
    let stranger = SessionId::generate();
    let pushes = [
        (&sessions[0].id, "vnpt-smartca", true),
        (&sessions[1].id, "vnpt-smartca", true),
        (&sessions[2].id, "viettel-sim", true),
        (&sessions[3].id, "vnpt-smartca", true),
        (&stranger, "vnpt-smartca", true),
        // A second push of a session the batch claims is news it already has; one naming
        // the wrong provider is nobody's; one that only marks finds its session.
        (&sessions[0].id, "vnpt-smartca", true),
        (&sessions[1].id, "viettel-sim", true),
        (&sessions[2].id, "vnpt-smartca", false),
    ];
    let woken = futures_util::future::join_all(
        pushes
            .iter()
            .map(|(id, provider, claim)| store.wake(id, provider, *claim)),
    )
    .await;
    let got: Vec<String> = woken
        .into_iter()
        .map(|w| match w.expect("wake") {
            Woken::Claimed(work) => {
                format!("claimed {}", work.session.reference.unwrap_or_default())
            }
            Woken::Marked => "marked".to_owned(),
            Woken::Missing => "missing".to_owned(),
        })
        .collect();
    assert_eq!(
        got,
        [
            "claimed w0",
            "claimed w1",
            "missing",
            "marked",
            "missing",
            "marked",
            "missing",
            "marked"
        ]
    );
    // Claimed means leased: the next look at due work skips them; w2 is still due.
    assert_eq!(claim_due(&*store).await, ["w2"]);
}

on_both_stores!(
    wakes_queued_together,
    wakes_queued_together_on_sqlite,
    wakes_queued_together_on_postgres
);

/// The PostgreSQL waker takes the pushes queued together in one batch (one claim statement):
/// read from its batch-size histogram, a batch of more than one push must have run. Other
/// tests' batches only add to both sums, and if pushes stopped being grouped every batch
/// anywhere would hold exactly one.
#[tokio::test]
async fn pushes_queued_together_are_claimed_in_one_batch_on_postgres() {
    let Some((_db, store)) = postgres_store("pushes_grouped").await else {
        return;
    };
    let metrics = kyso::telemetry::metrics_handle();
    let sessions = created(&*store, 32, "0010994", "g").await;
    let before = batch_wakes(&metrics.render());
    let woken = wake_all(&*store, &sessions).await;
    assert!(woken
        .into_iter()
        .all(|w| matches!(w.expect("wake"), Woken::Claimed(_))));
    let after = batch_wakes(&metrics.render());
    let (pushes, batches) = (after.0 - before.0, after.1 - before.1);
    assert!(batches >= 1.0, "the waker recorded no batch: {after:?}");
    assert!(
        pushes > batches,
        "{pushes} pushes in {batches} batches: one statement per push"
    );
}

/// `kyso_postgres_batch_wakes`' sum (pushes) and count (batches) in a Prometheus rendering.
fn batch_wakes(rendered: &str) -> (f64, f64) {
    let value = |name: &str| {
        rendered
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("kyso_postgres_batch_wakes_sum "),
        value("kyso_postgres_batch_wakes_count "),
    )
}

/// PostgreSQL writes queued together share one transaction; a change that fails must fail
/// alone, and the others still commit with gap-free event numbers.
#[tokio::test]
async fn one_bad_change_in_a_postgres_batch_fails_alone() {
    let Some((_db, store)) = postgres_store("one_bad_change_in_a_postgres_batch_fails_alone").await
    else {
        return;
    };
    let a = session("t1", "001099012345", "r1");
    let mut twin = session("t1", "001099012346", "r2");
    twin.id = a.id.clone(); // the same primary key: its insert must fail
    let b = session("t1", "001099012347", "r3");
    // Queued in one poll, so the writer takes them as one batch.
    let (na, ntwin, nb) = (
        new(&a, None, 1, true),
        new(&twin, None, 2, true),
        new(&b, None, 3, true),
    );
    let (ra, rtwin, rb) = tokio::join!(store.create(&na), store.create(&ntwin), store.create(&nb));
    assert!(matches!(ra.expect("a"), Created::New(_)));
    assert!(
        rtwin.is_err(),
        "a second session with the same id is refused"
    );
    assert!(matches!(rb.expect("b"), Created::New(_)));
    let seqs: Vec<i64> = store
        .events_after("t1", 0, 10)
        .await
        .expect("events")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2]);
    assert!(store.get("t1", &b.id).await.expect("get").is_some());
}

/// A change PostgreSQL refuses fails alone: the writer's batch of status changes and the
/// waker's batch of push claims each fail as a whole when one row is refused, and are then run
/// change by change, so the refused one's neighbours still succeed. A trigger refuses one
/// session's updates (the writer's first; then the waker's).
#[tokio::test]
async fn a_refused_change_fails_alone_on_postgres() {
    let Some((db, store)) = postgres_store("a_refused_change_fails_alone_on_postgres").await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let sessions = created(&*store, 8, "0010995", "r").await;
    let refuse = |id: &SessionId| {
        format!(
            "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.id = '{id}' THEN RAISE EXCEPTION 'refused by the test'; END IF;
                 RETURN NEW;
             END $$"
        )
    };
    sqlx::query(&refuse(&sessions[3].id))
        .execute(&mut conn)
        .await
        .expect("function");
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION refuse()",
    )
    .execute(&mut conn)
    .await
    .expect("trigger");

    // One task, one thread: every change is queued before the writer runs.
    let applied =
        futures_util::future::join_all(sessions.iter().map(|s| apply_awaiting(&*store, s))).await;
    for (i, result) in applied.iter().enumerate() {
        match (i, result) {
            (3, Err(_)) => {}
            (3, Ok(_)) => panic!("the refused change succeeded"),
            (_, Ok(Some(_))) => {}
            (_, other) => panic!("change {i} failed with its refused neighbour: {other:?}"),
        }
    }

    // Now the waker: session 5's claim is refused.
    sqlx::query(&refuse(&sessions[5].id))
        .execute(&mut conn)
        .await
        .expect("function");
    let woken = wake_all(&*store, &sessions).await;
    for (i, result) in woken.iter().enumerate() {
        match (i, result) {
            (5, Err(_)) => {}
            (5, Ok(w)) => panic!("the refused claim succeeded: {w:?}"),
            (_, Ok(Woken::Claimed(_))) => {}
            (_, other) => panic!("push {i} failed with its refused neighbour: {other:?}"),
        }
    }
}
