//! The verifier: every check on one signature in a fixed order (readable certificate, key size,
//! signature over the digest, key usage, validity at the signing time, path to an anchor,
//! revocation), with what it found on the way kept for the answer even when it refuses.
//! A signer seen before skips the path work: its path is cached by certificate fingerprint and
//! anchor set for as long as every certificate on it is valid, and its revocation answer until
//! the answer's nextUpdate, so a repeat costs little more than the RSA operation. Everything
//! else — parsing what the caller sent and building its path — runs on the verification
//! [`Pool`], off the async workers: certificates not yet proven are attacker-shaped input.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use der::Decode;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::cache::TtlCache;
use super::evidence::{self, Evidence};
use super::online::{Fetch, HttpFetch, Online, OnlineOptions};
use super::pool::Pool;
use super::revocation::{Finding, RevocationPolicy, Subject};
use super::{certificate, cms, identity, keys, path};
use super::{Identity, SignatureCheck, TrustAnchors, Verdict, Verification, VerifyError};
use crate::outbound::ClientError;

const KNOWN_SIGNERS: usize = 10_000;
/// A cached path is re-proved at least this often, whatever the certificates' validity.
const KNOWN_FOR: Duration = Duration::from_secs(24 * 3600);

/// A refused signature: why, and what was established before the refusal (the USB-token API
/// and `kyso verify` show both).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Refusal {
    pub error: VerifyError,
    pub verification: Verification,
    /// Boxed: an identity is large and a refusal travels in every `Err`.
    pub identity: Option<Box<Identity>>,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        self.error.code()
    }

    /// A valid signature by a certificate that does not name the expected signer.
    pub fn signer_mismatch(verdict: Verdict) -> Self {
        Self {
            error: VerifyError::SignerMismatch,
            verification: verdict.verification,
            identity: Some(Box::new(verdict.identity)),
        }
    }
}

/// How far the checks got when one failed.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Certificate,
    Signature,
    Chain,
}

/// Boxed: a refusal is large and most results are not refusals.
fn refuse(stage: Stage, error: VerifyError, identity: Option<Identity>) -> Box<Refusal> {
    let (signature, chain) = match (stage, &error) {
        (Stage::Certificate, _) => ("not_checked", "untrusted"),
        (Stage::Signature, _) => ("invalid", "not_checked"),
        (Stage::Chain, VerifyError::CertificateExpired | VerifyError::CertificateNotYetValid) => {
            ("valid", "expired")
        }
        (Stage::Chain, _) => ("valid", "untrusted"),
    };
    Box::new(Refusal {
        error,
        verification: Verification {
            signature: signature.into(),
            chain: chain.into(),
            revocation: "not_checked".into(),
            revocation_detail: None,
            checked_at: Utc::now(),
        },
        identity: identity.map(Box::new),
    })
}

/// What a proven path says about a signer, kept between signatures.
#[derive(Debug)]
pub(crate) struct Known {
    /// The signer's certificate and key, decoded once: a known signer's next signature costs
    /// the fingerprint, the lookup and the RSA operation.
    cert: Certificate,
    key: keys::PublicKey,
    issuer: Certificate,
    identity: Identity,
    /// When the signer and every intermediate on its path are all valid.
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
}

/// A signature that passed every check but revocation.
pub(crate) struct Examined {
    fingerprint: [u8; 32],
    known: Arc<Known>,
}

impl Examined {
    pub(crate) fn verdict_without_revocation(&self) -> Verdict {
        let mut verdict = self.verdict(&Finding::NotChecked { why: String::new() });
        verdict.verification.revocation_detail = None;
        verdict
    }

    fn verdict(&self, finding: &Finding) -> Verdict {
        Verdict {
            identity: self.known.identity.clone(),
            verification: Verification {
                signature: "valid".into(),
                chain: "trusted".into(),
                revocation: finding.label().into(),
                revocation_detail: Some(finding.detail()),
                checked_at: Utc::now(),
            },
        }
    }
}

/// A [`SignatureCheck`] that owns its bytes, to cross onto the verification pool.
struct OwnedCheck {
    digest: [u8; 32],
    signature: Vec<u8>,
    scheme: super::Scheme,
    certificate: Vec<u8>,
    chain: Vec<Vec<u8>>,
    at: DateTime<Utc>,
}

impl OwnedCheck {
    fn new(check: &SignatureCheck<'_>) -> Self {
        Self {
            digest: *check.digest,
            signature: check.signature.to_vec(),
            scheme: check.scheme,
            certificate: check.certificate.to_vec(),
            chain: check.chain.to_vec(),
            at: check.at,
        }
    }

    fn check(&self) -> SignatureCheck<'_> {
        SignatureCheck {
            digest: &self.digest,
            signature: &self.signature,
            scheme: self.scheme,
            certificate: &self.certificate,
            chain: &self.chain,
            at: self.at,
        }
    }
}

/// Every check but revocation, without any cache.
pub(crate) fn examine(
    check: &SignatureCheck<'_>,
    anchors: &TrustAnchors,
) -> Result<Examined, Box<Refusal>> {
    let cert = Certificate::from_der(check.certificate).map_err(|e| {
        refuse(
            Stage::Certificate,
            VerifyError::MalformedCertificate(e.to_string()),
            None,
        )
    })?;
    let identity = identity::from_certificate(&cert, check.certificate)
        .map_err(|e| refuse(Stage::Certificate, e, None))?;
    let refuse_at = |stage, e| refuse(stage, e, Some(identity.clone()));
    let key = keys::public_key(&cert).map_err(|e| refuse_at(Stage::Certificate, e))?;
    keys::verify_digest(&key, check.scheme, check.digest, check.signature)
        .map_err(|e| refuse_at(Stage::Signature, e))?;
    let chain = check
        .chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            Certificate::from_der(der).map_err(|e| {
                VerifyError::MalformedCertificate(format!("chain certificate {}: {e}", i + 1))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refuse_at(Stage::Chain, e))?;
    let found = certificate::require_signing_usage(&cert)
        .and_then(|()| certificate::require_understood_extensions(&cert))
        .and_then(|()| certificate::require_valid_at(&cert, check.at))
        .and_then(|()| path::build(&cert, &chain, &anchors.certs, check.at))
        .map_err(|e| refuse_at(Stage::Chain, e))?;
    let not_before = found
        .not_before
        .map_or(identity.not_before, |nb| nb.max(identity.not_before));
    let not_after = found
        .not_after
        .map_or(identity.not_after, |na| na.min(identity.not_after));
    Ok(Examined {
        fingerprint: Sha256::digest(check.certificate).into(),
        known: Arc::new(Known {
            cert,
            key,
            issuer: found.issuer,
            identity,
            not_before,
            not_after,
        }),
    })
}

enum Source {
    Online(Online),
    Offline(Evidence),
}

/// Judges signatures; one per process (its caches are the point), shared by the engine, the
/// USB-token API and nothing else.
pub struct Verifier {
    source: Source,
    /// By (certificate fingerprint, anchor set id).
    known: TtlCache<([u8; 32], [u8; 32]), Arc<Known>>,
    pool: Pool,
}

/// A CMS SignedData to verify against the digest of the content it must be over.
#[derive(Debug, Clone, Copy)]
pub struct CmsCheck<'a> {
    pub cms: &'a [u8],
    /// SHA-256 of the (detached or embedded) content.
    pub content_digest: &'a [u8; 32],
    /// Certificates from outside the CMS: the signer's, when the CMS does not carry it, and
    /// intermediates.
    pub extra_certificates: &'a [Vec<u8>],
    pub at: DateTime<Utc>,
}

impl Verifier {
    /// Revocation over HTTP with kyso's client (timeouts, size caps).
    pub fn online(options: &OnlineOptions) -> Result<Self, ClientError> {
        Ok(Self::with_fetch(Arc::new(HttpFetch::new(options)?)))
    }

    pub fn with_fetch(fetch: Arc<dyn Fetch>) -> Self {
        Self {
            source: Source::Online(Online::new(fetch)),
            known: TtlCache::new(KNOWN_SIGNERS),
            pool: Pool::sized_to_cores(),
        }
    }

    /// Revocation from the given files only; never the network.
    pub fn offline(evidence: Evidence) -> Self {
        Self {
            source: Source::Offline(evidence),
            known: TtlCache::new(KNOWN_SIGNERS),
            pool: Pool::sized_to_cores(),
        }
    }

    /// Judges a raw signature over `check.digest`, revocation included as `policy` says.
    pub async fn verify(
        &self,
        check: &SignatureCheck<'_>,
        anchors: &TrustAnchors,
        policy: RevocationPolicy,
    ) -> Result<Verdict, Refusal> {
        let examined = self.examine_cached(check, anchors).await.map_err(|r| *r)?;
        self.revocation(&examined, check.at, policy).await
    }

    /// Judges a CMS SignedData: signer, messageDigest and signature, then everything a raw
    /// signature gets.
    pub async fn verify_cms(
        &self,
        check: &CmsCheck<'_>,
        anchors: &TrustAnchors,
        policy: RevocationPolicy,
    ) -> Result<Verdict, Refusal> {
        let unpacked = unpack(check).map_err(|r| *r)?;
        let raw = SignatureCheck {
            digest: &unpacked.signed_digest,
            signature: &unpacked.signature,
            scheme: unpacked.scheme,
            certificate: &unpacked.certificate,
            chain: &unpacked.chain,
            at: check.at,
        };
        self.verify(&raw, anchors, policy).await
    }

    /// Verification jobs run on the pool so far (path building for signers not yet known).
    pub fn pool_runs(&self) -> u64 {
        self.pool.runs()
    }

    async fn examine_cached(
        &self,
        check: &SignatureCheck<'_>,
        anchors: &TrustAnchors,
    ) -> Result<Examined, Box<Refusal>> {
        let fingerprint: [u8; 32] = Sha256::digest(check.certificate).into();
        let key = (fingerprint, anchors.id);
        let known = self
            .known
            .get(&key)
            .filter(|k| k.not_before <= check.at && check.at <= k.not_after);
        let Some(known) = known else {
            let owned = OwnedCheck::new(check);
            let anchors_owned = anchors.clone();
            let examined = self
                .pool
                .run(move || examine(&owned.check(), &anchors_owned))
                .await?;
            let until = (examined.known.not_after - Utc::now())
                .to_std()
                .unwrap_or_default();
            self.known
                .insert(key, Arc::clone(&examined.known), until.min(KNOWN_FOR));
            return Ok(examined);
        };
        // The same bytes (SHA-256) as a certificate already proven and decoded: one RSA
        // operation with a key a trusted CA certified, cheap enough for the async worker.
        keys::verify_digest(&known.key, check.scheme, check.digest, check.signature)
            .map_err(|e| refuse(Stage::Signature, e, Some(known.identity.clone())))?;
        Ok(Examined { fingerprint, known })
    }

    async fn revocation(
        &self,
        examined: &Examined,
        at: DateTime<Utc>,
        policy: RevocationPolicy,
    ) -> Result<Verdict, Refusal> {
        let subject = Subject {
            leaf: &examined.known.cert,
            issuer: &examined.known.issuer,
        };
        let finding = match (policy, &self.source) {
            (RevocationPolicy::Off, _) => Finding::NotChecked {
                why: "revocation checking is off by policy".into(),
            },
            (_, Source::Online(online)) => online.check(subject, examined.fingerprint, at).await,
            (_, Source::Offline(evidence)) => evidence::offline(subject, evidence, at, Utc::now()),
        };
        metrics::counter!("kyso_revocation_checks_total", "result" => finding.label()).increment(1);
        let verdict = examined.verdict(&finding);
        let error = match &finding {
            Finding::Revoked { since, reason, .. } => VerifyError::Revoked {
                since: *since,
                reason: reason.clone(),
            },
            Finding::Unknown { .. } | Finding::NotChecked { .. }
                if policy == RevocationPolicy::Require =>
            {
                VerifyError::RevocationUnavailable(finding.detail())
            }
            _ => return Ok(verdict),
        };
        Err(Refusal {
            error,
            verification: verdict.verification,
            identity: Some(Box::new(verdict.identity)),
        })
    }
}

/// Reads a CMS into a raw signature check, reporting an unreadable or mismatched CMS as an
/// invalid signature and a missing signer certificate as untrusted.
pub(crate) fn unpack(check: &CmsCheck<'_>) -> Result<cms::Unpacked, Box<Refusal>> {
    cms::unpack(check.cms, check.content_digest, check.extra_certificates).map_err(|e| {
        let stage = match e {
            VerifyError::UntrustedCertificate(_) => Stage::Certificate,
            _ => Stage::Signature,
        };
        refuse(stage, e, None)
    })
}
