//! SQLite's WAL: checkpoints beside the writer, restarts under load and behind a long reader.

use std::sync::Arc;
use std::time::Duration;

use kyso::store::{self, StoreOptions};

use crate::helpers::{new_session as new, smartca_session as session};

/// SQLite's writer never checkpoints (a checkpoint's sync would stall every queued write);
/// the checkpointer copies the WAL into the database file beside it.
#[tokio::test]
async fn sqlite_checkpoints_the_wal_beside_the_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.db");
    let store = store::open(
        &format!("sqlite://{}", file.display()),
        &StoreOptions::default(),
    )
    .await
    .expect("sqlite");
    let before = std::fs::metadata(&file).expect("db file").len();
    for i in 0..300 {
        let s = session("t1", &format!("0010990{i:05}"), "r");
        store.create(&new(&s, None, 1, true)).await.expect("create");
    }
    // The sessions reach the database file itself within a few checkpoint periods.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let grown = loop {
        let len = std::fs::metadata(&file).expect("db file").len();
        if len > before + 100_000 || tokio::time::Instant::now() > deadline {
            break len;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        grown > before + 100_000,
        "database file {before} → {grown} bytes: the WAL was not checkpointed"
    );
}

/// Under writes that never pause, a PASSIVE checkpoint never lets the writer start the WAL
/// over, and the log grows for as long as the load lasts; once it passes `wal_limit` the
/// checkpointer forces a restart. Each restart bumps the checkpoint sequence number in the
/// WAL header (bytes 12..16), read here while the writers are still busy.
#[tokio::test]
async fn sqlite_restarts_the_wal_under_constant_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.db");
    let wal = dir.path().join("s.db-wal");
    let options = StoreOptions {
        wal_limit: 1 << 20,
        ..StoreOptions::default()
    };
    let store = store::open(&format!("sqlite://{}", file.display()), &options)
        .await
        .expect("sqlite");
    let restarts = || {
        let header = std::fs::read(&wal).unwrap_or_default();
        header
            .get(12..16)
            .map_or(0, |b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
    };
    // 16 writers back to back: the writer's queue is never empty until they stop.
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (store, busy) = (store.clone(), busy.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while busy.load(std::sync::atomic::Ordering::Relaxed) {
                    let s = session("t1", &format!("001{w:02}{i:07}"), "r");
                    store.create(&new(&s, None, 1, true)).await.expect("create");
                    i += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let first = restarts();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut last = first;
    while last < first + 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = restarts();
    }
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    assert!(
        last >= first + 3,
        "the WAL started over {} times in 10 s of constant writes",
        last - first
    );
}

/// A reader that keeps an old snapshot open (a backup, the sqlite3 shell) keeps the WAL from
/// starting over; the restart must give up quickly instead of holding every write back for the
/// busy timeout (5 s).
#[tokio::test]
async fn a_long_reader_does_not_stall_sqlite_writes_at_a_wal_restart() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let options = StoreOptions {
        wal_limit: 1 << 20,
        ..StoreOptions::default()
    };
    let store = store::open(&url, &options).await.expect("sqlite");
    let s = session("t1", "001099000001", "r");
    store.create(&new(&s, None, 1, true)).await.expect("create");
    let mut reader = sqlx::SqliteConnection::connect(&url).await.expect("reader");
    sqlx::query("BEGIN")
        .execute(&mut reader)
        .await
        .expect("begin");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&mut reader)
        .await
        .expect("snapshot");
    assert_eq!(n, 1);
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let (mut i, mut slowest) = (0, Duration::ZERO);
                while tokio::time::Instant::now() < until {
                    let s = session("t1", &format!("002{w:02}{i:07}"), "r");
                    let started = tokio::time::Instant::now();
                    store.create(&new(&s, None, 1, true)).await.expect("create");
                    slowest = slowest.max(started.elapsed());
                    i += 1;
                }
                slowest
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for w in writers {
        slowest = slowest.max(w.await.expect("writer"));
    }
    // The reader's snapshot kept the WAL from starting over, so it grew past its limit: the
    // writes above did meet the restart this test is about.
    let wal = std::fs::metadata(dir.path().join("s.db-wal")).map_or(0, |m| m.len());
    assert!(wal >= 1 << 20, "the WAL reached only {wal} bytes");
    sqlx::query("COMMIT")
        .execute(&mut reader)
        .await
        .expect("end");
    assert!(
        slowest < Duration::from_secs(1),
        "a write waited {slowest:?} behind a WAL restart"
    );
}
