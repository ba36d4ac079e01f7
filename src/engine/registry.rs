//! The configured provider instances by id: each adapter with what the engine needs around it
//! (trust anchors, revocation policy, concurrency and rate limits, timeouts, signer rule).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::breaker::Breaker;
use crate::domain::SignerRule;
use crate::limiter::TokenBucket;
use crate::providers::callback_auth::CallbackAuth;
use crate::providers::{Provider, ProviderError};
use crate::verify::{RevocationPolicy, TrustAnchors, Verifier};

pub struct ProviderEntry {
    pub id: Arc<str>,
    pub adapter: Arc<dyn Provider>,
    pub anchors: TrustAnchors,
    pub signer_rule: SignerRule,
    pub default_timeout_s: u32,
    /// How long transient failures of one call are retried before the engine reschedules.
    pub retry_budget: Duration,
    /// Bounds requests in flight to this provider across all sessions.
    pub in_flight: Arc<Semaphore>,
    /// Bounds requests per second to this provider.
    pub rate: TokenBucket,
    /// Stops calls to a provider that keeps failing.
    pub breaker: Breaker,
    /// How hard the engine insists on an OCSP/CRL answer for this provider's signers.
    pub revocation: RevocationPolicy,
    /// How pushes to `/callbacks/{id}` must be authenticated.
    pub callback_auth: CallbackAuth,
    /// Bounds the pushes acted on per second; past it they are answered and ignored.
    pub callback_rate: TokenBucket,
    /// Whose turn it is for the remainder of a pass's fair shares (see `engine::pass`).
    pub turn: std::sync::atomic::AtomicUsize,
    /// The earliest deadline of this provider's unfinished sessions as last read, and when
    /// (see `engine::pass`); a create here lowers it.
    pub next_expiry: std::sync::Mutex<Option<(std::time::Instant, chrono::DateTime<chrono::Utc>)>>,
    /// The process's one verifier (shared by every provider, so its caches are too).
    pub verifier: Arc<Verifier>,
}

#[derive(Default)]
pub struct Registry {
    entries: HashMap<String, Arc<ProviderEntry>>,
}

impl Registry {
    pub fn insert(&mut self, entry: ProviderEntry) {
        self.entries.insert(entry.id.to_string(), Arc::new(entry));
    }

    pub fn get(&self, id: &str) -> Option<&Arc<ProviderEntry>> {
        self.entries.get(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Providers whose circuit is open now.
    pub fn open_circuits(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(_, e)| e.breaker.is_open())
            .map(|(id, _)| id.as_str())
            .collect()
    }

    pub fn max_in_flight(&self) -> usize {
        self.entries
            .values()
            .map(|e| e.in_flight.available_permits())
            .sum()
    }
}

/// Records a provider call's outcome in its breaker and its metrics.
pub(super) fn observe<T>(entry: &ProviderEntry, op: &'static str, r: &Result<T, ProviderError>) {
    let provider = &*entry.id;
    if entry
        .breaker
        .record(!matches!(r, Err(ProviderError::Transient(_))))
    {
        tracing::warn!(provider, "circuit opened after repeated failures");
    }
    metrics::gauge!("kyso_provider_circuit_open", "provider" => provider.to_owned())
        .set(if entry.breaker.is_open() { 1.0 } else { 0.0 });
    let result = match r {
        Ok(_) => "ok",
        Err(ProviderError::Transient(_)) => "unavailable",
        Err(ProviderError::Final(_)) => "error",
    };
    metrics::counter!("kyso_provider_calls_total", "provider" => provider.to_owned(), "op" => op, "result" => result)
        .increment(1);
}
