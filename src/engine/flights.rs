//! Steps running on this instance: starting one on its own task, and the in-flight table
//! (which sessions, for which provider, and whether a push came during the step) that leases
//! are renewed from and pushes are noted in.

use std::sync::Arc;

use super::{step, Engine};
use crate::domain::SessionId;
use crate::providers::registry::ProviderEntry;

/// A step running here.
pub(super) struct Flight {
    provider: Arc<str>,
    /// A push came for the session while its step ran: check it again when the step ends.
    pushed: bool,
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

    pub(super) fn in_flight_ids(&self) -> Vec<SessionId> {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter_map(|id| SessionId::parse(id))
            .collect()
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
