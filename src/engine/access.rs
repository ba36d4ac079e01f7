//! What the HTTP handlers and startup may read through the engine; its fields stay private.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::Engine;
use crate::domain::{Session, SessionId, SignerRule};
use crate::events::Hub;
use crate::store::{Created, Event, ListFilter, NewSession, Store, StoreError};

/// What a request for a provider is checked against.
#[derive(Debug, Clone, Copy)]
pub struct ProviderTerms {
    pub signer_rule: SignerRule,
    pub default_timeout_s: u32,
}

impl Engine {
    /// The terms of a configured provider; `None` when it is not configured.
    pub fn provider_terms(&self, provider: &str) -> Option<ProviderTerms> {
        self.providers.get(provider).map(|e| ProviderTerms {
            signer_rule: e.signer_rule,
            default_timeout_s: e.default_timeout_s,
        })
    }

    /// `tenant`'s session `id`.
    pub async fn session(
        &self,
        tenant: &str,
        id: &SessionId,
    ) -> Result<Option<Session>, StoreError> {
        self.store.get(tenant, id).await
    }

    /// A page of `tenant`'s sessions.
    pub async fn sessions(
        &self,
        tenant: &str,
        filter: &ListFilter,
    ) -> Result<Vec<Session>, StoreError> {
        self.store.list(tenant, filter).await
    }

    /// The session an earlier request with the same idempotency key created, if any.
    pub async fn replay(&self, new: &NewSession) -> Result<Option<Created>, StoreError> {
        self.store.replay(new).await
    }

    /// Every event published on this instance from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.hub.subscribe()
    }

    /// The hub events are published on (startup wires the store's fan-in to it).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The store, for reading committed events back (the outbox) and for its own tasks.
    pub fn outbox(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Limits and single-use secrets shared with the other instances (a shared database);
    /// `None` when this instance owns its store.
    pub fn shared(&self) -> Option<&dyn crate::store::shared::Shared> {
        self.store.shared()
    }

    /// Providers whose circuit is open now.
    pub fn open_circuits(&self) -> Vec<&str> {
        self.providers.open_circuits()
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
}
