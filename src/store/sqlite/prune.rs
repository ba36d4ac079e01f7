//! Retention's deletes on SQLite (see `store::prune`), on their own connection: each statement
//! is its own short transaction, so the writer waits at most one batch behind it.

use sqlx::SqlitePool;

use super::super::prune::{Cutoffs, Pruned};
use super::super::{ms, StoreError};

pub(super) async fn run(pool: &SqlitePool, cut: Cutoffs) -> Result<Pruned, StoreError> {
    let finished = ms(cut.finished);
    let batch = i64::from(cut.batch);
    let events = sqlx::query(
        "DELETE FROM outbox WHERE (tenant, seq) IN
           (SELECT tenant, seq FROM outbox WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)",
    )
    .bind(finished)
    .bind(batch)
    .execute(pool)
    .await?
    .rows_affected();
    let older_left: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM outbox WHERE created_at < ?1)")
            .bind(finished)
            .fetch_one(pool)
            .await?;
    let sessions = if older_left {
        0
    } else {
        sqlx::query(
            "DELETE FROM sessions WHERE id IN
               (SELECT id FROM sessions
                 WHERE next_check_at IS NULL AND expires_at < ?1
                   AND unixepoch(json_extract(body, '$.completed_at'), 'subsec') * 1000 < ?1
                 ORDER BY expires_at LIMIT ?2)",
        )
        .bind(ms(cut.sessions()))
        .bind(batch)
        .execute(pool)
        .await?
        .rows_affected()
    };
    let bundles = sqlx::query(
        "DELETE FROM cert_bundles WHERE digest IN
           (SELECT digest FROM cert_bundles WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)",
    )
    .bind(ms(cut.bundles))
    .bind(batch)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(Pruned {
        events,
        sessions,
        bundles,
    })
}

/// The oldest seq of `tenant` still kept.
pub(super) async fn oldest_seq(pool: &SqlitePool, tenant: &str) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT min(seq) FROM outbox WHERE tenant = ?")
            .bind(tenant)
            .fetch_one(pool)
            .await?,
    )
}
