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
use crate::engine::CallbackRefused;

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
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let answer = app
        .engine
        .callback(&provider, header, &body)
        .await
        .map_err(|e| match e {
            CallbackRefused::UnknownProvider => ApiError::NotFound,
            CallbackRefused::Unauthenticated => ApiError::Unauthorized,
            CallbackRefused::Malformed(why) => ApiError::bad_request("invalid_callback", why),
            CallbackRefused::Store(e) => e.into(),
        })?;
    let result = answer.result;
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
