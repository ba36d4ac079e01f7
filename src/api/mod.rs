//! The HTTP surface: the portal API under `/v1`, provider callbacks, and operations endpoints.
//! Each resource module exposes `router()`; they are merged here with the shared layers
//! (request id, tracing, body limit).

mod callbacks;
mod challenges;
mod demo;
mod error;
mod events;
pub(crate) mod extract;
mod limits;
mod ops;
mod signatures;
pub(crate) mod verifications;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

use crate::config::Config;
use crate::engine::Engine;
use crate::events::tickets::Tickets;

pub use error::ApiError;
pub use extract::Tenants;
pub use verifications::UsbPath;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub tenants: Arc<Tenants>,
    pub tickets: Arc<Tickets>,
    /// Open event sockets per tenant.
    pub sockets: Arc<crate::events::sockets::Sockets>,
    pub config: Arc<Config>,
    pub metrics: PrometheusHandle,
    /// The USB-token path: its verifier, anchors and challenges.
    pub usb: Arc<UsbPath>,
    /// Whether a background task died (then the instance is not ready).
    pub supervisor: Arc<crate::supervisor::Supervisor>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "kyso", description = "Mobile-signing gateway: the portal API"),
    paths(
        signatures::create, signatures::read, signatures::list, signatures::cancel,
        signatures::certificates, events::events, events::ticket, callbacks::callback,
        verifications::challenge, verifications::verification
    ),
    components(schemas(crate::domain::Session, crate::domain::SignatureInput,
        verifications::VerificationInput, verifications::ChallengeView)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

#[derive(Clone, Default)]
struct UlidRequestId;

impl MakeRequestId for UlidRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        ulid::Ulid::new()
            .to_string()
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let body_limit = state.config.server.body_limit_bytes;
    let demo = state.config.server.demo_page;
    Router::new()
        .merge(signatures::router())
        .merge(events::router())
        .merge(ops::router())
        .merge(verifications::router())
        .layer(DefaultBodyLimit::max(body_limit))
        .merge(callbacks::router())
        .merge(if demo { demo::router() } else { Router::new() })
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The query string is left out: it may carry a browser ticket.
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, UlidRequestId))
}
