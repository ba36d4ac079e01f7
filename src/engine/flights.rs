//! Steps running on this instance: starting one on its own task, and the in-flight table
//! (which sessions, under which lease, for which provider, and whether a push came during the
//! step) that leases are renewed from and pushes are noted in. A step whose lease another
//! instance took over stops where it is and writes nothing (`kyso_lease_lost_total`).

use std::sync::Arc;

use tokio::sync::Notify;

use super::{step, Engine};
use crate::domain::SessionId;
use crate::engine::registry::ProviderEntry;
use crate::store::{Held, StoreError};

/// A step running here.
pub(super) struct Flight {
    provider: Arc<str>,
    /// The lease the step works under; its writes name it.
    held: Held,
    /// A push came for the session while its step ran: check it again when the step ends.
    pushed: bool,
    /// Told when a renewal finds the lease taken over: the step stops.
    lost: Arc<Notify>,
}

impl Engine {
    /// Runs one step of a claimed session on its own task; a push that came meanwhile is
    /// handled as the step ends.
    pub(super) fn start(
        self: &Arc<Self>,
        entry: Arc<ProviderEntry>,
        work: crate::store::Work,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let session_id = work.session.id.clone();
        let id = session_id.to_string();
        let held = work.held();
        let lost = self.in_flight_insert(&id, entry.id.clone(), held.clone());
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            let result = tokio::select! {
                result = step::run(&engine, &entry, work) => result,
                () = lost.notified() => Err(StoreError::LeaseLost(session_id.clone())),
            };
            match result {
                Ok(()) => {}
                Err(StoreError::LeaseLost(_)) => {
                    // Another instance works on it now: nothing of this step may be written.
                    metrics::counter!("kyso_lease_lost_total").increment(1);
                    tracing::warn!(session = %id, "lease taken over by another instance; step abandoned");
                }
                Err(e) => {
                    tracing::error!(session = %id, error = %e, "session step failed; it stays due");
                    // Give the claim back so the next look at due work takes it again, rather
                    // than the session waiting for its lease to run out.
                    if let Err(e) = engine.store.release(std::slice::from_ref(&held)).await {
                        tracing::warn!(session = %id, error = %e, "releasing a failed step's claim failed");
                    }
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

    /// The leases of the steps in flight.
    pub(super) fn in_flight_held(&self) -> Vec<Held> {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|f| f.held.clone())
            .collect()
    }

    /// The lease `id`'s step works under; `LeaseLost` when no step of it runs here.
    pub(super) fn held(&self, id: &SessionId) -> Result<Held, StoreError> {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id.as_str())
            .map(|f| f.held.clone())
            .ok_or_else(|| StoreError::LeaseLost(id.clone()))
    }

    /// Stops the steps whose leases `lost` names (only if they still run under that lease).
    pub(super) fn leases_lost(&self, lost: &[Held]) {
        let flights = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for held in lost {
            if let Some(f) = flights.get(held.id.as_str()).filter(|f| f.held == *held) {
                f.lost.notify_one();
            }
        }
    }

    pub(super) fn in_flight_contains(&self, id: &str) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }

    /// Notes a push for `id` if its step runs here for `provider`; returns whether it does.
    pub(super) fn note_push(&self, id: &str, provider: &str) -> bool {
        let mut flights = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        match flights.get_mut(id) {
            Some(flight) if *flight.provider == *provider => {
                flight.pushed = true;
                true
            }
            _ => false,
        }
    }

    fn in_flight_insert(&self, id: &str, provider: Arc<str>, held: Held) -> Arc<Notify> {
        let mut flights = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let lost = Arc::new(Notify::new());
        let flight = Flight {
            provider,
            held,
            pushed: false,
            lost: lost.clone(),
        };
        flights.insert(id.to_owned(), flight);
        metrics::gauge!("kyso_engine_in_flight").set(flights.len() as f64);
        lost
    }

    /// Ends `id`'s flight; its provider when a push came during it.
    fn in_flight_remove(&self, id: &str) -> Option<Arc<str>> {
        let mut flights = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let pushed = flights.remove(id).filter(|f| f.pushed).map(|f| f.provider);
        metrics::gauge!("kyso_engine_in_flight").set(flights.len() as f64);
        pushed
    }
}
