//! `GET /v1/events` (WebSocket) and `POST /v1/events/tickets` (for browsers, which cannot set
//! an Authorization header on a WebSocket).

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{bearer, query_params, Tenant};
use super::limits;
use super::AppState;
use crate::domain::SessionId;
use crate::events::ws::{pump, Subscription};

/// Client frames are only acks; anything larger is abuse, refused from the frame's header
/// (a message limit alone let a 16 MiB frame be read first).
const MAX_CLIENT_FRAME: usize = 4096;

/// Read buffer per socket (tungstenite allocates 128 KiB up front by default): acks are small.
const READ_BUFFER: usize = 8 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(events))
        .route("/v1/events/tickets", post(ticket))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// Replay every event with a larger `seq` first.
    after: Option<i64>,
    /// Only this session's events.
    session: Option<String>,
    /// A browser ticket from `POST /v1/events/tickets`, instead of the Authorization header.
    #[expect(
        dead_code,
        reason = "read first, by `TicketParam`; listed so the query accepts it"
    )]
    ticket: Option<String>,
}

/// Only the ticket, read before the rest of the query is checked.
#[derive(Deserialize)]
struct TicketParam {
    ticket: Option<String>,
}

/// The tenant's event stream (WebSocket): `{"type":"session.updated","seq":N,"session":{…}}`.
#[utoipa::path(get, path = "/v1/events", params(EventParams),
    responses((status = 101, description = "WebSocket upgrade"), (status = 400), (status = 401),
        (status = 429, description = "the tenant has events.max_sockets_per_tenant sockets open")),
    security(("bearer" = [])))]
pub async fn events(
    State(app): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Authentication comes first: a caller without a key or ticket learns nothing from how
    // the rest of the request is checked.
    let tenant = match bearer(&headers) {
        Some(key) => app.tenants.by_key(key),
        None => match query_params::<TicketParam>(&uri)
            .ok()
            .and_then(|p| p.ticket)
        {
            Some(t) => limits::redeem_ticket(&app, &t)
                .await?
                .and_then(|id| app.tenants.by_id(&id)),
            None => None,
        },
    }
    .ok_or(ApiError::Unauthorized)?;
    let p: EventParams = query_params(&uri)?;
    if p.after.is_some_and(|a| a < 0) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "after must be ≥ 0",
        ));
    }
    let session = match p.session.as_deref() {
        Some(s) => Some(SessionId::parse(s).ok_or_else(|| {
            ApiError::bad_request("invalid_request", "session must be a session id")
        })?),
        None => None,
    };
    let ws = ws.map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!("GET /v1/events is a WebSocket: {}", e.body_text()),
        )
    })?;
    let tenant_id: std::sync::Arc<str> = tenant.config.id.as_str().into();
    let slot = app
        .sockets
        .open(&tenant_id)
        .ok_or_else(|| ApiError::TooMany {
            code: "too_many_sockets",
            message: format!(
                "{} event sockets are open for this tenant, the most allowed; close one first",
                app.sockets.limit()
            ),
        })?;
    let store = app.engine.outbox();
    // Subscribe before the upgrade completes so no event slips between replay and live.
    let live = app.engine.subscribe();
    // A live-only stream starts at the tenant's newest event as of now, read after subscribing
    // and before the client hears the upgrade: every event committed after it connected is
    // sent, even one whose broadcast comes late.
    let after = match p.after {
        Some(after) => after,
        None => store.last_seq(&tenant_id).await?,
    };
    let sub = Subscription {
        tenant: tenant_id,
        after: Some(after),
        session,
        ping_every: Duration::from_secs(app.config.events.ping_interval_s),
        send_timeout: Duration::from_secs(app.config.events.send_timeout_s),
    };
    Ok(ws
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            pump(sink, stream, store, live, sub).await;
            drop(slot);
        }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ticket {
    ticket: String,
    expires_at: DateTime<Utc>,
}

/// A single-use ticket, valid for a minute, to open `/v1/events?ticket=…` from a browser.
/// Counted against the tenant's request rate; a tenant holds at most
/// `events.max_tickets_per_tenant` unredeemed tickets (429 `too_many_tickets` past it).
#[utoipa::path(post, path = "/v1/events/tickets",
    responses((status = 200, body = Ticket), (status = 401), (status = 429)),
    security(("bearer" = [])))]
pub async fn ticket(State(app): State<AppState>, tenant: Tenant) -> Result<Json<Ticket>, ApiError> {
    limits::tenant_rate(&app, &tenant).await?;
    let ticket = limits::issue_ticket(&app, &tenant).await?;
    let ttl = app.tickets.ttl();
    Ok(Json(Ticket {
        ticket,
        expires_at: Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default(),
    }))
}
