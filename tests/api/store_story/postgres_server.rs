//! PostgreSQL server features and connections: lz4 compression, connections dropped while idle.

use std::time::Duration;

use kyso::store::{Held, Woken};
use sqlx::Connection;

use super::postgres_store;
use crate::helpers::{new_session as new, smartca_session as session};

/// Session bodies, work states and event frames are compressed with lz4 where the server has it (this
/// server's build is asked, so the test holds on one without it too).
#[tokio::test]
async fn bodies_are_compressed_with_lz4_on_postgres() {
    let Some((db, _store)) = postgres_store("bodies_are_compressed_with_lz4_on_postgres").await
    else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let version: String = sqlx::query_scalar("SHOW server_version_num")
        .fetch_one(&mut conn)
        .await
        .expect("version");
    if version.parse::<u32>().expect("a number") < 140_000 {
        eprintln!("notice: PostgreSQL {version} has no per-column compression; nothing to check");
        return;
    }
    let has_lz4 = sqlx::query("CREATE TEMP TABLE probe (t text COMPRESSION lz4)")
        .execute(&mut conn)
        .await
        .is_ok();
    let methods: Vec<(String, String)> = sqlx::query_as(
        "SELECT attname::text, attcompression::text FROM pg_attribute
         WHERE (attrelid, attname) IN (('sessions'::regclass, 'body'),
                                       ('sessions'::regclass, 'work'),
                                       ('outbox'::regclass, 'frame'))
         ORDER BY attname",
    )
    .fetch_all(&mut conn)
    .await
    .expect("pg_attribute");
    let expected = if has_lz4 { "l" } else { "" };
    assert_eq!(
        methods,
        ["body", "frame", "work"].map(|c| (c.to_owned(), expected.to_owned()))
    );
}

/// A connection is handed out without a ping only when it went back to the pool moments ago:
/// connections the server dropped while they sat idle longer are found dead by the ping and
/// replaced, so no caller sees their error.
#[tokio::test]
async fn connections_dropped_while_idle_are_replaced_on_postgres() {
    let Some((db, store)) =
        postgres_store("connections_dropped_while_idle_are_replaced_on_postgres").await
    else {
        return;
    };
    let a = session("t1", "001099320000", "before");
    store
        .create(&new(&a, None, 1, false))
        .await
        .expect("create");
    // Several pooled connections, each used once (both pools: reads and hints).
    let reads = (0..4).map(|_| store.get("t1", &a.id));
    for got in futures_util::future::join_all(reads).await {
        assert!(got.expect("get").is_some());
    }
    store
        .release(&[Held {
            id: a.id.clone(),
            epoch: 0,
        }])
        .await
        .expect("release");

    let mut admin = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let dropped: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .expect("terminate");
    assert!(
        dropped.len() >= 3,
        "the store held {} connections",
        dropped.len()
    );
    tokio::time::sleep(Duration::from_millis(800)).await;

    // Each call below would take a dead connection if none were checked.
    for _ in 0..4 {
        assert!(store.get("t1", &a.id).await.expect("get").is_some());
    }
    store
        .release(&[Held {
            id: a.id.clone(),
            epoch: 0,
        }])
        .await
        .expect("release");
    let b = session("t1", "001099320001", "after");
    store
        .create(&new(&b, None, 1, false))
        .await
        .expect("create after");
    let claimed = store.wake(&b.id, "vnpt-smartca", true).await.expect("wake");
    assert!(matches!(claimed, Woken::Claimed(_)));
}
