//! The scheduler: the loop that looks at due work (woken, or at the time the last look asked
//! for), claims due sessions provider by provider within each provider's free capacity and
//! fairly across tenants (`engine::pass`), starts their steps, renews the leases of steps in
//! flight, and lets them finish on shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::pass::Wake;
use super::{calls, Engine};
use crate::store::StoreError;

/// Shortest sleep after a look at due work that claimed nothing: a look that only gave claims
/// back (or found its rows taken by another instance) is woken by nothing else.
const IDLE_RECHECK: Duration = Duration::from_millis(10);

/// Shortest sleep between two looks at due work that were not woken.
const SHORTEST_SLEEP: Duration = Duration::from_millis(5);

impl Engine {
    /// Runs until `shutdown` resolves, then lets in-flight steps finish (each ends by writing
    /// its session, which also gives the lease back).
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Renewals run on their own task (and, on PostgreSQL, their own connection): a look at
        // due work that waits seconds for the database cannot hold them back past the lease.
        let renewals = tokio::spawn(Arc::clone(&self).renew_leases());
        loop {
            metrics::counter!("kyso_scheduler_passes_total").increment(1);
            let (claimed, wake) = match self.dispatch_due().await {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler could not read due sessions");
                    (0, Wake::default())
                }
            };
            // Nothing asked for a time: the tick, which also bounds how late work made due by
            // another instance's write (without a wake here) is seen.
            let now = tokio::time::Instant::now();
            let mut sleep = wake
                .when()
                .map_or(self.config.tick, |at| at.saturating_duration_since(now))
                .clamp(SHORTEST_SLEEP, self.config.tick);
            if claimed == 0 {
                sleep = sleep.max(IDLE_RECHECK);
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
        self.stopping.store(true, Ordering::Relaxed);
        let grace = tokio::time::Instant::now() + Duration::from_secs(30);
        while !self.in_flight_held().is_empty() && tokio::time::Instant::now() < grace {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        renewals.abort();
        tracing::info!("scheduler stopped");
    }

    /// Renews the leases of the steps in flight every third of the lease, for as long as the
    /// scheduler runs; stops the steps whose leases another instance took over.
    async fn renew_leases(self: Arc<Self>) {
        let mut renew = tokio::time::interval(self.config.lease / 3);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            renew.tick().await;
            let held = self.in_flight_held();
            match self.store.renew(&held).await {
                Ok(lost) if !lost.is_empty() => {
                    tracing::warn!(
                        sessions = lost.len(),
                        "leases taken over by another instance"
                    );
                    let lost: Vec<_> = held.into_iter().filter(|h| lost.contains(&h.id)).collect();
                    self.leases_lost(&lost);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "renewing leases failed"),
            }
        }
    }

    /// Claims and starts due sessions, provider by provider so that one provider's backlog
    /// never takes another's turn. Returns how many were claimed and when to look again.
    async fn dispatch_due(self: &Arc<Self>) -> Result<(usize, Wake), StoreError> {
        let mut due = Vec::new();
        let mut wake = Wake::default();
        for id in self.providers.ids() {
            let Some(entry) = self.providers.get(id) else {
                continue;
            };
            due.extend(self.claim_provider(entry, &mut wake).await?);
        }
        let claimed = due.len();
        let mut skipped = Vec::new();
        for work in due {
            let Some(entry) = self.providers.get(&work.session.provider).cloned() else {
                tracing::error!(provider = %work.session.provider, "session for an unconfigured provider");
                skipped.push(work.held());
                continue;
            };
            let id = work.session.id.to_string();
            if self.in_flight_contains(&id) {
                // Claimed again between its step's write and the step's end: give it back
                // now rather than leave it leased.
                skipped.push(work.held());
                continue;
            }
            let expired = Utc::now() >= work.session.expires_at;
            // An expired session needs no provider call, so neither the breaker nor the
            // limits hold it back.
            let permit = if expired {
                None
            } else if !entry.breaker.allows() {
                skipped.push(work.held());
                continue;
            } else {
                match entry.in_flight.clone().try_acquire_owned() {
                    // A start may make several calls (SmartCA: certificate + sign); the
                    // provider's limit is on calls, not on steps.
                    Ok(p) if entry.rate.try_take_n(calls(&entry, &work)) => Some(p),
                    _ => {
                        skipped.push(work.held());
                        continue;
                    }
                }
            };
            self.start(entry, work, permit);
        }
        if !skipped.is_empty() {
            metrics::counter!("kyso_sessions_released_total").increment(skipped.len() as u64);
            self.store.release(&skipped).await?;
        }
        Ok((claimed, wake))
    }
}
