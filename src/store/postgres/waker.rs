//! Pushes, grouped. Every provider push is one `wake`: claim the session for this instance if
//! nobody holds it, else mark it woken. One statement per push made the claim the most
//! frequent statement of a busy gateway (one per session), most of its cost the round trip
//! and the statement's own overhead rather than the row. One task per instance takes the
//! pushes queued meanwhile and claims them with one statement, then marks the rest with
//! another; rows are locked in id order, as the writer's batches lock them, so the two never
//! wait on each other in a cycle.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sqlx::{PgPool, Row};
use tokio::sync::{mpsc, oneshot};

use crate::domain::SessionId;
use crate::store::{ms, StoreError, Woken, Work};

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
        let wakes = std::mem::take(&mut batch);
        metrics::histogram!("kyso_postgres_batch_wakes").record(wakes.len() as f64);
        match wake_many(&pool, &instance, lease_ms, &wakes).await {
            Ok(woken) => {
                for (wake, woken) in wakes.into_iter().zip(woken) {
                    drop(wake.reply.send(Ok(woken)));
                }
            }
            // Nothing of a failed statement was written: each push is tried alone, so one
            // bad push cannot fail its neighbours.
            Err(e) if wakes.len() > 1 => {
                tracing::warn!(error = %e, pushes = wakes.len(), "PostgreSQL wake batch failed; retrying each push alone");
                for wake in wakes {
                    let woken = wake_many(&pool, &instance, lease_ms, std::slice::from_ref(&wake));
                    let woken = woken.await.map(|mut w| w.remove(0));
                    drop(wake.reply.send(woken));
                }
            }
            Err(e) => wakes.into_iter().for_each(|w| {
                let e = StoreError::Database(sqlx::Error::Protocol(e.to_string()));
                drop(w.reply.send(Err(e)));
            }),
        }
    }
}

/// Claims the claiming pushes' sessions nobody holds, marks the other pushes' sessions woken;
/// each push's answer, in order. A second push of one session in the batch finds it claimed
/// by the first (or marked with it) and reads as marked.
async fn wake_many(
    pool: &PgPool,
    instance: &str,
    lease_ms: i64,
    wakes: &[Wake],
) -> Result<Vec<Woken>, StoreError> {
    let now = ms(Utc::now());
    let mut conn = pool.acquire().await?;
    let (ids, providers) = pairs(wakes.iter().filter(|w| w.claim));
    // Statements over a list of ids are planned with each call's ids (see the writer).
    // By id: the session's provider, and its work until a push takes the claim.
    let mut claimed: HashMap<String, (String, Option<Work>)> = HashMap::new();
    if !ids.is_empty() {
        let rows = sqlx::query(
            "WITH c AS (
                 SELECT s.id FROM sessions s
                 JOIN unnest($1::text[], $2::text[]) AS v(id, provider)
                   ON s.id = v.id AND s.provider = v.provider
                 WHERE s.next_check_at IS NOT NULL
                   AND (s.lease_until IS NULL OR s.lease_until < $3)
                 ORDER BY s.id FOR UPDATE OF s)
             UPDATE sessions s SET lease_owner = $4, lease_until = $5, woken = FALSE,
                 -- due now as well: if the claim is given back unstarted, the scheduler
                 -- still checks it at once
                 next_check_at = LEAST(s.next_check_at, $3)
             FROM c WHERE s.id = c.id
             RETURNING s.id, s.body, s.work",
        )
        .persistent(false)
        .bind(&ids)
        .bind(&providers)
        .bind(now)
        .bind(instance)
        .bind(now + lease_ms)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            let work = Work::from_row(row.try_get("body")?, row.try_get("work")?)?;
            let provider = work.session.provider.clone();
            claimed.insert(row.try_get("id")?, (provider, Some(work)));
        }
    }
    let rest = wakes
        .iter()
        .filter(|w| !claimed.contains_key(w.id.as_str()));
    let (ids, providers) = pairs(rest);
    let mut marked: HashSet<(String, String)> = HashSet::new();
    if !ids.is_empty() {
        let rows = sqlx::query(
            "WITH c AS (
                 SELECT s.id FROM sessions s
                 JOIN unnest($1::text[], $2::text[]) AS v(id, provider)
                   ON s.id = v.id AND s.provider = v.provider
                 WHERE s.next_check_at IS NOT NULL
                 ORDER BY s.id FOR UPDATE OF s)
             UPDATE sessions s SET next_check_at = LEAST(s.next_check_at, $3), woken = TRUE
             FROM c WHERE s.id = c.id
             RETURNING s.id, s.provider",
        )
        .persistent(false)
        .bind(&ids)
        .bind(&providers)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            marked.insert((row.try_get("id")?, row.try_get("provider")?));
        }
    }
    Ok(wakes
        .iter()
        .map(|w| match claimed.get_mut(w.id.as_str()) {
            Some((provider, work)) if *provider == w.provider => match work.take() {
                Some(work) if w.claim => Woken::Claimed(Box::new(work)),
                // Claimed by another push of this batch (or this one only marks): found.
                taken => {
                    *work = taken;
                    Woken::Marked
                }
            },
            Some(_) => Woken::Missing,
            None if marked.contains(&(w.id.to_string(), w.provider.clone())) => Woken::Marked,
            None => Woken::Missing,
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
