//! The VNPT SmartCA "SP769" front end under `/sca/sp769`: certificate listing, sign (one
//! phone prompt per caller transaction id), status by transaction id or tran_code, and the
//! webhook push. Application outcomes answer HTTP 200 with the code in `status_code` (see
//! [`wire::Answer`]); only transport-level trouble uses other HTTP statuses — 400 for a body
//! that is not JSON, 413 for one over the limit, and the fault rows (500, 503, dropped
//! connection, 5 s delay).

pub mod wire;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;

use crate::behaviour::{Behaviour, CallKind, Fault};
use crate::http::{dropped_connection, json_body};
use crate::pki::{HolderKind, Provider, SignerCredential};
use crate::requests::{Document, NewRequest, RequestStatus, SignRequest, SubmitError};
use crate::state::{signature_for, Shared};
use wire::Answer;

/// Files one sign call may carry.
pub const MAX_SIGN_FILES: usize = 50;
const MAX_ID_LEN: usize = 128;
const MAX_DESC_LEN: usize = 1_000;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/sca/sp769/v1/credentials/get_certificate",
            post(get_certificate),
        )
        .route("/sca/sp769/v1/signatures/sign", post(sign))
        .route(
            "/sca/sp769/v1/signatures/sign/{tran_id}/status",
            post(status),
        )
}

fn answer<T: Serialize>(answer: Answer, data: Option<T>) -> Response {
    (StatusCode::OK, Json(answer.envelope(data))).into_response()
}

fn error(answer_: Answer) -> Response {
    answer::<()>(answer_, None)
}

fn body_error(e: crate::http::BodyError) -> Response {
    let status = e.status();
    let mut resp = error(Answer::BadRequest(e.to_string()));
    *resp.status_mut() = status;
    resp
}

/// Applies the signer's transport fault, if any. `Some` is the answer to send instead.
async fn fault(shared: &Shared, signer: &str, kind: CallKind) -> Option<Response> {
    let (status, answer_) = match shared.faults.before_call(signer, kind)? {
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            return None;
        }
        Fault::DropConnection => return Some(dropped_connection()),
        Fault::InternalError => (StatusCode::INTERNAL_SERVER_ERROR, Answer::InternalError),
        Fault::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, Answer::Unavailable),
    };
    let mut resp = error(answer_);
    *resp.status_mut() = status;
    Some(resp)
}

fn sp_ok(shared: &Shared, sp_id: Option<&str>, sp_password: Option<&str>) -> bool {
    sp_id == Some(shared.smartca_sp_id.as_str())
        && sp_password == Some(shared.smartca_sp_password.as_str())
}

/// Checks user_id's shape (it also names files in the state directory).
fn user_id(raw: Option<&str>) -> Result<&str, Response> {
    match raw.map(str::trim) {
        None | Some("") => Err(error(Answer::BadRequest("user_id is required".into()))),
        Some(id) if !crate::pki::subject::is_valid_signer_id(id) => Err(error(Answer::BadRequest(
            "user_id is not a valid id".into(),
        ))),
        Some(id) => Ok(id),
    }
}

async fn get_certificate(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let req: wire::CertificateRequest = match json_body(body) {
        Ok(req) => req,
        Err(e) => return body_error(e),
    };
    let signer = match user_id(req.user_id.as_deref()) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    if let Some(resp) = fault(&shared, signer, CallKind::Certificates).await {
        return resp;
    }
    if !sp_ok(&shared, req.sp_id.as_deref(), req.sp_password.as_deref()) {
        return error(Answer::SpCredentialInvalid);
    }
    let behaviour = Behaviour::for_signer(signer);
    if behaviour == Behaviour::NoCertificate {
        let list = wire::CertificateList {
            user_certificates: Vec::new(),
        };
        return answer(Answer::Success, Some(list));
    }
    let cred = match shared.credential(Provider::SmartCa, signer).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "provisioning failed");
            return error(Answer::InternalError);
        }
    };
    let mut certs = vec![describe(&shared, &cred, behaviour)];
    if let Some(serial) = req.serial_number.as_deref() {
        certs.retain(|c| same_serial(&c.serial_number, serial));
    }
    let list = wire::CertificateList {
        user_certificates: certs,
    };
    answer(Answer::Success, Some(list))
}

fn describe(
    shared: &Shared,
    cred: &SignerCredential,
    behaviour: Behaviour,
) -> wire::UserCertificate {
    let (ca, root) = shared.pki.chain(Provider::SmartCa);
    let meta = &cred.meta;
    let (service_type, service_name) = match meta.subject.kind {
        HolderKind::Individual => ("SMARTCA", "VNPT SmartCA cá nhân (mock)"),
        HolderKind::Organization => ("ESEAL", "VNPT SmartCA eSeal tổ chức (mock)"),
    };
    let s = &meta.serial_hex;
    let cert_id = match (
        s.get(..8),
        s.get(8..12),
        s.get(12..16),
        s.get(16..20),
        s.get(20..),
    ) {
        (Some(a), Some(b), Some(c), Some(d), Some(e)) => format!("{a}-{b}-{c}-{d}-{e}"),
        _ => s.clone(),
    };
    wire::UserCertificate {
        service_type,
        service_name,
        cert_id,
        cert_status: if behaviour == Behaviour::PinBlocked {
            wire::CERT_STATUS_LOCKED
        } else {
            wire::CERT_STATUS_ACTIVE
        },
        serial_number: meta.serial_hex.clone(),
        cert_subject: meta.subject.display(),
        cert_valid_from: meta
            .not_before
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        cert_valid_to: meta
            .not_after
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        cert_data: B64.encode(&cred.cert_der),
        chain_data: wire::ChainData {
            ca_cert: B64.encode(ca),
            root_cert: Some(B64.encode(root)),
        },
    }
}

/// Serial numbers compare as hex, ignoring case and leading zeros.
fn same_serial(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim().trim_start_matches('0').to_ascii_lowercase();
    norm(a) == norm(b)
}

/// A validated sign call.
struct SignCall {
    transaction_id: String,
    display_text: String,
    files: Vec<(String, [u8; 32])>,
}

fn validate_sign(req: &wire::SignRequest) -> Result<SignCall, Answer> {
    let bad = |why: &str| Answer::BadRequest(why.to_owned());
    let transaction_id = match req.transaction_id.as_deref().map(str::trim) {
        None | Some("") => return Err(bad("transaction_id is required")),
        Some(t) if t.len() > MAX_ID_LEN => return Err(bad("transaction_id is too long")),
        Some(t) => t.to_owned(),
    };
    let display_text = req.transaction_desc.clone().unwrap_or_default();
    if display_text.chars().count() > MAX_DESC_LEN {
        return Err(bad("transaction_desc is too long"));
    }
    let files = match req.sign_files.as_deref() {
        None | Some([]) => return Err(bad("sign_files is required")),
        Some(f) if f.len() > MAX_SIGN_FILES => return Err(bad("too many sign_files")),
        Some(f) => f,
    };
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        if file.sign_type.as_deref() != Some("hash") {
            return Err(bad("sign_type must be \"hash\""));
        }
        let hex_digest = file.data_to_be_signed.as_deref().unwrap_or("");
        let lower_hex = hex_digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let mut digest = [0u8; 32];
        if !lower_hex || hex::decode_to_slice(hex_digest, &mut digest).is_err() {
            return Err(bad(
                "data_to_be_signed must be a lowercase hex SHA-256 digest (64 characters)",
            ));
        }
        let doc_id = file.doc_id.clone().unwrap_or_default();
        if doc_id.len() > MAX_ID_LEN {
            return Err(bad("doc_id is too long"));
        }
        out.push((doc_id, digest));
    }
    Ok(SignCall {
        transaction_id,
        display_text,
        files: out,
    })
}

fn accepted(req: &SignRequest) -> Response {
    let data = wire::SignAccepted {
        transaction_id: req.transaction_id.clone(),
        tran_code: req.tran_code.clone(),
    };
    answer(Answer::WaitingForUser, Some(data))
}

async fn sign(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    let req: wire::SignRequest = match json_body(body) {
        Ok(req) => req,
        Err(e) => return body_error(e),
    };
    let signer = match user_id(req.user_id.as_deref()) {
        Ok(s) => s.to_owned(),
        Err(resp) => return resp,
    };
    if let Some(resp) = fault(&shared, &signer, CallKind::Sign).await {
        return resp;
    }
    if !sp_ok(&shared, req.sp_id.as_deref(), req.sp_password.as_deref()) {
        return error(Answer::SpCredentialInvalid);
    }
    let call = match validate_sign(&req) {
        Ok(call) => call,
        Err(answer_) => return error(answer_),
    };
    let behaviour = Behaviour::for_signer(&signer);
    match behaviour {
        Behaviour::NoCertificate => return error(Answer::CredentialNotFound),
        Behaviour::PinBlocked => return error(Answer::CredentialStatusInvalid),
        _ => {}
    }
    // A repeat of a known transaction needs no key work and never prompts again.
    match shared
        .store
        .repeat(Provider::SmartCa, &call.transaction_id, &signer)
    {
        Some(Ok(existing)) => return accepted(&existing),
        Some(Err(_)) => return error(Answer::DuplicateTransaction),
        None => {}
    }
    let cred = match shared.credential(Provider::SmartCa, &signer).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "provisioning failed");
            return error(Answer::InternalError);
        }
    };
    if let Some(serial) = req
        .serial_number
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        if !same_serial(&cred.meta.serial_hex, serial) {
            return error(Answer::BadRequest(
                "serial_number does not match a certificate of this user".into(),
            ));
        }
    }
    let mut documents = Vec::with_capacity(call.files.len());
    for (doc_id, digest) in &call.files {
        match signature_for(&cred, behaviour.signature_plan(), digest) {
            Ok(sig) => documents.push(Document {
                doc_id: doc_id.clone(),
                digest: *digest,
                signature: Some(sig),
            }),
            Err(e) => {
                tracing::error!(error = %e, "signing failed");
                return error(Answer::InternalError);
            }
        }
    }
    submit(&shared, &signer, call, behaviour, documents)
}

fn submit(
    shared: &Shared,
    signer: &str,
    call: SignCall,
    behaviour: Behaviour,
    documents: Vec<Document>,
) -> Response {
    let new = NewRequest {
        provider: Provider::SmartCa,
        signer: signer.to_owned(),
        transaction_id: call.transaction_id,
        tran_code: new_tran_code(),
        display_text: call.display_text,
        documents,
        behaviour,
    };
    match shared.store.submit(new) {
        Ok((req, created)) => {
            if created {
                tracing::info!(signer, transaction_id = %req.transaction_id, tran_code = %req.tran_code, ?behaviour, "smartca sign request on the phone");
            }
            accepted(&req)
        }
        Err(SubmitError::Conflict) => error(Answer::DuplicateTransaction),
        Err(SubmitError::Full) => {
            let mut resp = error(Answer::Unavailable);
            *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            resp
        }
    }
}

/// A UUID-shaped random code, as VNPT hands out.
fn new_tran_code() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

async fn status(
    State(shared): State<Arc<Shared>>,
    Path(tran_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let creds: wire::StatusRequest = json_body(body).unwrap_or_default();
    shared.settle();
    let Some(req) = shared.store.find_for(Provider::SmartCa, &tran_id) else {
        return error(Answer::TransactionNotFound);
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
        return error(Answer::SpCredentialInvalid);
    }
    // A 5 s fault delay may have let the outcome come due.
    shared.settle();
    let req = shared
        .store
        .find_for(Provider::SmartCa, &tran_id)
        .unwrap_or(req);
    let (answer_, signatures) = outcome(&req);
    let data = wire::SignStatus {
        transaction_id: req.transaction_id.clone(),
        signatures,
    };
    answer(answer_, Some(data))
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

/// Pushes the finished request to the configured webhook URL, if any.
pub(crate) fn announce(shared: &Shared, req: &SignRequest) {
    let url = shared
        .smartca_webhook_url
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let Some(url) = url else { return };
    let (answer_, signed) = outcome(req);
    let (status_code, message) = answer_.code();
    let hook = wire::Webhook {
        sp_id: shared.smartca_sp_id.clone(),
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
