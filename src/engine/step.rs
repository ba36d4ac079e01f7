//! One step of one session: send it, check it, or end it. A step reads the session as it was
//! when it became due and writes its change only if the status is still the same, so a cancel
//! that lands meanwhile wins.

use base64::prelude::{Engine as _, BASE64_STANDARD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Engine;
use crate::domain::{ErrorCode, Format, Session, SessionError, SignResult, Status};
use crate::providers::registry::ProviderEntry;
use crate::providers::{
    retry, CertBundle, Failure, Outcome, ProviderError, SignRequest, StatusRequest,
};
use crate::store::{Change, StoreError, Work};
use crate::verify::{self, cms_build, Scheme, SignatureCheck};

/// What the engine keeps about a session between steps (the `work` column).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkState {
    /// The adapter's private state from `start`.
    #[serde(default)]
    pub provider: serde_json::Value,
    pub certificate: Option<CertBundle>,
    /// The last check failed for a transport reason; at the deadline this reads as
    /// `provider_unavailable` rather than a user who never answered.
    #[serde(default)]
    pub unreachable: Option<String>,
    /// `format: "cms"`: the signed attributes (base64 of their DER SET) whose hash the
    /// provider signs. Made once, with the signing certificate and signingTime, and stored
    /// before the first `start`, so every retry and every restart signs the same bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cms_attributes: Option<String>,
}

pub(super) async fn run(
    engine: &Engine,
    entry: &ProviderEntry,
    work: Work,
) -> Result<(), StoreError> {
    let mut session = work.session;
    let mut state: WorkState = work
        .work
        .as_deref()
        .and_then(|w| serde_json::from_str(w).ok())
        .unwrap_or_default();
    let expected = session.status;
    let now = Utc::now();
    if now >= session.expires_at {
        return expire(engine, &mut session, &state, now).await;
    }
    let remaining = (session.expires_at - now).to_std().unwrap_or_default();
    let budget = entry.retry_budget.min(remaining);
    let tx = session.id.transaction_id();
    match expected {
        Status::Pending => {
            let digest = match session.format {
                Format::Pkcs1 => session.digest,
                Format::Cms => match cms_attributes_digest(&state) {
                    Some(digest) => digest,
                    None => {
                        return prepare_cms(engine, entry, &mut session, &mut state, budget).await
                    }
                },
            };
            let req = SignRequest {
                transaction_id: &tx,
                signer: &session.signer,
                digest: &digest,
                display_text: &session.display_text,
                document_name: session.document_name.as_deref(),
                purpose: session.purpose,
                expires_at: session.expires_at,
            };
            let started = retry::with_backoff(budget, || entry.adapter.start(&req)).await;
            observe(entry, "start", &started);
            let now = Utc::now();
            match started {
                Ok(started) => {
                    state.provider = started.state;
                    // A CMS session keeps the certificate its signed attributes name.
                    if state.cms_attributes.is_none() {
                        state.certificate = started.certificate;
                    }
                    state.unreachable = None;
                    session.become_(Status::AwaitingUser, now);
                    let next = capped(now + started.first_check_in, session.expires_at);
                    commit(engine, &session, expected, Some(next), &state).await
                }
                Err(ProviderError::Final(f)) => {
                    fail(engine, &mut session, expected, f, Utc::now()).await
                }
                Err(ProviderError::Transient(msg)) => {
                    // Try again later with the same transaction id; at the deadline the
                    // session ends `provider_unavailable`.
                    state.unreachable = Some(msg);
                    let next = capped(Utc::now() + entry.retry_budget, session.expires_at);
                    engine
                        .store
                        .reschedule(&session.id, expected, next, Some(&encode(&state)))
                        .await
                        .map(drop)
                }
            }
        }
        Status::AwaitingUser => {
            let req = StatusRequest {
                transaction_id: &tx,
                signer: &session.signer,
                state: &state.provider,
            };
            let outcome = retry::with_backoff(budget, || entry.adapter.status(&req)).await;
            observe(entry, "status", &outcome);
            let now = Utc::now();
            match outcome {
                Ok(Outcome::Waiting { next_check_in }) => {
                    let next = capped(now + next_check_in, session.expires_at);
                    let work = state.unreachable.take().map(|_| encode(&state));
                    engine
                        .store
                        .reschedule(&session.id, expected, next, work.as_deref())
                        .await
                        .map(drop)
                }
                Ok(Outcome::Signed {
                    signature,
                    scheme,
                    certificate,
                }) => {
                    let bundle = certificate.or_else(|| state.certificate.clone());
                    let judged = judge(entry, &session, &state, &signature, scheme, bundle, now);
                    match judged.await {
                        Ok(result) => {
                            session.result = Some(result);
                            session.become_(Status::Signed, now);
                            commit(engine, &session, expected, None, &state).await
                        }
                        Err(f) => fail(engine, &mut session, expected, f, now).await,
                    }
                }
                Ok(Outcome::Rejected { .. }) => {
                    session.become_(Status::Rejected, now);
                    commit(engine, &session, expected, None, &state).await
                }
                Ok(Outcome::Expired { .. }) => {
                    session.become_(Status::Expired, now);
                    commit(engine, &session, expected, None, &state).await
                }
                Ok(Outcome::Failed(f)) | Err(ProviderError::Final(f)) => {
                    fail(engine, &mut session, expected, f, now).await
                }
                Err(ProviderError::Transient(msg)) => {
                    // Keep waiting: the user may still answer once the provider is back.
                    state.unreachable = Some(msg);
                    let next = capped(now + entry.retry_budget, session.expires_at);
                    engine
                        .store
                        .reschedule(&session.id, expected, next, Some(&encode(&state)))
                        .await
                        .map(drop)
                }
            }
        }
        _ => Ok(()),
    }
}

async fn expire(
    engine: &Engine,
    session: &mut Session,
    state: &WorkState,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let expected = session.status;
    match &state.unreachable {
        Some(msg) => {
            let f = Failure {
                code: ErrorCode::ProviderUnavailable,
                provider_code: None,
                message: format!("the provider could not be reached before the deadline: {msg}"),
            };
            fail(engine, session, expected, f, now).await
        }
        None => {
            session.become_(Status::Expired, now);
            commit(engine, session, expected, None, state).await
        }
    }
}

async fn fail(
    engine: &Engine,
    session: &mut Session,
    expected: Status,
    f: Failure,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    session.fail(
        SessionError {
            code: f.code,
            message: f.message,
            provider_code: f.provider_code,
        },
        now,
    );
    commit(engine, session, expected, None, &WorkState::default()).await
}

async fn commit(
    engine: &Engine,
    session: &Session,
    expected: Status,
    next_check_at: Option<DateTime<Utc>>,
    state: &WorkState,
) -> Result<(), StoreError> {
    let work = (!session.status.is_terminal()).then(|| encode(state));
    engine
        .commit(Change {
            session,
            expected,
            next_check_at,
            work: work.as_deref(),
        })
        .await
        .map(drop)
}

/// The hash the provider signs for a CMS session whose attributes are already made.
fn cms_attributes_digest(state: &WorkState) -> Option<[u8; 32]> {
    let attributes = BASE64_STANDARD
        .decode(state.cms_attributes.as_deref()?)
        .ok()?;
    Some(cms_build::signed_attributes_digest(&attributes))
}

/// First step of a CMS session: learn the signing certificate, build the signed attributes
/// and store them. The step ends there and the session is due again at once, so the stored
/// attributes are what every `start` (and every instance, after a restart) sends.
async fn prepare_cms(
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
    let failure = |code, message: String| Failure {
        code,
        provider_code: None,
        message,
    };
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
            state.unreachable = Some(msg);
            let next = capped(now + entry.retry_budget, session.expires_at);
            let work = encode(state);
            return engine
                .store
                .reschedule(&session.id, expected, next, Some(&work))
                .await
                .map(drop);
        }
    };
    match cms_build::signed_attributes(&session.digest, now, &bundle.certificate) {
        Ok(attributes) => {
            state.cms_attributes = Some(BASE64_STANDARD.encode(attributes));
            state.certificate = Some(bundle);
            state.unreachable = None;
            let work = encode(state);
            engine
                .store
                .reschedule(&session.id, expected, now, Some(&work))
                .await
                .map(drop)
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
async fn judge(
    entry: &ProviderEntry,
    session: &Session,
    state: &WorkState,
    signature: &[u8],
    scheme: Scheme,
    bundle: Option<CertBundle>,
    now: DateTime<Utc>,
) -> Result<SignResult, Failure> {
    let failure = |code, message: String| Failure {
        code,
        provider_code: None,
        message,
    };
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
    let verdict = entry
        .verifier
        .verify(&check, &entry.anchors, entry.revocation)
        .await
        .map_err(|r| failure(ErrorCode::from_verdict(r.code()), r.error.to_string()))?;
    if !verify::signer_matches(&verdict.identity, &session.signer) {
        return Err(failure(
            ErrorCode::SignerMismatch,
            "the certificate does not belong to the requested signer".into(),
        ));
    }
    let signature = match &attributes {
        Some(a) => cms_build::assemble(a, signature, scheme, &bundle.certificate, &bundle.chain)
            .map_err(|e| failure(ErrorCode::ProviderError, e.to_string()))?,
        None => signature.to_vec(),
    };
    Ok(SignResult {
        format: session.format,
        // For CMS, the algorithm of the signature inside it.
        algorithm: match scheme {
            Scheme::Pkcs1v15 => "sha256WithRSAEncryption".into(),
            Scheme::PssSha256 => "rsassaPss-sha256".into(),
        },
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

fn capped(t: DateTime<Utc>, deadline: DateTime<Utc>) -> DateTime<Utc> {
    t.min(deadline)
}

fn encode(state: &WorkState) -> String {
    serde_json::to_string(state).unwrap_or_else(|_| "{}".into())
}

fn observe<T>(entry: &ProviderEntry, op: &'static str, r: &Result<T, ProviderError>) {
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
