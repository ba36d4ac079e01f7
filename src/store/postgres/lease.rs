//! Leases on PostgreSQL: claiming due sessions, renewing, releasing and rescheduling them. Each
//! claim moves the row's `lease_epoch` on and returns it; every later statement of the holder
//! names its owner and that epoch (see `store::lease`), so an instance whose lease lapsed and
//! was taken over changes nothing. Expiry and renewal read the database's clock
//! (`kyso_now_ms()`), never an instance's.
//!
//! The interleaving this prevents (A and B instances, S a session):
//! A claims S (epoch 1) and calls the provider; A's renewals stall; at expiry B claims S
//! (epoch 2) and calls the provider; A's call returns. Before, A's status write checked only
//! the status and cleared the lease, so C could claim S while B was still calling. Now A's
//! write, renewal, reschedule and release find epoch 2 and are refused; A learns it lost S
//! (`StoreError::LeaseLost`, or a renewal that reports S lost) and B keeps its lease.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::PgStore;
use crate::domain::{SessionId, Status};
use crate::store::claim::{claim_where, Claim};
use crate::store::{ms, Held, StoreError, Work};

/// A session no instance holds a live lease on (by the database's clock).
pub(super) const UNLEASED: &str = "(lease_until IS NULL OR lease_until < kyso_now_ms())";

/// PostgreSQL's placeholder for parameter `n`.
pub(super) fn placeholder(n: u8) -> String {
    format!("${n}")
}

/// Matches the rows of `$1` (ids) still leased to `$3` (this instance) with the epochs in `$2`.
const HELD: &str = "s.id = ANY($1::text[]) AND s.lease_owner = $3
    AND (s.id, s.lease_epoch) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))";

impl PgStore {
    /// Claims due sessions (see `Store::due`). A claim of a *pending* session is committed
    /// with a WAL flush: its step is a provider start, and a claim lost in a database crash
    /// would let a second instance start the same session again (it would rely on every
    /// provider de-duplicating the transaction id). Claims of status checks stay unflushed.
    pub(super) async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        claim: Claim<'_>,
    ) -> Result<Vec<Work>, StoreError> {
        let now = ms(now);
        let list = |n: String| format!("provider = ANY({n}::text[])");
        // The claimed session keeps its due time: one given back unstarted (its provider out
        // of tokens) keeps its place in line.
        let sql = format!(
            "WITH due AS (
                 SELECT id FROM sessions WHERE {} FOR UPDATE SKIP LOCKED)
             UPDATE sessions s SET lease_owner = $1, lease_until = kyso_now_ms() + $2,
                 woken = FALSE, lease_epoch = s.lease_epoch + 1
             FROM due WHERE s.id = due.id
             RETURNING s.body, s.work, s.next_check_at, s.lease_epoch, s.status, s.expires_at",
            claim_where(&claim, placeholder, 3, list, UNLEASED)
        );
        let mut q = sqlx::query(&sql)
            .bind(&self.instance)
            .bind(self.lease_ms)
            .bind(now)
            .bind(i64::from(limit));
        q = match claim.providers {
            [] => q,
            [one] => q.bind(one.as_str()),
            many => q.bind(many),
        };
        if let Some(tenant) = claim.tenant {
            q = q.bind(tenant);
        }
        let mut tx = self.hints.begin().await?;
        let rows = q.fetch_all(&mut *tx).await?;
        let mut starts = false;
        let mut work = Vec::with_capacity(rows.len());
        for r in &rows {
            let status: String = r.try_get("status")?;
            let expires: i64 = r.try_get("expires_at")?;
            starts |= status == Status::Pending.as_str() && expires > now;
            let w = Work::from_row(
                r.try_get("body")?,
                r.try_get("work")?,
                r.try_get("lease_epoch")?,
            )?;
            work.push((r.try_get::<i64, _>("next_check_at")?, w));
        }
        if starts {
            metrics::counter!("kyso_postgres_flushed_claims_total").increment(1);
            sqlx::query("SET LOCAL synchronous_commit = on")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        work.sort_by_key(|(at, _)| *at);
        Ok(work.into_iter().map(|(_, w)| w).collect())
    }

    /// Extends the leases still held, on the renewal pool; returns the lost ones.
    pub(super) async fn renew_held(&self, held: &[Held]) -> Result<Vec<SessionId>, StoreError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, epochs) = (Held::ids(held), Held::epochs(held));
        // Rows locked by a write in progress are skipped (that write ends the lease anyway),
        // so a renewal never waits on, or deadlocks with, the writer's batch.
        let renewed: Vec<String> = sqlx::query_scalar(&format!(
            "UPDATE sessions SET lease_until = kyso_now_ms() + $4
             WHERE id IN (SELECT s.id FROM sessions s WHERE {HELD}
                          ORDER BY s.id FOR UPDATE SKIP LOCKED)
             RETURNING id"
        ))
        .bind(&ids)
        .bind(&epochs)
        .bind(&self.instance)
        .bind(self.lease_ms)
        .fetch_all(&self.leases)
        .await?;
        if renewed.len() == held.len() {
            return Ok(Vec::new());
        }
        // The rest: still held (locked by this instance's write in progress), or lost. The
        // read sees the last committed lease.
        let still: Vec<String> =
            sqlx::query_scalar(&format!("SELECT s.id FROM sessions s WHERE {HELD}"))
                .bind(&ids)
                .bind(&epochs)
                .bind(&self.instance)
                .fetch_all(&self.leases)
                .await?;
        let kept = |id: &str| renewed.iter().chain(&still).any(|k| k == id);
        Ok(held
            .iter()
            .filter(|h| !kept(h.id.as_str()))
            .map(|h| h.id.clone())
            .collect())
    }

    /// Gives back the leases still held, due now and from the session's creation: a claim
    /// given back unstarted (a push's claim that lost its token to the scheduler) goes ahead
    /// of every session created after it instead of to the end of the line.
    pub(super) async fn release_held(&self, held: &[Held]) -> Result<(), StoreError> {
        if held.is_empty() {
            return Ok(());
        }
        // Due now: a session created leased has its lease's end as its next check.
        sqlx::query(&format!(
            "UPDATE sessions SET lease_owner = NULL, lease_until = NULL,
                 next_check_at = LEAST(next_check_at, $4, created_at)
             WHERE id IN (SELECT s.id FROM sessions s WHERE {HELD}
                          ORDER BY s.id FOR UPDATE)"
        ))
        .bind(Held::ids(held))
        .bind(Held::epochs(held))
        .bind(&self.instance)
        .bind(ms(Utc::now()))
        .execute(&self.hints)
        .await?;
        Ok(())
    }

    /// Moves a held session's next check and ends the lease (see `Store::reschedule`).
    pub(super) async fn reschedule_held(
        &self,
        held: &Held,
        expected: Status,
        next_check_at: DateTime<Utc>,
        work: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE sessions
             SET next_check_at = CASE WHEN woken THEN LEAST($1, created_at) ELSE $2 END,
                 woken = FALSE,
                 work = COALESCE($3, work), lease_owner = NULL, lease_until = NULL
             WHERE id = $4 AND status = $5
               -- an instance whose lease lapsed must not undo the new holder's lease
               AND lease_owner = $6 AND lease_epoch = $7",
        )
        .bind(ms(Utc::now()))
        .bind(ms(next_check_at))
        .bind(work)
        .bind(held.id.as_str())
        .bind(expected.as_str())
        .bind(&self.instance)
        .bind(held.epoch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n > 0 {
            return Ok(true);
        }
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM sessions WHERE id = $1")
                .bind(held.id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        match status {
            Some(s) if s == expected.as_str() => Err(StoreError::LeaseLost(held.id.clone())),
            _ => Ok(false),
        }
    }
}
