//! A COMMIT whose answer never came (the connection went while it was in flight) may have
//! been written. Failing its callers would then report a committed change as lost and keep
//! its events from this instance's WebSockets until a reconnect; retrying it would write the
//! change twice. So the batch's first event is read back from the outbox on a fresh
//! connection: there means the whole transaction committed (its callers get their results and
//! events), absent means nothing did (they get the error). `kyso_postgres_commit_unanswered_total`
//! counts each case by outcome.

use std::time::Duration;

use sqlx::PgPool;

use crate::store::{Event, StoreError};

/// Read-back attempts, this far apart, before the outcome is given up as unknown.
const ATTEMPTS: u32 = 5;
const APART: Duration = Duration::from_millis(200);

/// Whether the transaction that would have written `events` committed: `Ok(true)` when its
/// first event is in the outbox (or it wrote none, so its outcome changes nothing),
/// `Ok(false)` when it is not, `Err` when the database could not be asked.
pub(super) async fn committed(pool: &PgPool, events: &[&Event]) -> Result<bool, StoreError> {
    let Some(first) = events.first() else {
        count("no_events");
        return Ok(true);
    };
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(APART).await;
        }
        let found = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE tenant = $1 AND seq = $2 AND session_id = $3)",
        )
        .bind(&*first.tenant)
        .bind(first.seq)
        .bind(first.session_id.as_str())
        .fetch_one(pool)
        .await;
        match found {
            Ok(true) => {
                count("committed");
                return Ok(true);
            }
            Ok(false) => {
                count("lost");
                return Ok(false);
            }
            Err(e) => last = Some(e),
        }
    }
    count("unknown");
    Err(last.map_or_else(|| StoreError::Batch("no answer".into()), StoreError::from))
}

fn count(outcome: &'static str) {
    metrics::counter!("kyso_postgres_commit_unanswered_total", "outcome" => outcome).increment(1);
}
