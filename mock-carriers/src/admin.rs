//! The JSON admin API the virtual phone page and the tests drive: list requests, approve or
//! reject one, and counters proving how many phone prompts each transaction caused; plus
//! `/healthz`. Errors are `{"error": {"code", "message"}}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::behaviour::Behaviour;
use crate::http::json_body;
use crate::requests::{DecideError, Decision, RequestStatus, SignRequest, Stats};
use crate::state::Shared;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/admin/requests", get(list))
        .route("/admin/requests/{id}", get(show))
        .route("/admin/requests/{id}/approve", post(approve))
        .route("/admin/requests/{id}/reject", post(reject))
        .route("/admin/stats", get(stats))
        .route("/admin/calls/{signer}", get(calls))
}

/// A request as the admin API shows it.
#[derive(Debug, Serialize)]
pub struct RequestView {
    pub id: String,
    pub provider: &'static str,
    pub signer: String,
    pub transaction_id: String,
    pub tran_code: String,
    pub display_text: String,
    pub documents: Vec<DocumentView>,
    pub behaviour: Behaviour,
    pub status: RequestStatus,
    pub created_at: String,
    pub completed_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DocumentView {
    pub doc_id: String,
    /// Lowercase hex SHA-256.
    pub digest: String,
}

impl From<&SignRequest> for RequestView {
    fn from(r: &SignRequest) -> Self {
        let ts = |t: &chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        Self {
            id: r.id.clone(),
            provider: r.provider.id(),
            signer: r.signer.clone(),
            transaction_id: r.transaction_id.clone(),
            tran_code: r.tran_code.clone(),
            display_text: r.display_text.clone(),
            documents: r
                .documents
                .iter()
                .map(|d| DocumentView {
                    doc_id: d.doc_id.clone(),
                    digest: hex::encode(d.digest),
                })
                .collect(),
            behaviour: r.behaviour,
            status: r.status,
            created_at: ts(&r.created_at),
            completed_at: r.completed_at.as_ref().map(ts),
        }
    }
}

fn api_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message.into() } });
    (status, Json(body)).into_response()
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    signer: Option<String>,
    status: Option<String>,
}

fn parse_status(raw: &str) -> Option<Option<RequestStatus>> {
    match raw {
        "" | "all" => Some(None),
        "pending" => Some(Some(RequestStatus::Pending)),
        "signed" => Some(Some(RequestStatus::Signed)),
        "rejected" => Some(Some(RequestStatus::Rejected)),
        "expired" => Some(Some(RequestStatus::Expired)),
        _ => None,
    }
}

/// `GET /admin/requests?signer=…&status=pending|signed|rejected|expired|all` → `{"requests": [...]}`,
/// newest first.
async fn list(State(shared): State<Arc<Shared>>, Query(q): Query<ListQuery>) -> Response {
    let Some(status) = parse_status(q.status.as_deref().unwrap_or("")) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_status",
            "status must be pending, signed, rejected, expired or all",
        );
    };
    shared.settle();
    let rows: Vec<RequestView> = shared
        .store
        .list(q.signer.as_deref(), status)
        .iter()
        .map(RequestView::from)
        .collect();
    Json(serde_json::json!({ "requests": rows })).into_response()
}

/// `GET /admin/requests/{id}` — by the mock's id, the provider's code or the caller's
/// transaction id.
async fn show(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    shared.settle();
    match shared.store.find(&id) {
        Some(req) => Json(RequestView::from(&req)).into_response(),
        None => api_error(StatusCode::NOT_FOUND, "not_found", "no such request"),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ApproveBody {
    pin: Option<String>,
}

/// `POST /admin/requests/{id}/approve` with an optional `{"pin": "1234"}` (4–8 digits; the
/// mock accepts any such PIN).
async fn approve(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body: ApproveBody = match json_body(body) {
        Ok(b) => b,
        Err(e) => return api_error(e.status(), "invalid_body", e.to_string()),
    };
    if let Some(pin) = body.pin.as_deref() {
        let digits = pin.bytes().all(|b| b.is_ascii_digit());
        if !digits || !(4..=8).contains(&pin.len()) {
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_pin",
                "the PIN is 4 to 8 digits",
            );
        }
    }
    decide(&shared, &id, Decision::Approve)
}

/// `POST /admin/requests/{id}/reject` — the user refuses.
async fn reject(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    decide(&shared, &id, Decision::Reject)
}

fn decide(shared: &Shared, id: &str, decision: Decision) -> Response {
    shared.settle();
    match shared.store.decide(id, decision) {
        Ok(req) => {
            tracing::info!(id = %req.id, transaction_id = %req.transaction_id, ?decision, "decided on the virtual phone");
            shared.announce(&req);
            Json(RequestView::from(&req)).into_response()
        }
        Err(DecideError::NotFound) => {
            api_error(StatusCode::NOT_FOUND, "not_found", "no such request")
        }
        Err(e @ DecideError::NotPending(_)) => {
            api_error(StatusCode::CONFLICT, "not_pending", e.to_string())
        }
    }
}

/// `GET /admin/stats` body: the request counters plus the key pool's.
#[derive(Debug, Serialize)]
struct StatsView {
    #[serde(flatten)]
    requests: Stats,
    /// RSA keys generated for signers since start (never more than `key_pool_size`).
    keys_generated: u64,
    key_pool_size: usize,
    /// OCSP requests and CRL downloads served since start.
    ocsp_requests: u64,
    crl_requests: u64,
    /// Pushes (webhooks, MSSP notifications) taken to be sent, and those the receiver has
    /// answered, whatever it said.
    pushes_sent: u64,
    pushes_answered: u64,
}

/// `GET /admin/stats` → `{"sign_requests": {"<transaction_id>": calls}, "total": calls,
/// "prompts": prompts created, "pending": pending now, "keys_generated": n,
/// "key_pool_size": n, "ocsp_requests": n, "crl_requests": n,
/// "pushes_sent": n, "pushes_answered": n}`.
async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    shared.settle();
    let pool = shared.pki.key_pool();
    let (ocsp_requests, crl_requests) = shared.fetches.counts();
    let (pushes_sent, pushes_answered) = shared.webhooks.counts();
    Json(StatsView {
        requests: shared.store.stats(),
        keys_generated: pool.generated(),
        key_pool_size: pool.size(),
        ocsp_requests,
        crl_requests,
        pushes_sent,
        pushes_answered,
    })
    .into_response()
}

/// `GET /admin/calls/{signer}` → `{"certificates": n, "sign": n, "status": n, "receipt": n}`:
/// the calls of each kind that arrived for the signer (counted before any fault or delay), so
/// a test can tell that no request reached the phone.
async fn calls(State(shared): State<Arc<Shared>>, Path(signer): Path<String>) -> Response {
    Json(shared.faults.calls(&signer)).into_response()
}
