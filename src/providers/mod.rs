//! Providers: one adapter per provider kind behind the [`Provider`] trait. An adapter speaks its
//! provider's wire protocol and nothing else: it never touches the database and never formats a
//! response for the portal. The engine drives adapters; the API never knows which one it uses.

pub mod callback_auth;
pub mod mssp;
pub mod retry;
pub mod smartca;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{ErrorCode, Purpose};
use crate::verify::Scheme;

/// A certificate as a provider hands it over: the signer's certificate and the intermediates
/// the provider supplied (DER).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CertBundle {
    #[serde(with = "b64")]
    pub certificate: Vec<u8>,
    #[serde(with = "b64_list")]
    pub chain: Vec<Vec<u8>>,
}

/// What the engine asks a provider to sign.
#[derive(Debug, Clone)]
pub struct SignRequest<'a> {
    /// Derived from the session id: the same on every retry and after a restart.
    pub transaction_id: &'a str,
    pub signer: &'a str,
    /// What to sign: the session digest, or for `format: "cms"` the SHA-256 of the signed
    /// attributes kyso built around it.
    pub digest: &'a [u8; 32],
    /// The session's verification code (from the session digest, so not from `digest` when
    /// the session is CMS); for providers that show it outside `display_text`.
    pub verification_code: &'a str,
    /// Already carries the verification code.
    pub display_text: &'a str,
    pub document_name: Option<&'a str>,
    pub purpose: Purpose,
    pub expires_at: DateTime<Utc>,
}

/// The provider accepted the request and (normally) pushed it to the phone.
#[derive(Debug, Clone)]
pub struct Started {
    /// Adapter-private state the engine persists and hands back on every status check
    /// (e.g. the provider's own transaction code). Opaque JSON to everyone else.
    pub state: serde_json::Value,
    /// The certificate the provider will sign with, when it is known before the signature.
    pub certificate: Option<CertBundle>,
    pub first_check_in: Duration,
}

#[derive(Debug, Clone)]
pub struct StatusRequest<'a> {
    pub transaction_id: &'a str,
    pub signer: &'a str,
    pub state: &'a serde_json::Value,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    /// The user has not answered yet.
    Waiting {
        next_check_in: Duration,
    },
    Signed {
        signature: Vec<u8>,
        scheme: Scheme,
        /// When the provider returns the certificate with the signature.
        certificate: Option<CertBundle>,
    },
    /// A CMS SignedData whose signer signed attributes carrying the session's digest (the
    /// PKCS7 format of some MSSPs); the engine judges it with the CMS verifier.
    SignedCms {
        cms: Vec<u8>,
        certificate: Option<CertBundle>,
    },
    Rejected {
        provider_code: Option<String>,
    },
    Expired {
        provider_code: Option<String>,
    },
    Failed(Failure),
}

/// A final failure reported by the provider (not a transport problem).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: ErrorCode,
    pub provider_code: Option<String>,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying: connect errors, timeouts, 5xx, 429. The detail is for the log: it may
    /// name the provider's internal URL, so it never reaches a portal.
    #[error("provider unavailable: {0}")]
    Transient(String),
    /// The provider gave a definite answer that ends the session.
    #[error("{}", .0.message)]
    Final(Failure),
}

impl ProviderError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ProviderError::Transient(_))
    }
}

/// A push from a provider, reduced to what kyso may act on. Unless `trusted`, it is only a
/// hint that triggers a status check.
#[derive(Debug, Clone)]
pub struct CallbackHint {
    pub transaction_id: String,
}

#[derive(Debug, thiserror::Error)]
#[error("callback rejected: {0}")]
pub struct CallbackError(pub String);

/// What a push is answered with when the provider expects more than `{"received": true}`
/// (an MSSP expects a SOAP receipt).
#[derive(Debug, Clone)]
pub struct CallbackReply {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct CallbackAnswer {
    pub hints: Vec<CallbackHint>,
    /// `None`: the default JSON acknowledgement.
    pub reply: Option<CallbackReply>,
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// Sends the signature request. Must be safe to repeat with the same transaction id.
    async fn start(&self, req: &SignRequest<'_>) -> Result<Started, ProviderError>;

    async fn status(&self, req: &StatusRequest<'_>) -> Result<Outcome, ProviderError>;

    /// Requests one `start` sends to the provider (without retries): the engine charges the
    /// provider's rate limit this many.
    fn calls_per_start(&self) -> u32 {
        1
    }

    /// Withdraws the request at the provider where the protocol allows it.
    async fn cancel(&self, req: &StatusRequest<'_>) -> Result<(), ProviderError>;

    /// Whether [`cancel`](Provider::cancel) takes a prompt off the phone. When it cannot, a
    /// session cancelled after its request was sent ends with `prompt_not_withdrawn`.
    fn can_withdraw(&self) -> bool {
        false
    }

    /// The signer's certificates at the provider.
    async fn certificates(&self, signer: &str) -> Result<Vec<CertBundle>, ProviderError>;

    /// The certificate a signature by `signer` will be made with, asked before the signature
    /// for `format: "cms"` (its hash goes into the signed attributes). By default the signer's
    /// only certificate; `None` when the provider lists several and cannot say which it uses.
    async fn signing_certificate(&self, signer: &str) -> Result<Option<CertBundle>, ProviderError> {
        let mut all = self.certificates(signer).await?;
        Ok(if all.len() == 1 { all.pop() } else { None })
    }

    /// Parses a push. The body is untrusted; an error answers 400 to the caller.
    fn parse_callback(&self, body: &[u8]) -> Result<Vec<CallbackHint>, CallbackError>;

    /// Parses a push and says how to answer it; by default, the hints of [`parse_callback`]
    /// with the JSON acknowledgement.
    ///
    /// [`parse_callback`]: Provider::parse_callback
    fn handle_callback(&self, body: &[u8]) -> Result<CallbackAnswer, CallbackError> {
        Ok(CallbackAnswer {
            hints: self.parse_callback(body)?,
            reply: None,
        })
    }
}

/// Helpers for `CertBundle`'s base64 fields when persisted as JSON.
mod b64 {
    use base64::prelude::{Engine, BASE64_STANDARD};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64_STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        BASE64_STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

mod b64_list {
    use base64::prelude::{Engine, BASE64_STANDARD};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|c| BASE64_STANDARD.encode(c)))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|s| BASE64_STANDARD.decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}
