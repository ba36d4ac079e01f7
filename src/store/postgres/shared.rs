//! [`Shared`] on PostgreSQL: each limit is one row changed under its row lock, so concurrent
//! instances are ordered and no two can both take the last token or hit; times are the
//! database's clock (`kyso_now_ms()`), never an instance's.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;

use super::PgStore;
use crate::store::shared::{Shared, Taken};
use crate::store::StoreError;

/// Every this many hits, windows that ended long ago are deleted (a bounded batch).
const SWEEP_EVERY: u64 = 256;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Shared for PgStore {
    async fn take_tokens(
        &self,
        key: &str,
        rate_per_s: u32,
        burst: u32,
        want: u32,
    ) -> Result<u32, StoreError> {
        let (rate, burst) = (f64::from(rate_per_s.max(1)), f64::from(burst.max(1)));
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO rate_buckets (key, tokens, at_ms) VALUES ($1, $2, kyso_now_ms())
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(burst)
        .execute(&mut *tx)
        .await?;
        // The row lock orders instances; the refill is computed from the database's clock.
        let (tokens, elapsed_ms): (f64, i64) = sqlx::query_as(
            "SELECT tokens, kyso_now_ms() - at_ms FROM rate_buckets WHERE key = $1 FOR UPDATE",
        )
        .bind(key)
        .fetch_one(&mut *tx)
        .await?;
        let avail = (tokens + elapsed_ms.max(0) as f64 * rate / 1000.0).min(burst);
        let granted = avail.floor().min(f64::from(want)).max(0.0);
        sqlx::query("UPDATE rate_buckets SET tokens = $2, at_ms = kyso_now_ms() WHERE key = $1")
            .bind(key)
            .bind(avail - granted)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(granted as u32)
    }

    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<bool, StoreError> {
        let window = ms(window);
        let counted = sqlx::query(
            "INSERT INTO rate_windows AS w (key, started_ms, hits) VALUES ($1, kyso_now_ms(), 1)
             ON CONFLICT (key) DO UPDATE SET
                 started_ms = CASE WHEN w.started_ms <= kyso_now_ms() - $3
                                   THEN kyso_now_ms() ELSE w.started_ms END,
                 hits = CASE WHEN w.started_ms <= kyso_now_ms() - $3 THEN 1 ELSE w.hits + 1 END
             WHERE w.started_ms <= kyso_now_ms() - $3 OR w.hits < $2
             RETURNING 1",
        )
        .bind(key)
        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
        .bind(window)
        .fetch_optional(&self.pool)
        .await?;
        if self
            .sweeps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % SWEEP_EVERY
            == 0
        {
            sqlx::query(
                "DELETE FROM rate_windows WHERE key IN (
                     SELECT key FROM rate_windows WHERE started_ms < kyso_now_ms() - $1
                     ORDER BY started_ms LIMIT 1000)",
            )
            .bind(window.saturating_mul(2))
            .execute(&self.pool)
            .await?;
        }
        Ok(counted.is_some())
    }

    async fn put_once(
        &self,
        kind: &str,
        scope: &str,
        id: &str,
        value: &[u8],
        ttl: Duration,
        max: usize,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // One scope's puts in turn, so two instances cannot both pass the count.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 11))")
            .bind(format!("{kind}\u{1f}{scope}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM single_use WHERE kind = $1 AND scope = $2 AND expires_ms <= kyso_now_ms()",
        )
        .bind(kind)
        .bind(scope)
        .execute(&mut *tx)
        .await?;
        let live: i64 =
            sqlx::query_scalar("SELECT count(*) FROM single_use WHERE kind = $1 AND scope = $2")
                .bind(kind)
                .bind(scope)
                .fetch_one(&mut *tx)
                .await?;
        if live >= i64::try_from(max).unwrap_or(i64::MAX) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO single_use (kind, id, scope, value, expires_ms)
             VALUES ($1, $2, $3, $4, kyso_now_ms() + $5)",
        )
        .bind(kind)
        .bind(id)
        .bind(scope)
        .bind(value)
        .bind(ms(ttl))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn take_once(
        &self,
        kind: &str,
        id: &str,
        scope: Option<&str>,
    ) -> Result<Option<Taken>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM single_use
             WHERE kind = $1 AND id = $2 AND ($3::text IS NULL OR scope = $3)
             RETURNING scope, value, expires_ms > kyso_now_ms() AS live",
        )
        .bind(kind)
        .bind(id)
        .bind(scope)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        if !row.try_get::<bool, _>("live")? {
            return Ok(None);
        }
        Ok(Some(Taken {
            scope: row.try_get("scope")?,
            value: row.try_get("value")?,
        }))
    }
}
