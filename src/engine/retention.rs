//! The pruning task: every `retention.interval_s` it deletes, batch by batch, the events and
//! finished sessions older than `retention.finished_days` and the certificate bundles no
//! session has stored for that long (at least two days; see `store::prune`). A pass repeats
//! batches while they come back full, pausing between them so writes and WebSockets go on;
//! `kyso_retention_pruned_total{kind}` counts what went. Safe on several instances at once:
//! each deletes only what every instance would.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::config::RetentionConfig;
use crate::store::prune::{Cutoffs, Pruned};
use crate::store::{Store, StoreError};

/// The pause between two full batches of one pass.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// Bundles are kept at least this long, past the longest a session may wait (one day).
const BUNDLES_AT_LEAST_DAYS: u32 = 2;

/// Runs until `stop` turns true; does nothing when `finished_days` is 0.
pub async fn run(store: Arc<dyn Store>, config: RetentionConfig, mut stop: watch::Receiver<bool>) {
    if config.finished_days == 0 {
        let _ = stop.wait_for(|s| *s).await;
        return;
    }
    let interval = Duration::from_secs(config.interval_s.max(1));
    loop {
        if let Err(e) = pass(store.as_ref(), &config, &mut stop).await {
            tracing::warn!(error = %e, "retention: a pruning pass failed; retrying later");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One pass: batches until one comes back short of full (or `stop`).
pub async fn pass(
    store: &dyn Store,
    config: &RetentionConfig,
    stop: &mut watch::Receiver<bool>,
) -> Result<Pruned, StoreError> {
    let days = |d: u32| chrono::Duration::days(i64::from(d));
    let mut all = Pruned::default();
    loop {
        let now = Utc::now();
        let cut = Cutoffs {
            finished: now - days(config.finished_days),
            bundles: now - days(config.finished_days.max(BUNDLES_AT_LEAST_DAYS)),
            batch: config.batch.max(1),
        };
        let got = store.prune(cut).await?;
        for (kind, n) in [
            ("events", got.events),
            ("sessions", got.sessions),
            ("bundles", got.bundles),
        ] {
            metrics::counter!("kyso_retention_pruned_total", "kind" => kind).increment(n);
        }
        all += got;
        let full = [got.events, got.sessions, got.bundles]
            .iter()
            .any(|&n| n >= u64::from(cut.batch));
        // A pass that deleted events may have cleared the way for sessions: one more batch.
        let sessions_next = got.events > 0 && got.sessions == 0;
        if !full && !sessions_next {
            return Ok(all);
        }
        if *stop.borrow() {
            return Ok(all);
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}
