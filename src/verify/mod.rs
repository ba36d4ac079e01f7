//! Judging a signature: whether it is over exactly the expected digest, whether the
//! certificate may sign, was valid at the signing time, chains to a trust anchor configured for
//! the provider, and was not revoked then; and who it names. Raw RSA signatures and CMS
//! SignedData are judged the same way, and kyso builds the CMS it returns for `format: "cms"`
//! here too. Knows nothing of storage, providers or the portal API; the one piece that talks
//! to the network is [`online`], which fetches OCSP answers and CRLs for [`Verifier`].
//!
//! Module map: [`verifier`] runs the checks in order and caches what it proved; [`keys`],
//! [`certificate`] (with [`eku`]) and [`path`] are the per-certificate, per-link and path
//! rules; [`ocsp`], [`crl`] and [`revocation`] judge revocation evidence, [`online`] fetches it;
//! [`cms`] reads a SignedData, [`cms_build`] assembles one; [`identity`], [`name`] and [`uid`]
//! read who the certificate names, and [`signer`] whether that is the signer asked for.

mod anchors;
mod cache;
mod certificate;
mod cms;
pub mod cms_build;
pub(crate) mod crl;
mod eku;
mod evidence;
mod extensions;
mod identity;
mod keys;
mod name;
pub(crate) mod ocsp;
mod online;
mod path;
mod pool;
pub(crate) mod revocation;
mod signer;
mod tlv;
mod uid;
mod verifier;

pub use anchors::{certificates_from_pem_or_der, TrustAnchors};
pub use evidence::Evidence;
pub use identity::{parse_identity, Identity, IdentityKind};
pub use online::{Fetch, FetchError, HttpFetch, OnlineOptions};
pub use revocation::RevocationPolicy;
pub use signer::signer_matches;
pub(crate) use verifier::unpack as unpack_cms;
pub use verifier::{CmsCheck, Refusal, Verifier};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Padding of the signer's signature, as the provider declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    Pkcs1v15,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
    PssSha256,
}

/// Everything needed to judge one returned signature.
#[derive(Debug, Clone, Copy)]
pub struct SignatureCheck<'a> {
    /// SHA-256 digest that must have been signed.
    pub digest: &'a [u8; 32],
    pub signature: &'a [u8],
    pub scheme: Scheme,
    /// Signer certificate, DER.
    pub certificate: &'a [u8],
    /// Intermediates (DER) in any order; may include the root.
    pub chain: &'a [Vec<u8>],
    /// Signing time: validity is judged here, not at the time of the check.
    pub at: DateTime<Utc>,
}

/// The `verification` block of a session result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verification {
    /// `valid`, `invalid` or `not_checked`.
    pub signature: String,
    /// `trusted`, `untrusted`, `expired` or `not_checked`.
    pub chain: String,
    /// `good`, `revoked`, `unknown` (asked, no definite answer) or `not_checked` (not asked).
    pub revocation: String,
    /// Which source answered, or why none did: what an operator reads to explain a verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_detail: Option<String>,
    pub checked_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub identity: Identity,
    pub verification: Verification,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature does not verify over this session's digest with the certificate's key")]
    InvalidSignature,
    #[error("untrusted certificate: {0}")]
    UntrustedCertificate(String),
    #[error("the certificate had expired at the signing time")]
    CertificateExpired,
    #[error("the certificate was not yet valid at the signing time")]
    CertificateNotYetValid,
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
    /// A CMS (or other signature container) that cannot be read.
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    #[error("the certificate was revoked at {since}{}, before the signing time", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Revoked {
        since: DateTime<Utc>,
        reason: Option<String>,
    },
    /// Policy `require` and no definite revocation answer.
    #[error("revocation status could not be established and the policy requires it: {0}")]
    RevocationUnavailable(String),
    /// For callers whose [`signer_matches`] check fails; `verify` itself never returns it.
    #[error("the certificate does not belong to the requested signer")]
    SignerMismatch,
}

impl VerifyError {
    /// The portal's `error.code` for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidSignature | Self::MalformedSignature(_) => "invalid_signature",
            // A certificate kyso cannot read, or whose revocation it cannot establish when it
            // must, is one it cannot trust; the portal needs no separate code for either.
            Self::UntrustedCertificate(_)
            | Self::MalformedCertificate(_)
            | Self::RevocationUnavailable(_) => "untrusted_certificate",
            Self::Revoked { .. } => "revoked_certificate",
            // The portal knows one code for "outside its validity at the signing time".
            Self::CertificateExpired | Self::CertificateNotYetValid => "certificate_expired",
            Self::SignerMismatch => "signer_mismatch",
        }
    }
}

/// Judges one signature without revocation (`revocation: "not_checked"`): the checks run in a
/// fixed order so the error names the first problem. [`Verifier::verify`] adds revocation and
/// caching.
pub fn verify(check: &SignatureCheck<'_>, anchors: &TrustAnchors) -> Result<Verdict, VerifyError> {
    let examined = verifier::examine(check, anchors).map_err(|r| r.error)?;
    Ok(examined.verdict_without_revocation())
}

/// Judges a CMS SignedData over content whose SHA-256 is `content_digest`, without revocation.
/// `extra_chain` may hold the signer's certificate (when the CMS does not) and intermediates.
pub fn verify_cms(
    cms_der: &[u8],
    content_digest: &[u8; 32],
    anchors: &TrustAnchors,
    at: DateTime<Utc>,
    extra_chain: &[Vec<u8>],
) -> Result<Verdict, VerifyError> {
    let cms = CmsCheck {
        cms: cms_der,
        content_digest,
        extra_certificates: extra_chain,
        at,
    };
    let unpacked = verifier::unpack(&cms).map_err(|r| r.error)?;
    let check = SignatureCheck {
        digest: &unpacked.signed_digest,
        signature: &unpacked.signature,
        scheme: unpacked.scheme,
        certificate: &unpacked.certificate,
        chain: &unpacked.chain,
        at,
    };
    verify(&check, anchors)
}
