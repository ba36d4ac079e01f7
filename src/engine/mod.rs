//! The waiting engine: one scheduler per instance drains sessions whose persisted
//! `next_check_at` has come, with bounded concurrency and rate per provider. No task sleeps per
//! session: a pending session costs one database row until it is due. Every state change goes
//! through [`Engine::commit`], which writes it with its event and publishes the event.
//!
//! This file owns the engine's construction and its entry points for new work (create,
//! commit, handing a claim back) and the provider-slot helpers they share. The scheduler loop
//! lives in `scheduler.rs`, the bookkeeping of steps running here in `flights.rs`, provider
//! pushes in `push.rs`, one session's step in `step.rs`, cancels in `cancel.rs`, what the
//! handlers may read in `access.rs`, and the provider registry with its breakers in
//! `registry.rs` and `breaker.rs`.

mod access;
pub mod breaker;
mod bundles;
mod callback;
mod cancel;
mod certificates;
mod flights;
mod pass;
mod push;
pub mod registry;
pub mod retention;
mod scheduler;
mod step;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;

use crate::events::Hub;
use crate::store::{
    Change, Created, Event, Held, NewSession, Store, StoreError, Work, CREATED_EPOCH,
};
use registry::{ProviderEntry, Registry};

pub use access::ProviderTerms;
pub use callback::{Callback, CallbackRefused};
pub use cancel::CancelError;
pub use certificates::CertificatesError;
use flights::Flight;
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
    store: Arc<dyn Store>,
    hub: Hub,
    providers: Arc<Registry>,
    config: EngineConfig,
    wake: Notify,
    /// Sessions whose step runs on this instance, by id.
    in_flight: Mutex<HashMap<String, Flight>>,
    /// The scheduler has stopped: pushes only mark their sessions, so that no new step starts
    /// (and holds a lease) while the in-flight ones finish.
    stopping: AtomicBool,
    /// Certificate bundles this instance has stored or read.
    bundles: bundles::Bundles,
    /// Starts being sent and cancels under way, so that a cancel withholds a start not yet
    /// sent and waits for one in flight.
    gates: cancel::Gates,
    /// The (provider, tenant) queues last reported in `/metrics` (see `pass::report_queues`).
    reported: Mutex<std::collections::HashSet<(String, String)>>,
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
            gates: cancel::Gates::default(),
            reported: Mutex::default(),
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
        if let Some(entry) = &entry {
            let mut known = entry.next_expiry.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, at)) = known.as_mut() {
                *at = (*at).min(new.session.expires_at);
            }
        }
        self.hub.publish(event.clone());
        match (entry, permit) {
            (Some(entry), Some(permit)) => {
                let work = Work {
                    session: new.session,
                    work: None,
                    epoch: CREATED_EPOCH,
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
            self.give_back(work.held()).await;
        }
    }

    /// Releases a claim this instance will not work on and wakes the scheduler to take it. A
    /// failed release only delays the session until its lease ends.
    async fn give_back(&self, held: Held) {
        if let Err(e) = self.store.release(std::slice::from_ref(&held)).await {
            tracing::warn!(session = %held.id, error = %e, "giving back a claim failed; it waits for its lease");
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
