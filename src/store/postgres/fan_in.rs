//! The PostgreSQL fan-in: every instance LISTENs for the ids other instances announce with
//! `pg_notify`, reads those events from the outbox and publishes them to its own WebSockets.
//! After a reconnect it re-reads the outbox from the last sequence it saw of each tenant, and
//! from the start for a tenant it never saw (its first events may have committed while the
//! listener was away), so no event is missed; at most [`CATCH_UP_MAX`] per tenant are
//! published again (a subscriber further behind reads the rest from the outbox as a gap).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use super::{Notice, PgStore, CHANNEL};
use crate::domain::Publish;
use crate::store::{ms, Store, StoreError};

/// Events a catch-up publishes at most per tenant: the newest ones.
const CATCH_UP_MAX: i64 = 10_000;
/// Events read per outbox query.
const PAGE: u32 = 500;

impl PgStore {
    pub(super) async fn listen(&self, hub: Arc<dyn Publish>, mut shutdown: watch::Receiver<bool>) {
        let mut last: HashMap<String, i64> = HashMap::new();
        // The first connect only records where every tenant is: nothing was published yet.
        let mut first = true;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let mut listener = match PgListener::connect_with(&self.pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "event listener cannot connect; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %e, "LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Whatever was committed while we were not listening is read from the outbox.
            if let Err(e) = self.catch_up(&*hub, &mut last, first).await {
                tracing::warn!(error = %e, "event catch-up failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            first = false;
            metrics::counter!("kyso_event_listener_connects_total").increment(1);
            loop {
                let note = tokio::select! {
                    _ = shutdown.changed() => return,
                    n = listener.try_recv() => n,
                };
                let note = match note {
                    Ok(Some(n)) => n,
                    Ok(None) | Err(_) => break, // connection lost: reconnect and catch up
                };
                let Ok(notice) = serde_json::from_str::<Notice>(note.payload()) else {
                    continue;
                };
                let seen = last
                    .entry(notice.t.clone())
                    .or_insert(notice.f.unwrap_or(notice.s) - 1);
                if notice.i == self.instance {
                    *seen = (*seen).max(notice.s);
                    continue;
                }
                if notice.s <= *seen {
                    continue;
                }
                let lag_ms = (ms(Utc::now()) - notice.at).max(0);
                metrics::histogram!("kyso_event_fanout_lag_seconds").record(lag_ms as f64 / 1000.0);
                match self.events_after(&notice.t, *seen, PAGE).await {
                    Ok(events) => {
                        for ev in events {
                            *seen = (*seen).max(ev.seq);
                            hub.publish(ev);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading a notified event failed");
                        break;
                    }
                }
            }
        }
    }

    /// Publishes every event after `last[tenant]`, for every tenant (from 0 for a tenant not in
    /// `last`, unless `first`), at most the newest [`CATCH_UP_MAX`] each; updates `last`.
    async fn catch_up(
        &self,
        hub: &dyn Publish,
        last: &mut HashMap<String, i64>,
        first: bool,
    ) -> Result<(), StoreError> {
        let tenants: Vec<(String, i64)> = sqlx::query_as("SELECT tenant, last_seq FROM tenant_seq")
            .fetch_all(&self.pool)
            .await?;
        for (tenant, newest) in tenants {
            let seen = match last.get(&tenant) {
                Some(&seen) => seen,
                None if first => newest,
                None => 0,
            };
            let mut after = seen.max(newest - CATCH_UP_MAX);
            while after < newest {
                let page = self.events_after(&tenant, after, PAGE).await?;
                let Some(end) = page.last().map(|e| e.seq) else {
                    break;
                };
                for ev in page {
                    hub.publish(ev);
                }
                after = end;
            }
            last.insert(tenant, after.max(newest));
        }
        Ok(())
    }
}
