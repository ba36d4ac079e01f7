//! `/v1/signatures`: start, read (with long polling), list and cancel sessions, and
//! `/v1/certificates`: a signer's certificates at a remote provider.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::prelude::{Engine as _, BASE64_STANDARD};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::extract::{JsonBody, PathParams, QueryParams, Tenant};
use super::limits;
use super::AppState;
use crate::domain::{
    Limits, NewSignature, RequestError, Session, SessionId, SignatureInput, Status,
};
use crate::engine::{CancelError, CertificatesError};
use crate::providers::ProviderError;
use crate::store::{Created, ListFilter, NewSession, StoreError};
use crate::verify;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/signatures", post(create).get(list))
        .route("/v1/signatures/{id}", get(read).delete(cancel))
        .route("/v1/certificates", get(certificates))
}

const MAX_IDEMPOTENCY_KEY: usize = 128;

/// Start a signature.
#[utoipa::path(post, path = "/v1/signatures", request_body = SignatureInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "same key + same body returns the same session")),
    responses((status = 201, body = Session), (status = 200, body = Session, description = "idempotent replay"),
        (status = 400), (status = 401), (status = 409, description = "signer_busy"), (status = 413), (status = 422), (status = 429)),
    security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    tenant: Tenant,
    headers: HeaderMap,
    JsonBody(input): JsonBody<SignatureInput>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v
                .to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && k.is_ascii());
            Some(
                k.ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_request",
                        "Idempotency-Key must be 1 to 128 ASCII characters",
                    )
                })?
                .to_owned(),
            )
        }
    };
    let terms = app.engine.provider_terms(&input.provider).ok_or_else(|| {
        ApiError::bad_request(
            "unknown_provider",
            format!("provider `{}` is not configured", input.provider),
        )
    })?;
    let limits = Limits {
        signer_rule: terms.signer_rule,
        default_timeout_s: terms.default_timeout_s,
        min_timeout_s: app.config.engine.min_timeout_s,
        max_timeout_s: app.config.engine.max_timeout_s,
    };
    let new = NewSignature::parse(input, &limits).map_err(|e| match e {
        RequestError::Invalid { .. } => ApiError::bad_request("invalid_request", e.to_string()),
    })?;
    let now = Utc::now();
    let session = Session {
        id: SessionId::generate(),
        tenant: tenant.id().to_owned(),
        provider: new.provider,
        signer: new.signer,
        purpose: new.purpose,
        reference: new.reference,
        status: Status::Pending,
        verification_code: new.verification_code,
        digest: new.digest,
        display_text: new.display_text,
        document_name: new.document_name,
        format: new.format,
        created_at: now,
        expires_at: now + chrono::Duration::seconds(i64::from(new.timeout_s)),
        completed_at: None,
        result: None,
        error: None,
    };
    let new = NewSession {
        session: session.clone(),
        idempotency_key,
        request_hash: new.request_hash,
        allow_concurrent: tenant.0.config.allow_concurrent_per_signer,
        lease_until: None,
    };
    // The tenant's rate bounds every request, a replay's read included. A replay is
    // answered before the signer's quota is charged: a portal retrying after a lost answer
    // asks nothing new of the signer.
    limits::tenant_rate(&app, &tenant).await?;
    let created = match app.engine.replay(&new).await? {
        Some(earlier) => earlier,
        None => {
            limits::signer_prompt(&app, &tenant, &new.session.signer).await?;
            let engine = app.engine.clone();
            detached(async move { engine.create(new).await }).await?
        }
    };
    match created {
        Created::New(_) => {
            metrics::counter!("kyso_sessions_created_total", "provider" => session.provider.clone())
                .increment(1);
            tracing::info!(session = %session.id, provider = %session.provider, purpose = ?session.purpose, "session created");
            Ok((StatusCode::CREATED, Json(session)))
        }
        Created::Existing(s) => Ok((StatusCode::OK, Json(*s))),
        Created::IdempotencyMismatch => Err(ApiError::Unprocessable {
            code: "idempotency_mismatch",
            message: "this Idempotency-Key was used with a different request".into(),
        }),
        Created::SignerBusy => Err(ApiError::Conflict {
            code: "signer_busy",
            message: "this signer already has a pending request".into(),
        }),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReadParams {
    /// Seconds to wait for a terminal state (≤ 60).
    wait: Option<u64>,
}

/// Read a session; `?wait=N` long-polls until it is terminal or N seconds pass.
#[utoipa::path(get, path = "/v1/signatures/{id}", params(("id" = String, Path), ReadParams),
    responses((status = 200, body = Session), (status = 401), (status = 404)), security(("bearer" = [])))]
pub async fn read(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(id): PathParams<String>,
    QueryParams(p): QueryParams<ReadParams>,
) -> Result<Json<Session>, ApiError> {
    let id = SessionId::parse(&id).ok_or(ApiError::NotFound)?;
    let wait = p.wait.unwrap_or(0);
    if wait > app.config.server.max_wait_s {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("wait must be at most {}", app.config.server.max_wait_s),
        ));
    }
    let mut rx = app.engine.subscribe();
    let engine = &app.engine;
    let mut session = engine
        .session(tenant.id(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    while !session.status.is_terminal() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => break,
            Ok(Ok(ev)) if ev.session_id != id || !ev.status.is_terminal() => continue,
            Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => {}
            Ok(Err(RecvError::Closed)) => break,
        }
        session = engine
            .session(tenant.id(), &id)
            .await?
            .ok_or(ApiError::NotFound)?;
    }
    Ok(Json(session))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    reference: Option<String>,
    status: Option<Status>,
    /// 1–200, default 50.
    limit: Option<u32>,
    /// Cursor: the `next_before` of the previous page.
    before: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionPage {
    items: Vec<Session>,
    /// Pass as `before` to get the next page; null on the last page.
    next_before: Option<String>,
}

/// List the tenant's sessions, newest first.
#[utoipa::path(get, path = "/v1/signatures", params(ListParams),
    responses((status = 200, body = SessionPage), (status = 400), (status = 401)), security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    tenant: Tenant,
    QueryParams(p): QueryParams<ListParams>,
) -> Result<Json<SessionPage>, ApiError> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "limit must be between 1 and 200",
        ));
    }
    let before = match p.before.as_deref() {
        Some(b) => Some(SessionId::parse(b).ok_or_else(|| {
            ApiError::bad_request("invalid_request", "before must be a session id")
        })?),
        None => None,
    };
    let filter = ListFilter {
        reference: p.reference,
        status: p.status,
        before,
        limit,
    };
    let items = app.engine.sessions(tenant.id(), &filter).await?;
    let next_before = (items.len() == limit as usize)
        .then(|| items.last().map(|s| s.id.to_string()))
        .flatten();
    Ok(Json(SessionPage { items, next_before }))
}

/// Cancel a session that has not ended. A start not yet sent is withheld; one in flight is
/// waited for, and where the provider cannot withdraw the prompt the session says so
/// (`error.code` = `prompt_not_withdrawn`).
#[utoipa::path(delete, path = "/v1/signatures/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Session), (status = 401), (status = 404), (status = 409, description = "already terminal")),
    security(("bearer" = [])))]
pub async fn cancel(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(id): PathParams<String>,
) -> Result<Json<Session>, ApiError> {
    let id = SessionId::parse(&id).ok_or(ApiError::NotFound)?;
    match app.engine.cancel(tenant.id(), &id).await {
        Ok(session) => Ok(Json(session)),
        Err(CancelError::NotFound) => Err(ApiError::NotFound),
        Err(e @ CancelError::AlreadyTerminal(_)) => Err(ApiError::Conflict {
            code: "already_terminal",
            message: e.to_string(),
        }),
        Err(e @ CancelError::Changed) => Err(ApiError::Conflict {
            code: "conflict",
            message: e.to_string(),
        }),
        Err(CancelError::Store(e)) => Err(e.into()),
    }
}

/// Runs a write and what must follow its commit (publishing the event, waking the scheduler)
/// on its own task. A client that goes away mid-request drops the
/// handler's future, but a queued write still commits: its follow-up must not be dropped with
/// the handler.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::spawn(work).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(ApiError::Unexpected(anyhow::anyhow!(
            "write task failed: {e}"
        ))),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CertificateParams {
    provider: String,
    signer: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CertificateView {
    /// base64 DER
    certificate: String,
    chain: Vec<String>,
    #[schema(value_type = Object)]
    identity: verify::Identity,
}

/// The signer's certificates at a remote provider, each with its parsed identity.
#[utoipa::path(get, path = "/v1/certificates", params(CertificateParams),
    responses((status = 200, body = [CertificateView]), (status = 400), (status = 401), (status = 502), (status = 503)),
    security(("bearer" = [])))]
pub async fn certificates(
    State(app): State<AppState>,
    tenant: Tenant,
    QueryParams(p): QueryParams<CertificateParams>,
) -> Result<Json<Vec<CertificateView>>, ApiError> {
    // A provider call like any other: the tenant's rate bounds it, and the engine's breaker,
    // the provider's rate and its in-flight limit.
    limits::tenant_rate(&app, &tenant).await?;
    let bundles = app
        .engine
        .certificates(&p.provider, &p.signer)
        .await
        .map_err(|e| match e {
            CertificatesError::UnknownProvider(_) => {
                ApiError::bad_request("unknown_provider", "provider is not configured")
            }
            CertificatesError::InvalidSigner(why) => ApiError::bad_request("invalid_request", why),
            CertificatesError::RateLimited => ApiError::RateLimited,
            CertificatesError::CircuitOpen | CertificatesError::Busy => {
                ApiError::Unavailable(format!("{e}; try again later"))
            }
            // The transport's detail names the provider's internal URL: the log gets it, the
            // portal a sentence.
            CertificatesError::Provider(ProviderError::Transient(why)) => {
                tracing::warn!(provider = %p.provider, error = %why, "certificates: provider unreachable");
                ApiError::Unavailable("the provider could not be reached; try again later".into())
            }
            CertificatesError::Provider(ProviderError::Final(f)) => ApiError::BadGateway(f.message),
        })?;
    let views = bundles
        .into_iter()
        .filter_map(|b| {
            let identity = verify::parse_identity(&b.certificate).ok()?;
            Some(CertificateView {
                certificate: BASE64_STANDARD.encode(&b.certificate),
                chain: b.chain.iter().map(|c| BASE64_STANDARD.encode(c)).collect(),
                identity,
            })
        })
        .collect();
    Ok(Json(views))
}
