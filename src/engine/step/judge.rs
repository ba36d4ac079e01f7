//! What a step does around the verifier: checks what the provider returned against the digest
//! it was asked to sign, the provider's anchors and revocation policy, and the requested
//! signer; and for `format: "cms"`, prepares the signed attributes before the first `start`
//! and assembles the SignedData once the signature is back.

use base64::prelude::{Engine as _, BASE64_STANDARD};
use chrono::{DateTime, Utc};

use super::{fail, observe, reschedule, retry_later, WorkState};
use crate::domain::{ErrorCode, Format, Session, SignResult};
use crate::engine::registry::ProviderEntry;
use crate::engine::Engine;
use crate::providers::{retry, CertBundle, Failure, ProviderError};
use crate::store::StoreError;
use crate::verify::{self, cms_build, Scheme, SignatureCheck};

/// The hash the provider signs for a CMS session whose attributes are already made.
pub(super) fn cms_attributes_digest(state: &WorkState) -> Option<[u8; 32]> {
    let attributes = BASE64_STANDARD
        .decode(state.cms_attributes.as_deref()?)
        .ok()?;
    Some(cms_build::signed_attributes_digest(&attributes))
}

/// First step of a CMS session: learn the signing certificate, build the signed attributes
/// and store them. The step ends there and the session is due again at once, so the stored
/// attributes are what every `start` (and every instance, after a restart) sends.
pub(super) async fn prepare_cms(
    engine: &Engine,
    entry: &ProviderEntry,
    session: &mut Session,
    state: &mut WorkState,
    budget: std::time::Duration,
) -> Result<(), StoreError> {
    let expected = session.status;
    let signer = session.signer.clone();
    let found = retry::with_backoff(budget, || entry.adapter.signing_certificate(&signer)).await;
    observe(entry, "certificate", &found);
    let now = Utc::now();
    let bundle = match found {
        Ok(Some(bundle)) => bundle,
        Ok(None) => {
            let message = format!(
                "format cms needs the signing certificate before signing, and {} cannot say \
                 which of the signer's certificates it will use",
                entry.id
            );
            return fail(
                engine,
                session,
                expected,
                failure(ErrorCode::NoCertificate, message),
                now,
            )
            .await;
        }
        Err(ProviderError::Final(f)) => return fail(engine, session, expected, f, now).await,
        Err(ProviderError::Transient(msg)) => {
            return retry_later(engine, entry, session, expected, state, msg, now).await
        }
    };
    match cms_build::signed_attributes(&session.digest, now, &bundle.certificate) {
        Ok(attributes) => {
            state.cms_attributes = Some(BASE64_STANDARD.encode(attributes));
            state.certificate = Some(bundle);
            state.unreachable = None;
            reschedule(engine, session, expected, now, Some(state)).await
        }
        Err(e) => {
            let f = failure(ErrorCode::UntrustedCertificate, e.to_string());
            fail(engine, session, expected, f, now).await
        }
    }
}

/// Verifies what the provider returned against the digest it was asked to sign (this
/// session's, or for CMS that of the signed attributes), the provider's trust anchors and
/// revocation policy, and the requested signer; for CMS, assembles the SignedData.
pub(super) async fn judge(
    entry: &ProviderEntry,
    session: &Session,
    state: &WorkState,
    signature: &[u8],
    scheme: Scheme,
    bundle: Option<CertBundle>,
    now: DateTime<Utc>,
) -> Result<SignResult, Failure> {
    let mut bundle = bundle.ok_or_else(|| {
        failure(
            ErrorCode::UntrustedCertificate,
            "the provider returned no certificate".into(),
        )
    })?;
    let attributes = match session.format {
        Format::Pkcs1 => None,
        Format::Cms => {
            let attributes = state
                .cms_attributes
                .as_deref()
                .and_then(|a| BASE64_STANDARD.decode(a).ok())
                .ok_or_else(|| {
                    failure(
                        ErrorCode::ProviderError,
                        "the CMS signed attributes were lost".into(),
                    )
                })?;
            // The attributes name the prepared certificate; a signature with any other key
            // would not verify, and a different returned certificate would contradict them.
            if let Some(prepared) = &state.certificate {
                if prepared.certificate != bundle.certificate {
                    return Err(failure(
                        ErrorCode::InvalidSignature,
                        "the provider signed with another certificate than the one the CMS \
                         signed attributes name"
                            .into(),
                    ));
                }
                if bundle.chain.is_empty() {
                    bundle.chain = prepared.chain.clone();
                }
            }
            Some(attributes)
        }
    };
    let signed_digest = match &attributes {
        Some(a) => cms_build::signed_attributes_digest(a),
        None => session.digest,
    };
    let check = SignatureCheck {
        digest: &signed_digest,
        signature,
        scheme,
        certificate: &bundle.certificate,
        chain: &bundle.chain,
        at: now,
    };
    let verdict = accepted(
        entry
            .verifier
            .verify(&check, &entry.anchors, entry.revocation)
            .await,
        session,
    )?;
    let signature = match &attributes {
        Some(a) => cms_build::assemble(a, signature, scheme, &bundle.certificate, &bundle.chain)
            .map_err(|e| failure(ErrorCode::ProviderError, e.to_string()))?,
        None => signature.to_vec(),
    };
    Ok(SignResult {
        format: session.format,
        // For CMS, the algorithm of the signature inside it.
        algorithm: algorithm_name(scheme),
        signature: BASE64_STANDARD.encode(signature),
        certificate: BASE64_STANDARD.encode(&bundle.certificate),
        chain: bundle
            .chain
            .iter()
            .map(|c| BASE64_STANDARD.encode(c))
            .collect(),
        identity: verdict.identity,
        verification: verdict.verification,
    })
}

/// Judges a CMS SignedData the provider assembled itself (an MSSP's PKCS7 answer with signed
/// attributes): its messageDigest must be this session's digest, then the certificate gets
/// everything a raw signature's does. The portal receives that CMS as it came: there is no raw
/// signature over the digest to give instead, so the result says `format: "cms"`.
pub(super) async fn judge_cms(
    entry: &ProviderEntry,
    session: &Session,
    cms: &[u8],
    bundle: Option<CertBundle>,
    now: DateTime<Utc>,
) -> Result<SignResult, Failure> {
    let bundle = bundle.ok_or_else(|| {
        failure(
            ErrorCode::UntrustedCertificate,
            "the provider's CMS carries no certificate".into(),
        )
    })?;
    let extra: Vec<Vec<u8>> = std::iter::once(bundle.certificate.clone())
        .chain(bundle.chain.iter().cloned())
        .collect();
    let check = verify::CmsCheck {
        cms,
        content_digest: &session.digest,
        extra_certificates: &extra,
        at: now,
    };
    let verdict = accepted(
        entry
            .verifier
            .verify_cms(&check, &entry.anchors, entry.revocation)
            .await,
        session,
    )?;
    let scheme = verify::unpack_cms(&check).map_or(Scheme::Pkcs1v15, |u| u.scheme);
    Ok(SignResult {
        format: Format::Cms,
        algorithm: algorithm_name(scheme),
        signature: BASE64_STANDARD.encode(cms),
        certificate: BASE64_STANDARD.encode(&bundle.certificate),
        chain: bundle
            .chain
            .iter()
            .map(|c| BASE64_STANDARD.encode(c))
            .collect(),
        identity: verdict.identity,
        verification: verdict.verification,
    })
}

/// The result's `algorithm`: for a CMS, the algorithm of the signature inside it.
fn algorithm_name(scheme: Scheme) -> String {
    match scheme {
        Scheme::Pkcs1v15 => "sha256WithRSAEncryption".into(),
        Scheme::PssSha256 => "rsassaPss-sha256".into(),
    }
}

/// The verifier's answer as the session's: a refusal becomes its failure code, and the
/// certificate must name the signer the portal asked for.
fn accepted(
    verdict: Result<verify::Verdict, verify::Refusal>,
    session: &Session,
) -> Result<verify::Verdict, Failure> {
    let verdict =
        verdict.map_err(|r| failure(ErrorCode::from_verdict(r.code()), r.error.to_string()))?;
    if !verify::signer_matches(&verdict.identity, &session.signer) {
        return Err(failure(
            ErrorCode::SignerMismatch,
            "the certificate does not belong to the requested signer".into(),
        ));
    }
    Ok(verdict)
}

/// A failure the gateway itself found (no provider code).
fn failure(code: ErrorCode, message: String) -> Failure {
    Failure {
        code,
        provider_code: None,
        message,
    }
}
