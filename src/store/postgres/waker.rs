//! Pushes, grouped. Every provider push is one `wake`: claim the session for this instance if
//! nobody holds it, else mark it woken. One statement per push made the claim the most
//! frequent statement of a busy gateway (one per session), most of its cost the round trip
//! and the statement's own overhead rather than the row. One task per instance takes the
//! pushes queued meanwhile and claims them with one statement, then marks the rest with
//! another. Each statement locks its rows in id order, as the writer's status changes do; a
//! writer batch of several runs can still cross a waker statement, and PostgreSQL's deadlock
//! detector then fails one of them, which each side retries change by change.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sqlx::{Connection, PgPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::copy_error;
use crate::domain::SessionId;
use crate::store::{ms, PushTarget, StoreError, Woken, Work};

/// Pushes one statement may carry; more wait for the next.
const MAX_BATCH: usize = 256;

pub(super) struct Wake {
    pub id: SessionId,
    pub provider: String,
    /// Claim it when nobody holds it (else only mark it).
    pub claim: bool,
    pub reply: oneshot::Sender<Result<Woken, StoreError>>,
}

/// Runs until every sender is gone.
pub(super) async fn run(
    pool: PgPool,
    instance: String,
    lease_ms: i64,
    mut rx: mpsc::Receiver<Wake>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut wakes = std::mem::take(&mut batch);
        metrics::histogram!("kyso_postgres_batch_wakes").record(wakes.len() as f64);
        match wake_many(&pool, &instance, lease_ms, &wakes).await {
            Ok(answers) => {
                for (wake, answer) in wakes.into_iter().zip(answers) {
                    drop(wake.reply.send(answer));
                }
            }
            // The claim failed, so nothing was written. An error of the server (a deadlock, a
            // row it refused) is retried push by push, so it cannot fail the neighbours; a
            // lost connection or an exhausted pool fails the batch at once rather than once
            // per push, one after another.
            Err(e)
                if wakes.len() > 1
                    && matches!(e, StoreError::Database(sqlx::Error::Database(_))) =>
            {
                tracing::warn!(error = %e, pushes = wakes.len(), "PostgreSQL wake batch failed; retrying each push alone");
                for wake in wakes {
                    let answer = wake_many(&pool, &instance, lease_ms, std::slice::from_ref(&wake));
                    let answer = match answer.await {
                        Ok(mut answers) => answers.remove(0),
                        Err(e) => Err(e),
                    };
                    drop(wake.reply.send(answer));
                }
            }
            Err(e) => {
                let last = wakes.pop();
                for wake in wakes {
                    drop(wake.reply.send(Err(copy_error(&e))));
                }
                if let Some(wake) = last {
                    drop(wake.reply.send(Err(e)));
                }
            }
        }
    }
}

/// Claims the claiming pushes' sessions nobody holds, marks the other pushes' sessions woken;
/// each push's answer, in order. A second push of one session in the batch finds it claimed
/// by the first (or marked with it) and reads as marked. `Err` when the claim statement
/// failed (nothing written); once it has committed, a failed mark fails only the pushes that
/// needed one.
async fn wake_many(
    pool: &PgPool,
    instance: &str,
    lease_ms: i64,
    wakes: &[Wake],
) -> Result<Vec<Result<Woken, StoreError>>, StoreError> {
    let now = ms(Utc::now());
    let mut conn = pool.acquire().await?;
    let (ids, providers) = pairs(wakes.iter().filter(|w| w.claim));
    // By id: the session's provider, and its work until a push takes the claim (an error if
    // the row did not decode: that push fails, and the session waits for its lease's end).
    let mut claimed: HashMap<String, (String, Option<Result<Work, StoreError>>)> = HashMap::new();
    if !ids.is_empty() {
        let mut tx = conn.begin().await?;
        let rows = sqlx::query(
            // `id = ANY(…)` first: a cached generic plan of a join with the list read the
            // whole primary key (see `a_grown_table_is_not_scanned_on_postgres`).
            "WITH c AS (
                 SELECT s.id FROM sessions s
                 WHERE s.id = ANY($1::text[])
                   AND (s.id, s.provider) IN (SELECT * FROM unnest($1::text[], $2::text[]))
                   AND s.next_check_at IS NOT NULL
                   AND (s.lease_until IS NULL OR s.lease_until < kyso_now_ms())
                 ORDER BY s.id FOR UPDATE OF s)
             -- A session due later, within the lease (the usual push: it came before the
             -- first poll), keeps its next check, so the claim changes no indexed column and PostgreSQL can
             -- write it as a heap-only tuple, without an entry in every index. One already
             -- due moves to the lease's end, as a leased create: kept at now, pushed
             -- sessions filled the head of the due index, walked by every look at due work
             -- only to be skipped as leased. A claim given back unstarted is made due at
             -- once by `release`.
             UPDATE sessions s SET lease_owner = $4, lease_until = kyso_now_ms() + $5,
                 woken = FALSE, lease_epoch = s.lease_epoch + 1,
                 next_check_at = CASE WHEN s.next_check_at > $3
                                       AND s.next_check_at <= kyso_now_ms() + $5
                                      THEN s.next_check_at ELSE kyso_now_ms() + $5 END
             FROM c WHERE s.id = c.id
             RETURNING s.id, s.provider, s.body, s.work, s.lease_epoch, s.status",
        )
        .bind(&ids)
        .bind(&providers)
        .bind(now)
        .bind(instance)
        .bind(lease_ms)
        .fetch_all(&mut *tx)
        .await?;
        // A claim of a pending session leads to a provider start: flushed, as the scheduler's
        // (see `PgStore::claim_due`), so a database crash cannot lose it and let another
        // instance start the session again.
        let mut starts = false;
        for row in &rows {
            starts |= row.try_get::<&str, _>("status")? == "pending";
        }
        if starts {
            sqlx::query("SET LOCAL synchronous_commit = on")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        for row in rows {
            let work = row
                .try_get("body")
                .and_then(|body: String| Ok((body, row.try_get("work")?)))
                .map_err(StoreError::from)
                .and_then(|(body, work)| {
                    let epoch: i64 = row.try_get("lease_epoch")?;
                    Work::from_row(&body, work, epoch)
                });
            claimed.insert(row.try_get("id")?, (row.try_get("provider")?, Some(work)));
        }
    }
    let rest = wakes
        .iter()
        .filter(|w| !claimed.contains_key(w.id.as_str()));
    let (ids, providers) = pairs(rest);
    let mut marked: Result<HashSet<(String, String)>, StoreError> = Ok(HashSet::new());
    if !ids.is_empty() {
        marked = sqlx::query(
            "WITH c AS (
                 SELECT s.id FROM sessions s
                 WHERE s.id = ANY($1::text[])
                   AND (s.id, s.provider) IN (SELECT * FROM unnest($1::text[], $2::text[]))
                   AND s.next_check_at IS NOT NULL
                 ORDER BY s.id FOR UPDATE OF s)
             -- a leased session keeps its place (its holder's write makes it due now, or
             -- the lease's end does)
             UPDATE sessions s SET woken = TRUE,
                 next_check_at = CASE WHEN s.lease_until >= kyso_now_ms() THEN s.next_check_at
                                      ELSE LEAST(s.next_check_at, $3, s.created_at) END
             FROM c WHERE s.id = c.id
             RETURNING s.id, s.provider",
        )
        .bind(&ids)
        .bind(&providers)
        .bind(now)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)
        .and_then(|rows| {
            rows.iter()
                .map(|row| Ok((row.try_get("id")?, row.try_get("provider")?)))
                .collect()
        });
    }
    Ok(wakes
        .iter()
        .map(|w| match claimed.get_mut(w.id.as_str()) {
            Some((provider, work)) if *provider == w.provider => match work.take() {
                Some(work) if w.claim => work.map(|work| Woken::Claimed(Box::new(work))),
                // Claimed by another push of this batch (or this one only marks): found.
                taken => {
                    *work = taken;
                    Ok(Woken::Marked)
                }
            },
            Some(_) => Ok(Woken::Missing),
            None => match &marked {
                Ok(m) if m.contains(&(w.id.to_string(), w.provider.clone())) => Ok(Woken::Marked),
                Ok(_) => Ok(Woken::Missing),
                Err(e) => Err(copy_error(e)),
            },
        })
        .collect())
}

/// The pushes' ids and providers (each pair once), as two arrays for `unnest`.
fn pairs<'a>(wakes: impl Iterator<Item = &'a Wake>) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut seen = HashSet::new();
    wakes
        .map(|w| (w.id.as_str(), w.provider.as_str()))
        .filter(|pair| seen.insert(*pair))
        .unzip()
}

/// Whether a push for `id` would change anything, read on `pool` without a write (see
/// [`PushTarget`]).
pub(super) async fn push_target(
    pool: &PgPool,
    id: &SessionId,
    provider: &str,
) -> Result<PushTarget, StoreError> {
    let row = sqlx::query(
        "SELECT next_check_at, lease_until, woken FROM sessions WHERE id = $1 AND provider = $2",
    )
    .bind(id.as_str())
    .bind(provider)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(PushTarget::Missing);
    };
    let next: Option<i64> = row.try_get("next_check_at")?;
    let lease: Option<i64> = row.try_get("lease_until")?;
    let woken: bool = row.try_get("woken")?;
    let now = ms(Utc::now());
    let free = lease.is_none_or(|l| l < now);
    Ok(match next {
        None => PushTarget::Missing,
        Some(_) if woken => PushTarget::Pending,
        Some(at) if free && at <= now => PushTarget::Pending,
        Some(_) => PushTarget::Waiting,
    })
}
