//! Retention's deletes on PostgreSQL (see `store::prune`): each statement its own short
//! transaction on the shared pool, safe while other instances run (they only delete what is
//! finished, old, and named by nothing unfinished).

use sqlx::PgPool;

use crate::store::prune::{Cutoffs, Pruned};
use crate::store::{ms, StoreError};

pub(super) async fn run(pool: &PgPool, cut: Cutoffs) -> Result<Pruned, StoreError> {
    let finished = ms(cut.finished);
    let batch = i64::from(cut.batch);
    let events = sqlx::query(
        "DELETE FROM outbox o USING
           (SELECT tenant, seq FROM outbox WHERE created_at < $1 ORDER BY created_at LIMIT $2
              FOR UPDATE SKIP LOCKED) gone
         WHERE o.tenant = gone.tenant AND o.seq = gone.seq AND o.created_at < $1",
    )
    .bind(finished)
    .bind(batch)
    .execute(pool)
    .await?
    .rows_affected();
    let older_left: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM outbox WHERE created_at < $1)")
            .bind(finished)
            .fetch_one(pool)
            .await?;
    let sessions = if older_left {
        0
    } else {
        // Re-checked in the outer WHERE: under READ COMMITTED a row changed meanwhile is
        // judged again by it, not by the subquery.
        sqlx::query(
            "DELETE FROM sessions WHERE id IN
               (SELECT id FROM sessions
                 WHERE next_check_at IS NULL AND expires_at < $1
                 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
             AND next_check_at IS NULL AND expires_at < $1
             AND (body::jsonb ->> 'completed_at')::timestamptz
                 < to_timestamp($1::double precision / 1000)",
        )
        .bind(ms(cut.sessions()))
        .bind(batch)
        .execute(pool)
        .await?
        .rows_affected()
    };
    let bundles = sqlx::query(
        "DELETE FROM cert_bundles WHERE digest IN
           (SELECT digest FROM cert_bundles WHERE created_at < $1 ORDER BY created_at LIMIT $2
              FOR UPDATE SKIP LOCKED)
         AND created_at < $1",
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
pub(super) async fn oldest_seq(pool: &PgPool, tenant: &str) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT min(seq) FROM outbox WHERE tenant = $1")
            .bind(tenant)
            .fetch_one(pool)
            .await?,
    )
}
