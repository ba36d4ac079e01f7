//! A signer's certificates at a remote provider (`GET /v1/certificates`): a provider call like
//! any other, through the provider's circuit breaker, rate and in-flight limit.

use std::time::Duration;

use super::registry::observe;
use super::Engine;
use crate::providers::{CertBundle, ProviderError};

/// The longest a certificate listing waits for one of the provider's in-flight slots.
const SLOT_WAIT: Duration = Duration::from_secs(2);

/// Why the certificates were not fetched.
#[derive(Debug, thiserror::Error)]
pub enum CertificatesError {
    #[error("provider `{0}` is not configured")]
    UnknownProvider(String),
    #[error("{0}")]
    InvalidSigner(String),
    #[error("the provider's rate limit is reached")]
    RateLimited,
    /// The circuit is open: the provider was not called.
    #[error("the provider is failing; its circuit is open")]
    CircuitOpen,
    #[error("the provider has no free slot for another call")]
    Busy,
    #[error(transparent)]
    Provider(ProviderError),
}

impl Engine {
    /// The certificates `signer` holds at `provider`.
    pub async fn certificates(
        &self,
        provider: &str,
        signer: &str,
    ) -> Result<Vec<CertBundle>, CertificatesError> {
        let entry = self
            .providers
            .get(provider)
            .ok_or_else(|| CertificatesError::UnknownProvider(provider.to_owned()))?;
        let signer = crate::domain::validate_signer(entry.signer_rule, signer)
            .map_err(|e| CertificatesError::InvalidSigner(e.to_string()))?;
        if !entry.breaker.allows() {
            return Err(CertificatesError::CircuitOpen);
        }
        if !entry.rate.try_take() {
            return Err(CertificatesError::RateLimited);
        }
        let slot = entry.in_flight.clone().acquire_owned();
        let _permit = match tokio::time::timeout(SLOT_WAIT, slot).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(CertificatesError::Busy),
        };
        let listed = entry.adapter.certificates(&signer).await;
        observe(entry, "certificates", &listed);
        listed.map_err(CertificatesError::Provider)
    }
}
