//! Judging what a provider returned: whether the signature is over exactly this session's
//! digest, whether the certificate may sign, was valid at the signing time and chains to a
//! trust anchor configured for the provider, and who it names. Revocation is not checked yet;
//! the verdict says so (`revocation: "not_checked"`). Knows nothing of HTTP, storage or
//! providers: callers hand in bytes and get a [`Verdict`] or a [`VerifyError`] with a portal
//! error code.

mod certificate;
mod identity;
mod keys;
mod name;
mod path;
mod uid;

pub use identity::{parse_identity, signer_matches, Identity, IdentityKind};

use base64::Engine;
use chrono::{DateTime, Utc};
use der::Decode;
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;

/// Certificates a provider's signers must chain to.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    certs: Vec<Certificate>,
}

impl TrustAnchors {
    /// One file holding one or more PEM certificates, or a single DER certificate.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, VerifyError> {
        const BEGIN: &str = "-----BEGIN ";
        if !bytes.windows(BEGIN.len()).any(|w| w == BEGIN.as_bytes()) {
            return Self::from_der(vec![bytes.to_vec()]);
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| VerifyError::MalformedCertificate("PEM file is not text".into()))?;
        let ders = pem_certificates(text)?;
        if ders.is_empty() {
            return Err(VerifyError::MalformedCertificate(
                "PEM file holds no CERTIFICATE block".into(),
            ));
        }
        Self::from_der(ders)
    }

    pub fn from_der(certs: Vec<Vec<u8>>) -> Result<Self, VerifyError> {
        let certs = certs
            .iter()
            .enumerate()
            .map(|(i, der)| {
                Certificate::from_der(der).map_err(|e| {
                    VerifyError::MalformedCertificate(format!("trust anchor {}: {e}", i + 1))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { certs })
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

/// Base64 bodies of every `CERTIFICATE` block; other blocks (keys, CRLs) are skipped so an
/// operator's bundle with extras still loads.
fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, VerifyError> {
    let mut ders = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| VerifyError::MalformedCertificate("unterminated PEM header".into()))?;
        let label = &after[..label_end];
        let body_start = &after[label_end + "-----".len()..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start.find(&end_marker).ok_or_else(|| {
            VerifyError::MalformedCertificate(format!("PEM block {label} has no END line"))
        })?;
        if matches!(label, "CERTIFICATE" | "X509 CERTIFICATE") {
            let body: String = body_start[..body_end]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| VerifyError::MalformedCertificate(format!("PEM base64: {e}")))?;
            ders.push(der);
        }
        rest = &body_start[body_end + end_marker.len()..];
    }
    Ok(ders)
}

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
    pub signature: String,
    pub chain: String,
    pub revocation: String,
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
    /// For callers whose [`signer_matches`] check fails; `verify` itself never returns it.
    #[error("the certificate does not belong to the requested signer")]
    SignerMismatch,
}

impl VerifyError {
    /// The portal's `error.code` for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidSignature => "invalid_signature",
            // A certificate kyso cannot read is one it cannot trust; the portal needs no
            // separate code for it.
            Self::UntrustedCertificate(_) | Self::MalformedCertificate(_) => {
                "untrusted_certificate"
            }
            // The portal knows one code for "outside its validity at the signing time".
            Self::CertificateExpired | Self::CertificateNotYetValid => "certificate_expired",
            Self::SignerMismatch => "signer_mismatch",
        }
    }
}

/// Judges one signature. The checks run in a fixed order so the error names the first problem:
/// readable certificate, key size, signature over the digest, key usage, validity at `at`, path
/// to an anchor.
pub fn verify(check: &SignatureCheck<'_>, anchors: &TrustAnchors) -> Result<Verdict, VerifyError> {
    let cert = Certificate::from_der(check.certificate)
        .map_err(|e| VerifyError::MalformedCertificate(e.to_string()))?;
    let key = keys::public_key(&cert)?;
    keys::verify_digest(&key, check.scheme, check.digest, check.signature)?;
    certificate::require_signing_usage(&cert)?;
    certificate::require_understood_extensions(&cert)?;
    certificate::require_valid_at(&cert, check.at)?;
    let chain = check
        .chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            Certificate::from_der(der).map_err(|e| {
                VerifyError::MalformedCertificate(format!("chain certificate {}: {e}", i + 1))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    path::build(&cert, &chain, &anchors.certs, check.at)?;
    Ok(Verdict {
        identity: identity::from_certificate(&cert, check.certificate)?,
        verification: Verification {
            signature: "valid".into(),
            chain: "trusted".into(),
            revocation: "not_checked".into(),
            checked_at: Utc::now(),
        },
    })
}
