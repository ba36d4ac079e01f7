//! `POST /callbacks/{provider_id}`: pushes from providers. A push is untrusted: it only makes
//! the named session due now, and the engine asks the provider itself. Unknown or finished
//! sessions and duplicates answer 200 and change nothing (nor write anything). Each provider's
//! pushes are bounded by `callback_rate_per_s`; past it they answer 429 (or the provider's
//! receipt, where its protocol expects one) and do nothing. `kyso_callbacks_total` counts them
//! by provider and result: unauthenticated, malformed, rate_limited, ignored, coalesced, woken.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::error::ApiError;
use super::extract::PathParams;
use super::AppState;
use crate::domain::SessionId;
use crate::engine::Pushed;

const MAX_CALLBACK_BYTES: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/callbacks/{provider}", post(callback))
        .layer(DefaultBodyLimit::max(MAX_CALLBACK_BYTES))
}

/// A provider push (SmartCA webhook, MSSP notification, …).
#[utoipa::path(post, path = "/callbacks/{provider}", params(("provider" = String, Path)),
    request_body(content = Object, description = "the provider's own push format"),
    responses((status = 200), (status = 400), (status = 401, description = "the provider's configured callback authentication failed"), (status = 404), (status = 413)))]
pub async fn callback(
    State(app): State<AppState>,
    PathParams(provider): PathParams<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|_| ApiError::TooLarge)?;
    let entry = app
        .engine
        .providers
        .get(&provider)
        .ok_or(ApiError::NotFound)?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if !entry.callback_auth.verify(header, &body) {
        metrics::counter!("kyso_callbacks_total", "provider" => provider.clone(), "result" => "unauthenticated").increment(1);
        return Err(ApiError::Unauthorized);
    }
    let answer = entry.adapter.handle_callback(&body).map_err(|e| {
        metrics::counter!("kyso_callbacks_total", "provider" => provider.clone(), "result" => "malformed").increment(1);
        ApiError::bad_request("invalid_callback", e.to_string())
    })?;
    let result = if entry.callback_rate.try_take() {
        let mut pushed = Pushed::Missing;
        for hint in answer.hints {
            let Some(id) = SessionId::from_transaction_id(&hint.transaction_id) else {
                continue;
            };
            pushed = pushed.max(app.engine.push(&id, &provider).await?);
        }
        match pushed {
            Pushed::Woken => "woken",
            Pushed::Coalesced => "coalesced",
            Pushed::Missing => "ignored",
        }
    } else {
        "rate_limited"
    };
    metrics::counter!("kyso_callbacks_total", "provider" => provider, "result" => result)
        .increment(1);
    // Past the provider's push rate nothing was done (the session is polled anyway): 429,
    // unless the protocol expects its receipt whatever happens.
    if result == "rate_limited" && answer.reply.is_none() {
        return Err(ApiError::RateLimited);
    }
    // Some providers expect their own acknowledgement (an MSSP: a SOAP receipt).
    Ok(match answer.reply {
        Some(reply) => ([(CONTENT_TYPE, reply.content_type)], reply.body).into_response(),
        None => Json(json!({ "received": true })).into_response(),
    })
}
