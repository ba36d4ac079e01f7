//! SmartCA status and push: `POST /v1/signatures/sign/{tran_id}/status` (by the caller's
//! transaction id or the tran_code) and the webhook sent, to the URL of the account that asked,
//! when a request finishes. [`outcome`] is the one place a request's state becomes SmartCA
//! codes: waiting → 200 with `signatures` null, signed → 200 with signatures, refused → 4002,
//! expired → 4001.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::wire::{self, Answer};
use super::{account_of, fail, fault, reply, sp_ok};
use crate::behaviour::CallKind;
use crate::http::json_body;
use crate::pki::Provider;
use crate::requests::{RequestStatus, SignRequest};
use crate::state::Shared;

pub(super) async fn status(
    State(shared): State<Arc<Shared>>,
    Path(tran_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let creds: wire::StatusRequest = json_body(body).unwrap_or_default();
    shared.settle();
    let Some(req) = shared.store.find_for(Provider::SmartCa, &tran_id) else {
        return fail(Answer::TransactionNotFound);
    };
    if let Some(resp) = fault(&shared, &req.signer, CallKind::Status).await {
        return resp;
    }
    if (creds.sp_id.is_some() || creds.sp_password.is_some())
        && !sp_ok(
            &shared,
            creds.sp_id.as_deref(),
            creds.sp_password.as_deref(),
        )
    {
        return fail(Answer::SpCredentialInvalid);
    }
    // A 5 s fault delay may have let the outcome come due.
    shared.settle();
    let req = shared
        .store
        .find_for(Provider::SmartCa, &tran_id)
        .unwrap_or(req);
    let (code, signatures) = outcome(&req);
    let data = wire::SignStatus {
        transaction_id: req.transaction_id.clone(),
        signatures,
    };
    reply(code, Some(data))
}

/// The status answer for a request: the one mapping from request state to SmartCA codes.
fn outcome(req: &SignRequest) -> (Answer, Option<Vec<wire::SignedFile>>) {
    match req.status {
        RequestStatus::Pending => (Answer::WaitingForUser, None),
        RequestStatus::Signed => (Answer::Success, Some(signed_files(req))),
        RequestStatus::Rejected => (Answer::SignerRejected, None),
        RequestStatus::Expired => (Answer::TransactionExpired, None),
    }
}

fn signed_files(req: &SignRequest) -> Vec<wire::SignedFile> {
    req.documents
        .iter()
        .map(|d| wire::SignedFile {
            doc_id: d.doc_id.clone(),
            signature_value: d
                .signature
                .as_deref()
                .map(|s| B64.encode(s))
                .unwrap_or_default(),
            timestamp_signature: None,
        })
        .collect()
}

/// Pushes the finished request to the webhook URL of the account that made it, if it has one.
pub(crate) fn announce(shared: &Shared, req: &SignRequest) {
    let sp_id = account_of(shared, req);
    let Some(url) = shared.smartca.webhook_url(sp_id) else {
        return;
    };
    let (code, signed) = outcome(req);
    let (status_code, message) = code.code();
    let hook = wire::Webhook {
        sp_id: sp_id.to_owned(),
        status_code,
        message,
        transaction_id: req.transaction_id.clone(),
        signed_files: signed,
    };
    match serde_json::to_value(&hook) {
        Ok(body) => shared.webhooks.send(url, body),
        Err(e) => tracing::error!(error = %e, "webhook encoding failed"),
    }
}
