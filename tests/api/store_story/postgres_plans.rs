//! PostgreSQL's plans on a grown table: index reads, heap-only push claims.

use std::time::Duration;

use chrono::Utc;
use kyso::domain::{Session, SessionId};
use kyso::store::{Claim, Held, Woken, Work};
use sqlx::Connection;

use super::{postgres_store, to_awaiting};
use crate::helpers::{new_session as new, smartca_session as session};

/// The sessions table's (rows read by sequential scans and through indexes, rows updated), as
/// PostgreSQL's statistics have them once they count `updates` updates (they arrive late: a
/// backend reports within about ten seconds of going idle); at most 20 s.
async fn table_reads_after(conn: &mut sqlx::PgConnection, updates: i64) -> (i64, i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now: (i64, i64) = sqlx::query_as(
            "SELECT seq_tup_read + COALESCE(idx_tup_fetch, 0), n_tup_upd
             FROM pg_stat_user_tables WHERE relname = 'sessions'",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("pg_stat_user_tables");
        assert!(now.1 <= updates, "more updates than expected: {now:?}");
        if now.1 == updates {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the statistics never counted {updates} updates: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A deployment starts with an empty `sessions` table and keeps its connections while the table
/// grows. A statement kept prepared switches to a cached generic plan after five runs, and one
/// planned on a tiny table may read it whole (a sequential scan, or a whole index: the status
/// change's UPDATE once joined every row, a push's claim read the whole primary key). After
/// 24 status changes, push claims and marks, looks at due work (queues, next deadline, a
/// tenant's claim), renewals and releases on a
/// tiny table (enough for each pooled connection to cache its plans) and 4,000 more open
/// sessions, one more of each must read a handful of rows, not the table.
#[tokio::test]
async fn a_grown_table_is_not_scanned_on_postgres() {
    let Some((db, store)) = postgres_store("a_grown_table_is_not_scanned_on_postgres").await else {
        return;
    };
    // No statistics are gathered meanwhile: the plans cached on the tiny table stay cached
    // when it grows (an ANALYZE would make PostgreSQL plan again, and the test pass by luck).
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query("ALTER TABLE sessions SET (autovacuum_enabled = false)")
        .execute(&mut conn)
        .await
        .expect("autovacuum off");
    // Status change, push claim, push mark, release; a look at due work, a renewal, a
    // release: seven updates per session.
    let story = |s: Session| {
        let store = store.clone();
        async move {
            store.create(&new(&s, None, 1, true)).await.expect("create");
            to_awaiting(&*store, &s).await;
            let claimed = match store.wake(&s.id, "vnpt-smartca", true).await.expect("wake") {
                Woken::Claimed(w) => w.held(),
                other => panic!("expected a claim, got {other:?}"),
            };
            let marked = store
                .wake(&s.id, "vnpt-smartca", false)
                .await
                .expect("wake");
            assert!(matches!(marked, Woken::Marked));
            store
                .release(std::slice::from_ref(&claimed))
                .await
                .expect("release");
            // The scheduler's look: the provider's queues, its next deadline, then the
            // tenant's oldest due session (released ones stay due), renewed and given back.
            let queues = store.queues("vnpt-smartca").await.expect("queues");
            assert!(queues.iter().any(|q| q.tenant == "t1"), "{queues:?}");
            store
                .next_expiry("vnpt-smartca")
                .await
                .expect("next expiry");
            let provider = ["vnpt-smartca".to_owned()];
            let due = store
                .due(Utc::now(), 1, Claim::provider(&provider).tenant("t1"))
                .await
                .expect("due");
            let held: Vec<Held> = due.iter().map(Work::held).collect();
            assert_eq!(held.len(), 1);
            store.renew(&held).await.expect("renew");
            store.release(&held).await.expect("release");
        }
    };
    for i in 0..24 {
        story(session(
            "t1",
            &format!("00109930{i:04}"),
            &format!("small-{i}"),
        ))
        .await;
    }
    // Open sessions far from due: in every index, the partial ones too.
    sqlx::query(
        "INSERT INTO sessions (id, tenant, provider, signer, status, created_at, expires_at,
                               next_check_at, body)
         SELECT 'grown-' || g, 't2', 'vnpt-smartca', '001099000001', 'awaiting_user', 0,
                9000000000000000, 9000000000000000, '{}'
         FROM generate_series(1, 4000) AS g",
    )
    .execute(&mut conn)
    .await
    .expect("grow the table");

    // Each reading waits for the count of updates it expects: 168 before, 175 after.
    let before = table_reads_after(&mut conn, 168).await;
    story(session("t1", "001099310000", "grown")).await;
    let after = table_reads_after(&mut conn, 175).await;
    let read = after.0 - before.0;
    assert!(
        read < 1_000,
        "a status change, a push claim and mark, a look at due work (queues, deadline, claim), \
         a renewal and releases read {read} rows"
    );
}

/// A push's claim on a session checked later keeps that next check, so the claim changes no
/// indexed column and PostgreSQL writes it as a heap-only tuple (no new entry in any index); a
/// session already due moves to its lease's end instead, out of the due index's head.
#[tokio::test]
async fn a_push_claim_keeps_a_later_next_check_on_postgres() {
    let Some((db, store)) =
        postgres_store("a_push_claim_keeps_a_later_next_check_on_postgres").await
    else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let next_check = |id: SessionId| {
        sqlx::query_scalar::<_, Option<i64>>("SELECT next_check_at FROM sessions WHERE id = $1")
            .bind(id.to_string())
    };
    let later = session("t1", "001099330000", "later");
    store
        .create(&new(&later, None, 1, false))
        .await
        .expect("create");
    to_awaiting(&*store, &later).await;
    let before = next_check(later.id.clone())
        .fetch_one(&mut conn)
        .await
        .expect("read");
    let claimed = store
        .wake(&later.id, "vnpt-smartca", true)
        .await
        .expect("wake");
    assert!(matches!(claimed, Woken::Claimed(_)));
    let after = next_check(later.id.clone())
        .fetch_one(&mut conn)
        .await
        .expect("read");
    assert_eq!(before, after, "the claim moved a later next check");

    // Two updates so far (status change, claim); the statistics arrive late.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let hot = loop {
        let (updates, hot): (i64, i64) = sqlx::query_as(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'sessions'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_user_tables");
        if updates >= 2 {
            break hot;
        }
        assert!(tokio::time::Instant::now() < deadline, "no statistics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(hot >= 1, "the claim was not a heap-only update");

    // Pending and due now: claimed until its lease's end, and due then.
    let due = session("t1", "001099330001", "due");
    store
        .create(&new(&due, None, 1, false))
        .await
        .expect("create");
    let claimed = store
        .wake(&due.id, "vnpt-smartca", true)
        .await
        .expect("wake");
    assert!(matches!(claimed, Woken::Claimed(_)));
    let (next, lease): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT next_check_at, lease_until FROM sessions WHERE id = $1")
            .bind(due.id.to_string())
            .fetch_one(&mut conn)
            .await
            .expect("read");
    assert!(lease.is_some() && next == lease, "{next:?} / {lease:?}");
}
