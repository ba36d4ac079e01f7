//! The waiting engine: one scheduler per instance drains sessions whose persisted
//! `next_check_at` has come, with bounded concurrency and rate per provider. No task sleeps per
//! session: a pending session costs one database row until it is due. Every state change goes
//! through [`Engine::commit`], which writes it with its event and publishes the event.

pub mod breaker;
mod bundles;
mod push;
mod step;

/// Expired sessions claimed at once for a provider that cannot take work (they need no call).
const EXPIRY_BATCH: u32 = 256;

/// Shortest sleep after a look at due work that found nothing to start.
const IDLE_RECHECK: Duration = Duration::from_millis(10);

/// The scheduler reads the next due time at most this often (see [`NextDue`]).
const NEXT_DUE_EVERY: Duration = Duration::from_millis(20);

/// Shortest sleep between two looks at due work that were not woken.
const SHORTEST_SLEEP: Duration = Duration::from_millis(5);

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;

use crate::domain::SessionId;
use crate::events::Hub;
use crate::providers::registry::{ProviderEntry, Registry};
use crate::store::{Change, Created, Event, NewSession, Store, StoreError, Work};

pub use push::Pushed;
pub use step::WorkState;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Longest sleep between two looks at the database when nothing wakes the scheduler.
    pub tick: Duration,
    /// Lease length on a shared database; in-flight sessions are renewed at a third of it.
    pub lease: Duration,
}

pub struct Engine {
    pub store: Arc<dyn Store>,
    pub hub: Hub,
    pub providers: Arc<Registry>,
    config: EngineConfig,
    wake: Notify,
    /// Sessions whose step runs on this instance, by id.
    in_flight: Mutex<HashMap<String, Flight>>,
    /// The scheduler has stopped: pushes only mark their sessions, so that no new step starts
    /// (and holds a lease) while the in-flight ones finish.
    stopping: AtomicBool,
    /// Certificate bundles this instance has stored or read.
    bundles: bundles::Bundles,
}

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

/// A step running here.
struct Flight {
    provider: Arc<str>,
    /// A push came for the session while its step ran: check it again when the step ends.
    pushed: bool,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        hub: Hub,
        providers: Arc<Registry>,
        config: EngineConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            hub,
            providers,
            config,
            wake: Notify::new(),
            in_flight: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            bundles: bundles::Bundles::default(),
        })
    }

    /// Asks the scheduler to look for due work now (a session was created or a callback came).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Creates a session and publishes its first event. When its provider can take a call
    /// now, the session is written claimed by this instance and its first step starts here,
    /// without waiting for a scheduler pass; otherwise the scheduler is woken to claim it.
    pub async fn create(self: &Arc<Self>, mut new: NewSession) -> Result<Created, StoreError> {
        let entry = self.providers.get(&new.session.provider).cloned();
        let permit = entry
            .as_ref()
            .and_then(|e| slot(e, e.adapter.calls_per_start()));
        if permit.is_some() {
            new.lease_until = Some(Utc::now() + self.config.lease);
        }
        let created = self.store.create(&new).await?;
        let Created::New(event) = &created else {
            return Ok(created);
        };
        self.hub.publish(event.clone());
        match (entry, permit) {
            (Some(entry), Some(permit)) => {
                let work = Work {
                    session: new.session,
                    work: None,
                };
                self.start_claimed(entry, work, permit).await;
            }
            _ => self.wake(),
        }
        Ok(created)
    }

    /// Starts claimed `work` if its provider's rate still has the tokens; otherwise gives the
    /// claim back for the scheduler (the tokens went to another session meanwhile).
    async fn start_claimed(
        self: &Arc<Self>,
        entry: Arc<ProviderEntry>,
        work: Work,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        if entry.rate.try_take_n(calls(&entry, &work)) {
            self.start(entry, work, Some(permit));
        } else {
            self.give_back(work.session.id).await;
        }
    }

    /// Releases a claim this instance will not work on and wakes the scheduler to take it. A
    /// failed release only delays the session until its lease ends.
    async fn give_back(&self, id: SessionId) {
        if let Err(e) = self.store.release(std::slice::from_ref(&id)).await {
            tracing::warn!(session = %id, error = %e, "giving back a claim failed; it waits for its lease");
        }
        self.wake();
    }

    /// Writes a state change with its event and publishes the event.
    pub async fn commit(&self, change: Change<'_>) -> Result<Option<Event>, StoreError> {
        let event = self.store.apply(change).await?;
        if let Some(ev) = &event {
            if ev.status.is_terminal() {
                metrics::counter!("kyso_sessions_finished_total", "status" => ev.status.as_str())
                    .increment(1);
            }
            self.hub.publish(ev.clone());
        }
        Ok(event)
    }

    /// Runs until `shutdown` resolves, then lets in-flight steps finish (each ends by writing
    /// its session, which also gives the lease back).
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut renew = tokio::time::interval(self.config.lease / 3);
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
                _ = renew.tick() => self.renew_leases().await,
            }
        }
        self.stopping.store(true, Ordering::Relaxed);
        let grace = tokio::time::Instant::now() + Duration::from_secs(30);
        while !self.in_flight_ids().is_empty() && tokio::time::Instant::now() < grace {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = renew.tick() => self.renew_leases().await,
            }
        }
        tracing::info!("scheduler stopped");
    }

    async fn renew_leases(&self) {
        let ids = self.in_flight_ids();
        if let Err(e) = self.store.renew(&ids).await {
            tracing::warn!(error = %e, "renewing leases failed");
        }
    }

    fn in_flight_ids(&self) -> Vec<SessionId> {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter_map(|id| SessionId::parse(id))
            .collect()
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
                skipped.push(work.session.id);
                continue;
            };
            let id = work.session.id.to_string();
            if self.in_flight_contains(&id) {
                // Claimed again between its step's write and the step's end: give it back
                // now rather than leave it leased.
                skipped.push(work.session.id);
                continue;
            }
            let expired = Utc::now() >= work.session.expires_at;
            // An expired session needs no provider call, so neither the breaker nor the
            // limits hold it back.
            let permit = if expired {
                None
            } else if !entry.breaker.allows() {
                skipped.push(work.session.id);
                continue;
            } else {
                match entry.in_flight.clone().try_acquire_owned() {
                    // A start may make several calls (SmartCA: certificate + sign); the
                    // provider's limit is on calls, not on steps.
                    Ok(p) if entry.rate.try_take_n(calls(&entry, &work)) => Some(p),
                    _ => {
                        skipped.push(work.session.id);
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

    /// Runs one step of a claimed session on its own task; a push that came meanwhile is
    /// handled as the step ends.
    fn start(
        self: &Arc<Self>,
        entry: Arc<ProviderEntry>,
        work: crate::store::Work,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let session_id = work.session.id.clone();
        let id = session_id.to_string();
        self.in_flight_insert(&id, entry.id.clone());
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = step::run(&engine, &entry, work).await {
                tracing::error!(session = %id, error = %e, "session step failed; it stays due");
                // Give the claim back so the next look at due work takes it again, rather than
                // the session waiting for its lease to run out.
                if let Err(e) = engine
                    .store
                    .release(std::slice::from_ref(&session_id))
                    .await
                {
                    tracing::warn!(session = %id, error = %e, "releasing a failed step's claim failed");
                }
            }
            // The slot is free before the pushed session asks for one.
            drop(permit);
            if let Some(provider) = engine.in_flight_remove(&id) {
                if let Err(e) = engine.push(&session_id, &provider).await {
                    tracing::warn!(session = %id, error = %e, "a push that came during the step was lost; the session waits for its next check");
                }
            }
            engine.wake();
        });
    }

    fn in_flight_contains(&self, id: &str) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }

    /// Notes a push for `id` if its step runs here for `provider`; returns whether it does.
    fn note_push(&self, id: &str, provider: &str) -> bool {
        let mut flights = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        match flights.get_mut(id) {
            Some(flight) if *flight.provider == *provider => {
                flight.pushed = true;
                true
            }
            _ => false,
        }
    }

    fn in_flight_insert(&self, id: &str, provider: Arc<str>) {
        let mut flights = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let flight = Flight {
            provider,
            pushed: false,
        };
        flights.insert(id.to_owned(), flight);
        metrics::gauge!("kyso_engine_in_flight").set(flights.len() as f64);
    }

    /// Ends `id`'s flight; its provider when a push came during it.
    fn in_flight_remove(&self, id: &str) -> Option<Arc<str>> {
        let mut flights = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let pushed = flights.remove(id).filter(|f| f.pushed).map(|f| f.provider);
        metrics::gauge!("kyso_engine_in_flight").set(flights.len() as f64);
        pushed
    }
}

/// An in-flight slot of `entry` when it can take `calls` calls now (circuit closed, tokens
/// left).
fn slot(entry: &ProviderEntry, calls: u32) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if !entry.breaker.allows() || entry.rate.available() < calls {
        return None;
    }
    entry.in_flight.clone().try_acquire_owned().ok()
}

/// Provider calls the next step of `work` makes (without retries).
fn calls(entry: &ProviderEntry, work: &crate::store::Work) -> u32 {
    match work.session.status {
        crate::domain::Status::Pending => entry.adapter.calls_per_start(),
        _ => 1,
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
