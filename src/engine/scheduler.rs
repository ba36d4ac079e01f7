//! The scheduler: the loop that looks at due work (woken, or after a sleep sized by the next
//! due time, read at most every [`NEXT_DUE_EVERY`]), claims due sessions provider by provider
//! within each provider's free capacity, starts their steps, renews the leases of steps in
//! flight, and lets them finish on shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::{calls, Engine};
use crate::engine::registry::ProviderEntry;
use crate::store::StoreError;

/// Expired sessions claimed at once for a provider that cannot take work (they need no call).
const EXPIRY_BATCH: u32 = 256;

/// Shortest sleep after a look at due work that found nothing to start.
const IDLE_RECHECK: Duration = Duration::from_millis(10);

/// The scheduler reads the next due time at most this often (see [`NextDue`]).
const NEXT_DUE_EVERY: Duration = Duration::from_millis(20);

/// Shortest sleep between two looks at due work that were not woken.
const SHORTEST_SLEEP: Duration = Duration::from_millis(5);

/// The next due time as last read. Every finished step wakes the scheduler, and each look at
/// due work used to end by reading the next due time for its sleep: under load hundreds of
/// reads a second, each walking the due index past the sessions in flight (~10 % of
/// PostgreSQL's statement time in the throughput bench). The time only sizes the sleep: what
/// this instance makes due now (a create or push that could not start, a claim given back)
/// wakes the scheduler anyway. So it is read at most every [`NEXT_DUE_EVERY`], and between two
/// reads the scheduler sleeps no later than the next read: what became due meanwhile without
/// a wake (a check moved sooner, another instance's write, a dead instance's lease running
/// out) is looked at no more than that later than before. Sleeps stay at least
/// [`SHORTEST_SLEEP`], as when each was read.
#[derive(Default)]
struct NextDue {
    /// When it was read, and the time it said to wake by.
    last: Option<(tokio::time::Instant, tokio::time::Instant)>,
}

impl NextDue {
    /// How long to sleep from `now` without reading again; `None` when it is time to read.
    fn sleep(&self, now: tokio::time::Instant) -> Option<Duration> {
        let (read, by) = self.last?;
        let next_read = read + NEXT_DUE_EVERY;
        let sleep = by.min(next_read).saturating_duration_since(now);
        (now < next_read).then(|| sleep.max(SHORTEST_SLEEP))
    }

    /// Notes a read at `now` that said to sleep `sleep`.
    fn read(&mut self, now: tokio::time::Instant, sleep: Duration) {
        self.last = Some((now, now + sleep));
    }
}

impl Engine {
    /// Runs until `shutdown` resolves, then lets in-flight steps finish (each ends by writing
    /// its session, which also gives the lease back).
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Renewals run on their own task (and, on PostgreSQL, their own connection): a look at
        // due work that waits seconds for the database cannot hold them back past the lease.
        let renewals = tokio::spawn(Arc::clone(&self).renew_leases());
        let mut next_due = NextDue::default();
        loop {
            metrics::counter!("kyso_scheduler_passes_total").increment(1);
            let claimed = match self.dispatch_due().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler could not read due sessions");
                    0
                }
            };
            let now = tokio::time::Instant::now();
            let mut sleep = match next_due.sleep(now) {
                Some(sleep) => sleep,
                None => {
                    let sleep = self.until_next_due().await;
                    next_due.read(now, sleep);
                    sleep
                }
            };
            if claimed == 0 {
                // What is due belongs to providers that cannot take it now (full, or their
                // circuit is open): look again shortly instead of spinning. A finished step,
                // a new session or a callback still wakes the scheduler at once.
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

    async fn until_next_due(&self) -> Duration {
        match self.store.next_due().await {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(SHORTEST_SLEEP, self.config.tick),
            _ => self.config.tick,
        }
    }

    /// Sessions one provider could take right now: free in-flight slots, bounded by the tokens
    /// left in its rate, none while its circuit is open. Claiming more would only read rows to
    /// give back.
    fn capacity(entry: &ProviderEntry) -> u32 {
        if !entry.breaker.allows() {
            return 0;
        }
        (entry.in_flight.available_permits() as u32)
            .min(entry.rate.available())
            .min(10_000)
    }

    /// Claims and starts due sessions, provider by provider so that one provider's backlog
    /// never takes another's turn. Returns how many were claimed.
    async fn dispatch_due(self: &Arc<Self>) -> Result<usize, StoreError> {
        let mut due = Vec::new();
        for id in self.providers.ids() {
            let Some(entry) = self.providers.get(id) else {
                continue;
            };
            // Expired sessions need no capacity, but they wait for a free slot rather than
            // the scheduler reading rows it cannot start.
            let limit = Self::capacity(entry);
            let only_expired = limit == 0;
            let limit = if only_expired { EXPIRY_BATCH } else { limit };
            let claimed = self
                .store
                .due(Utc::now(), limit, &[id.to_owned()], only_expired)
                .await?;
            due.extend(claimed);
        }
        let claimed = due.len();
        metrics::counter!("kyso_sessions_claimed_total").increment(claimed as u64);
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
        Ok(claimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_next_due_time_is_read_at_most_every_20_ms_and_never_slept_past() {
        let start = tokio::time::Instant::now();
        let mut next = NextDue::default();
        assert_eq!(next.sleep(start), None, "nothing read yet");
        // Read: due in 5 s. Looks within 20 ms use it, sleeping only until the next read.
        next.read(start, 5_000 * MS);
        assert_eq!(next.sleep(start), Some(20 * MS));
        assert_eq!(next.sleep(start + 12 * MS), Some(8 * MS));
        assert_eq!(next.sleep(start + 20 * MS), None, "time to read again");
        // Read: due in 8 ms, sooner than the next read: wake then.
        let t = start + 20 * MS;
        next.read(t, 8 * MS);
        assert_eq!(next.sleep(t + MS), Some(7 * MS));
        // Past it, or nearly: still the shortest sleep, never a loop without a pause (a look
        // that only gave claims back is woken by nothing else).
        assert_eq!(next.sleep(t + 6 * MS), Some(SHORTEST_SLEEP));
        assert_eq!(next.sleep(t + 10 * MS), Some(SHORTEST_SLEEP), "already due");
        assert_eq!(next.sleep(t + 25 * MS), None);
    }
}
