//! Extractors that turn every way a request can be malformed into a clear [`ApiError`]: the
//! tenant behind a bearer key, JSON bodies (size, syntax, unknown fields), query strings and
//! path parameters. axum's own extractors answer in plain text; these answer in the API's
//! JSON error body.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::AppState;
use crate::config::{hash_api_key, TenantConfig};
use crate::limiter::{KeyedWindow, TokenBucket};

/// Signers tracked per tenant for the per-signer limit.
const MAX_TRACKED_SIGNERS: usize = 200_000;

pub struct TenantEntry {
    pub config: TenantConfig,
    pub rate: TokenBucket,
    /// Requests per signer per minute.
    pub per_signer: KeyedWindow,
    /// On a shared database: tokens this instance took from the tenant's shared bucket and
    /// has not spent yet, and until when it may (see `api::limits`).
    pub leased: std::sync::Mutex<(u32, std::time::Instant)>,
    /// Held while this instance takes a chunk from the shared bucket: requests that find the
    /// lease empty meanwhile wait for that chunk instead of each taking one.
    pub refill: tokio::sync::Mutex<()>,
}

/// Tenants by the SHA-256 of their API key.
#[derive(Default)]
pub struct Tenants {
    by_key_hash: HashMap<String, Arc<TenantEntry>>,
}

impl Tenants {
    pub fn new(configs: &[TenantConfig]) -> Self {
        let by_key_hash = configs
            .iter()
            .map(|t| {
                let entry = TenantEntry {
                    config: t.clone(),
                    rate: TokenBucket::new(t.rate_per_s, t.rate_per_s.saturating_mul(2)),
                    per_signer: KeyedWindow::new(
                        t.signer_requests_per_minute,
                        std::time::Duration::from_secs(60),
                        MAX_TRACKED_SIGNERS,
                    ),
                    leased: std::sync::Mutex::new((0, std::time::Instant::now())),
                    refill: tokio::sync::Mutex::new(()),
                };
                (t.api_key_sha256.clone(), Arc::new(entry))
            })
            .collect();
        Self { by_key_hash }
    }

    pub fn by_key(&self, key: &str) -> Option<Arc<TenantEntry>> {
        self.by_key_hash.get(&hash_api_key(key)).cloned()
    }

    pub fn by_id(&self, id: &str) -> Option<Arc<TenantEntry>> {
        self.by_key_hash
            .values()
            .find(|t| t.config.id == id)
            .cloned()
    }
}

/// The authenticated caller.
pub struct Tenant(pub Arc<TenantEntry>);

impl Tenant {
    pub fn id(&self) -> &str {
        &self.0.config.id
    }
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

impl<S> FromRequestParts<S> for Tenant
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = AppState::from_ref(state);
        let key = bearer(&parts.headers).ok_or(ApiError::Unauthorized)?;
        app.tenants
            .by_key(key)
            .map(Tenant)
            .ok_or(ApiError::Unauthorized)
    }
}

/// A JSON body with errors a portal developer can act on.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::bad_request("malformed_body", e.body_text())
            }
        })?;
        from_json(&bytes).map(JsonBody)
    }
}

/// A query string's parameters; a string that does not fit `T` is a 400 saying why.
pub struct QueryParams<T>(pub T);

/// `uri`'s query string as `T`, or the 400 a [`QueryParams`] extractor answers.
pub fn query_params<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(params)| params)
        .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))
}

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        query_params(&parts.uri).map(QueryParams)
    }
}

/// A route's path parameters; one that does not fit `T` (not UTF-8, say) is a 400.
pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(params)| PathParams(params))
            .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))
    }
}

/// Reads a JSON body as [`JsonBody`] does once it holds the bytes: wrong shapes and unknown
/// fields are `invalid_request`, text that is not JSON is `malformed_json`.
pub(crate) fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => "invalid_request",
            _ => "malformed_json",
        };
        ApiError::bad_request(code, e.to_string())
    })
}
