//! The SQLite checkpointer: copies the WAL back into the database file beside the writer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::mpsc;

use super::writer::Op;

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Checkpoints the WAL beside the writer until the store is gone. PASSIVE never blocks the
/// writer or readers, and the writer starts the log over when its transaction begins with
/// every frame copied — which, under constant writes, never happens: a batch always commits
/// while the checkpoint runs, and the log grows as long as the load lasts. So once the log
/// holds `limit` bytes, the checkpointer asks the writer (through `restart`) to run a RESTART
/// checkpoint between two batches: it copies what the PASSIVE one just missed, and the next
/// transaction writes from the log's start (see `writer::wal::restart_wal`).
pub(super) async fn run(
    pool: SqlitePool,
    store: mpsc::WeakSender<Op>,
    limit: u64,
    restart: Arc<AtomicBool>,
) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The log's size when a restart was last asked for: until a write starts the log over,
    // PASSIVE keeps reporting it, and there is nothing to ask again.
    let mut asked_at = 0;
    let mut page = None;
    loop {
        every.tick().await;
        if store.upgrade().is_none() {
            break;
        }
        match wal_bytes_after_checkpoint(&pool, &mut page).await {
            Ok(bytes) if bytes >= limit && bytes != asked_at => {
                asked_at = bytes;
                restart.store(true, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
    pool.close().await;
}

/// Runs a PASSIVE checkpoint; returns the log's size in bytes. The page size is read once.
async fn wal_bytes_after_checkpoint(
    pool: &SqlitePool,
    page: &mut Option<u64>,
) -> Result<u64, sqlx::Error> {
    // (busy, frames in the log (-1 when not in WAL mode), frames copied)
    let (_, frames, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    let page = match *page {
        Some(bytes) => bytes,
        None => {
            let bytes: i64 = sqlx::query_scalar("PRAGMA page_size")
                .fetch_one(pool)
                .await?;
            *page.insert(u64::try_from(bytes).unwrap_or(0))
        }
    };
    Ok(u64::try_from(frames).unwrap_or(0).saturating_mul(page))
}
