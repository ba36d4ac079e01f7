//! Starting the SQLite WAL over: a RESTART checkpoint the writer runs on its own connection
//! between two batches, when the checkpointer has asked for one.

use std::time::Duration;

use sqlx::SqliteConnection;

use super::BUSY_TIMEOUT;

/// How long a RESTART checkpoint may wait for readers still on the old log, holding writes
/// back meanwhile (a long reader — a backup, the sqlite3 shell — must not stall them).
const RESTART_WAIT_MS: u32 = 100;
/// After a RESTART that readers kept from finishing, the next one waits this long.
const RESTART_BACKOFF: Duration = Duration::from_secs(5);

/// A RESTART checkpoint on the writer's own connection, between two batches: no lock to
/// fight for, and queued writes wait in the channel, not on a lock. Copies the frames the
/// checkpointer's PASSIVE pass missed, then waits briefly for readers to leave the old log, so
/// the next transaction writes from the log's start. Returns when the next may run.
pub(super) async fn restart_wal(conn: &mut SqliteConnection) -> Option<tokio::time::Instant> {
    let restart = async {
        sqlx::query(&format!("PRAGMA busy_timeout = {RESTART_WAIT_MS}"))
            .execute(&mut *conn)
            .await?;
        let busy: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
                .fetch_one(&mut *conn)
                .await;
        sqlx::query(&format!(
            "PRAGMA busy_timeout = {}",
            BUSY_TIMEOUT.as_millis()
        ))
        .execute(&mut *conn)
        .await?;
        busy.map(|(busy, _, _)| busy == 0)
    };
    let done = match restart.await {
        Ok(done) => done,
        Err(e) => {
            tracing::warn!(error = %e, "WAL restart failed");
            false
        }
    };
    metrics::counter!("kyso_sqlite_wal_restarts_total", "done" => done.to_string()).increment(1);
    if done {
        return None;
    }
    tracing::warn!(
        "readers kept the SQLite WAL from starting over; retrying in {}s",
        RESTART_BACKOFF.as_secs()
    );
    Some(tokio::time::Instant::now() + RESTART_BACKOFF)
}
