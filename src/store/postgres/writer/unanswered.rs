//! A COMMIT whose answer never came (the connection went while it was in flight) may have
//! been written. Failing its callers would then report a committed change as lost and keep
//! its events from this instance's WebSockets until a reconnect; retrying it would write the
//! change twice. So every batch notes its transaction id before it writes, and after a lost
//! answer the writer asks PostgreSQL what became of it (`txid_status`) on a fresh connection:
//! committed means its callers get their results and events, aborted means the error, in
//! progress (the old backend still finishing) means ask again a moment later.
//! `kyso_postgres_commit_unanswered_total{outcome}` counts each case.

use std::time::Duration;

use sqlx::PgPool;

use crate::store::StoreError;

/// Questions, this far apart, before the outcome is given up as unknown (~3 s).
const ATTEMPTS: u32 = 15;
const APART: Duration = Duration::from_millis(200);

/// Whether transaction `xid` committed: `Ok(true)` committed, `Ok(false)` aborted, `Err` when
/// PostgreSQL could not say in time.
pub(super) async fn committed(pool: &PgPool, xid: i64) -> Result<bool, StoreError> {
    let mut last = String::from("no answer");
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(APART).await;
        }
        let status = sqlx::query_scalar::<_, Option<String>>("SELECT txid_status($1)")
            .bind(xid)
            .fetch_one(pool)
            .await;
        match status.as_ref().map(|s| s.as_deref()) {
            Ok(Some("committed")) => {
                count("committed");
                return Ok(true);
            }
            Ok(Some("aborted")) => {
                count("lost");
                return Ok(false);
            }
            Ok(Some(other)) => last = format!("transaction {xid} is {other}"),
            Ok(None) => last = format!("transaction {xid} is too old to say"),
            Err(e) => last = e.to_string(),
        }
    }
    count("unknown");
    Err(StoreError::Batch(last))
}

/// A batch whose results do not depend on its COMMIT (it wrote nothing).
pub(super) fn no_write() {
    count("no_events");
}

fn count(outcome: &'static str) {
    metrics::counter!("kyso_postgres_commit_unanswered_total", "outcome" => outcome).increment(1);
}
