//! One step of one session: send it, check it, or end it. A step reads the session as it was
//! when it became due and writes its change only if the status is still the same, so a cancel
//! that lands meanwhile wins.

mod judge;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::registry::observe;
use super::Engine;
use crate::domain::{ErrorCode, Format, Session, SessionError, Status};
use crate::engine::registry::ProviderEntry;
use crate::providers::{
    retry, CertBundle, Failure, Outcome, ProviderError, SignRequest, StatusRequest,
};
use crate::store::{Change, StoreError, Work};
use judge::{cms_attributes_digest, judge, judge_cms, prepare_cms};

/// What the engine keeps about a session between steps (the `work` column).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkState {
    /// The adapter's private state from `start`.
    #[serde(default)]
    pub provider: serde_json::Value,
    /// The certificate `start` named. Stored apart (see [`bundles`](super::bundles)): the
    /// `work` column holds `certificate_ref` instead; rows written before hold it here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertBundle>,
    /// The stored bundle's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_ref: Option<String>,
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
    // At the deadline a session on a phone gets one last status check: an answer given within
    // the last poll interval (or already held, in synch mode) still counts.
    let past_deadline = now >= session.expires_at;
    if past_deadline && expected != Status::AwaitingUser {
        return expire(engine, &mut session, &state, now).await;
    }
    let remaining = match (session.expires_at - now).to_std() {
        Ok(left) => left,
        Err(_) => LAST_CHECK,
    };
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
                verification_code: &session.verification_code,
                display_text: &session.display_text,
                document_name: session.document_name.as_deref(),
                purpose: session.purpose,
                expires_at: session.expires_at,
            };
            let id = &session.id;
            // Held until the step's write: a cancel meanwhile sees what was sent.
            let _stepping = engine.gates.enter(id.as_str());
            let started = retry::with_backoff(budget, || engine.send_start(entry, id, &req)).await;
            let started = match started {
                // A cancel withheld it; the cancel commits the session.
                Ok(None) => return Ok(()),
                Ok(Some(started)) => Ok(started),
                Err(e) => Err(e),
            };
            observe(entry, "start", &started);
            let now = Utc::now();
            match started {
                Ok(started) => {
                    state.provider = started.state;
                    // A CMS session keeps the certificate its signed attributes name.
                    if state.cms_attributes.is_none() {
                        state.certificate = started.certificate;
                        state.certificate_ref = None;
                    }
                    state.unreachable = None;
                    session.become_(Status::AwaitingUser, now);
                    let next = capped(now + started.first_check_in, session.expires_at);
                    if !written(engine, &session, expected, Some(next), &state).await? {
                        engine.start_not_written(&session).await;
                    }
                    Ok(())
                }
                Err(ProviderError::Final(f)) => {
                    fail(engine, &mut session, expected, f, Utc::now()).await
                }
                Err(ProviderError::Transient(msg)) => {
                    // Try again later with the same transaction id.
                    retry_later(engine, entry, &session, expected, &mut state, msg, now).await
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
                Ok(Outcome::Waiting { .. }) if past_deadline => {
                    state.unreachable = None;
                    expire(engine, &mut session, &state, now).await
                }
                Ok(Outcome::Waiting { next_check_in }) => {
                    let next = capped(now + next_check_in, session.expires_at);
                    // The work changes only when the last check had failed.
                    let changed = state.unreachable.take().is_some();
                    reschedule(engine, &session, expected, next, changed.then_some(&state)).await
                }
                Ok(Outcome::Signed {
                    signature,
                    scheme,
                    certificate,
                }) => {
                    // A CMS session's check compares with the certificate it prepared.
                    if certificate.is_none() || session.format == Format::Cms {
                        if let Some(f) = load_certificate(engine, &mut state).await? {
                            return fail(engine, &mut session, expected, f, now).await;
                        }
                    }
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
                Ok(Outcome::SignedCms { cms, certificate }) => {
                    if certificate.is_none() {
                        if let Some(f) = load_certificate(engine, &mut state).await? {
                            return fail(engine, &mut session, expected, f, now).await;
                        }
                    }
                    let bundle = certificate.or_else(|| state.certificate.clone());
                    match judge_cms(entry, &session, &cms, bundle, now).await {
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
                Err(ProviderError::Transient(msg)) if past_deadline => {
                    state.unreachable = Some(msg);
                    expire(engine, &mut session, &state, now).await
                }
                Err(ProviderError::Transient(msg)) => {
                    // Keep waiting: the user may still answer once the provider is back.
                    retry_later(engine, entry, &session, expected, &mut state, msg, now).await
                }
            }
        }
        _ => Ok(()),
    }
}

/// How long the last status check at the deadline may take, retries included.
const LAST_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

async fn expire(
    engine: &Engine,
    session: &mut Session,
    state: &WorkState,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let expected = session.status;
    match &state.unreachable {
        Some(why) => {
            // `why` is the transport's detail (it names the provider's internal URL): it goes
            // to the log, and the session, which portals read, gets a sentence.
            tracing::warn!(session = %session.id, provider = %session.provider, error = %why,
                "provider unreachable until the deadline");
            let f = Failure {
                code: ErrorCode::ProviderUnavailable,
                provider_code: None,
                message: "the provider could not be reached before the deadline".into(),
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
    written(engine, session, expected, next_check_at, state)
        .await
        .map(drop)
}

/// Commits a change; whether it was written (the status was still `expected`).
async fn written(
    engine: &Engine,
    session: &Session,
    expected: Status,
    next_check_at: Option<DateTime<Utc>>,
    state: &WorkState,
) -> Result<bool, StoreError> {
    let held = engine.held(&session.id)?;
    let work = match session.status.is_terminal() {
        true => None,
        false => Some(stored(engine, state).await?),
    };
    engine
        .commit(Change {
            session,
            expected,
            next_check_at,
            work: work.as_deref(),
            lease: Some(&held),
        })
        .await
        .map(|event| event.is_some())
}

/// The provider could not be reached: notes why and checks again after its retry budget (at
/// the deadline the session ends `provider_unavailable`).
async fn retry_later(
    engine: &Engine,
    entry: &ProviderEntry,
    session: &Session,
    expected: Status,
    state: &mut WorkState,
    why: String,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tracing::info!(session = %session.id, provider = %entry.id, error = %why, "provider unreachable; retrying");
    state.unreachable = Some(why);
    let next = capped(now + entry.retry_budget, session.expires_at);
    reschedule(engine, session, expected, next, Some(state)).await
}

/// Moves `session`'s next check without a status change, writing `state` when given.
async fn reschedule(
    engine: &Engine,
    session: &Session,
    expected: Status,
    next: DateTime<Utc>,
    state: Option<&WorkState>,
) -> Result<(), StoreError> {
    let held = engine.held(&session.id)?;
    let work = match state {
        Some(state) => Some(stored(engine, state).await?),
        None => None,
    };
    engine
        .store
        .reschedule(&held, expected, next, work.as_deref())
        .await
        .map(drop)
}

fn capped(t: DateTime<Utc>, deadline: DateTime<Utc>) -> DateTime<Utc> {
    t.min(deadline)
}

/// `state` as the `work` column holds it: its certificate bundle stored apart and named.
async fn stored(engine: &Engine, state: &WorkState) -> Result<String, StoreError> {
    let certificate_ref = match &state.certificate {
        Some(bundle) => Some(engine.bundles.store(&*engine.store, bundle).await?),
        None => state.certificate_ref.clone(),
    };
    let work = StoredWork {
        provider: &state.provider,
        certificate_ref: certificate_ref.as_deref(),
        unreachable: state.unreachable.as_deref(),
        cms_attributes: state.cms_attributes.as_deref(),
    };
    serde_json::to_string(&work).map_err(|e| StoreError::Corrupt(format!("work state: {e}")))
}

/// [`WorkState`] as stored.
#[derive(Serialize)]
struct StoredWork<'a> {
    provider: &'a serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_ref: Option<&'a str>,
    unreachable: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cms_attributes: Option<&'a str>,
}

/// Puts the bundle that `state` names back into it, for the check of a signature. `Ok(Some)`
/// when the bundle cannot be had (not in the store, or not what its name says): the session
/// cannot be checked and ends with that failure, rather than retrying a read that will not
/// change. A database that does not answer is an error: the step is tried again.
async fn load_certificate(
    engine: &Engine,
    state: &mut WorkState,
) -> Result<Option<Failure>, StoreError> {
    if state.certificate.is_some() {
        return Ok(None);
    }
    let Some(digest) = state.certificate_ref.as_deref() else {
        return Ok(None);
    };
    let why = match engine.bundles.get(&*engine.store, digest).await {
        Ok(Some(bundle)) => {
            state.certificate = Some(std::sync::Arc::unwrap_or_clone(bundle));
            return Ok(None);
        }
        Ok(None) => format!("certificate bundle {digest} is not in the database"),
        Err(StoreError::Corrupt(e)) => e,
        Err(e) => return Err(e),
    };
    tracing::error!(error = %why, "a session's stored certificate is lost");
    Ok(Some(Failure {
        code: ErrorCode::UntrustedCertificate,
        provider_code: None,
        message: format!("the certificate the provider named at start is lost: {why}"),
    }))
}
