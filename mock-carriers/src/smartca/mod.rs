//! The VNPT SmartCA "SP769" front end under `/sca/sp769`: certificate listing, sign (one
//! phone prompt per caller transaction id), status by transaction id or tran_code, and the
//! webhook push, each service-provider account with its own credentials and webhook URL
//! ([`accounts`]). Application outcomes answer HTTP 200 with the code in `status_code` (see
//! [`wire::Answer`]); only transport-level trouble uses other HTTP statuses — 400 for a body
//! that is not JSON, 413 for one over the limit, and the fault rows (500, 503, dropped
//! connection, 5 s delay). Sign lives here; `certificates` and `status` hold the other calls.

pub mod accounts;
mod certificates;
mod status;
pub mod wire;

pub(crate) use accounts::Accounts;
pub(crate) use status::announce;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use crate::behaviour::{Behaviour, CallKind, Fault};
use crate::http::{dropped_connection, json_body};
use crate::pki::Provider;
use crate::requests::{Document, Extra, NewRequest, SignRequest, SubmitError};
use crate::state::{signature_for, Shared};
use certificates::same_serial;
use wire::Answer;

/// Files one sign call may carry.
pub const MAX_SIGN_FILES: usize = 50;
const MAX_ID_LEN: usize = 128;
const MAX_DESC_LEN: usize = 1_000;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/sca/sp769/v1/credentials/get_certificate",
            post(certificates::get_certificate),
        )
        .route("/sca/sp769/v1/signatures/sign", post(sign))
        .route(
            "/sca/sp769/v1/signatures/sign/{tran_id}/status",
            post(status::status),
        )
}

fn reply<T: Serialize>(answer: Answer, data: Option<T>) -> Response {
    (StatusCode::OK, Json(answer.envelope(data))).into_response()
}

fn fail(code: Answer) -> Response {
    reply::<()>(code, None)
}

fn body_error(e: crate::http::BodyError) -> Response {
    let status = e.status();
    let mut resp = fail(Answer::BadRequest(e.to_string()));
    *resp.status_mut() = status;
    resp
}

/// Applies the signer's transport fault, if any. `Some` is the answer to send instead.
async fn fault(shared: &Shared, signer: &str, kind: CallKind) -> Option<Response> {
    let (status, code) = match shared.faults.before_call(signer, kind)? {
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            return None;
        }
        Fault::DropConnection => return Some(dropped_connection()),
        Fault::InternalError => (StatusCode::INTERNAL_SERVER_ERROR, Answer::InternalError),
        Fault::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, Answer::Unavailable),
    };
    let mut resp = fail(code);
    *resp.status_mut() = status;
    Some(resp)
}

/// Whether the credentials are those of a registered account (any of them).
fn sp_ok(shared: &Shared, sp_id: Option<&str>, sp_password: Option<&str>) -> bool {
    shared.smartca.authenticate(sp_id, sp_password).is_some()
}

/// The account a SmartCA request was made by (the default one if none was recorded).
fn account_of<'a>(shared: &'a Shared, req: &'a SignRequest) -> &'a str {
    match &req.extra {
        Extra::SmartCa { sp_id } => sp_id,
        _ => shared.smartca.default_sp_id(),
    }
}

/// Checks user_id's shape (it also names files in the state directory).
fn user_id(raw: Option<&str>) -> Result<&str, Answer> {
    match raw.map(str::trim) {
        None | Some("") => Err(Answer::BadRequest("user_id is required".into())),
        Some(id) if !crate::pki::subject::is_valid_signer_id(id) => {
            Err(Answer::BadRequest("user_id is not a valid id".into()))
        }
        Some(id) => Ok(id),
    }
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
    reply(Answer::WaitingForUser, Some(data))
}

async fn sign(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    let req: wire::SignRequest = match json_body(body) {
        Ok(req) => req,
        Err(e) => return body_error(e),
    };
    let signer = match user_id(req.user_id.as_deref()) {
        Ok(s) => s.to_owned(),
        Err(code) => return fail(code),
    };
    if let Some(resp) = fault(&shared, &signer, CallKind::Sign).await {
        return resp;
    }
    let Some(sp_id) = shared
        .smartca
        .authenticate(req.sp_id.as_deref(), req.sp_password.as_deref())
    else {
        return fail(Answer::SpCredentialInvalid);
    };
    let call = match validate_sign(&req) {
        Ok(call) => call,
        Err(code) => return fail(code),
    };
    let behaviour = Behaviour::for_signer(&signer);
    match behaviour {
        Behaviour::NoCertificate => return fail(Answer::CredentialNotFound),
        Behaviour::PinBlocked => return fail(Answer::CredentialStatusInvalid),
        _ => {}
    }
    // A repeat of a known transaction needs no key work and never prompts again; another
    // account's transaction id is not this account's to repeat.
    match shared.store.repeat(
        Provider::SmartCa,
        &call.transaction_id,
        &signer,
        Some(sp_id.as_str()),
    ) {
        Some(Ok(existing)) => return accepted(&existing),
        Some(Err(_)) => return fail(Answer::DuplicateTransaction),
        None => {}
    }
    let cred = match shared.credential(Provider::SmartCa, &signer).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "provisioning failed");
            return fail(Answer::InternalError);
        }
    };
    if let Some(serial) = req
        .serial_number
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        if !same_serial(&cred.meta.serial_hex, serial) {
            return fail(Answer::BadRequest(
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
                return fail(Answer::InternalError);
            }
        }
    }
    submit(&shared, &signer, sp_id, call, behaviour, documents)
}

fn submit(
    shared: &Shared,
    signer: &str,
    sp_id: String,
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
        window: None,
        exclusive: false,
        extra: Extra::SmartCa {
            sp_id: sp_id.clone(),
        },
    };
    match shared.store.submit(new) {
        Ok((req, created)) => {
            if created {
                tracing::info!(signer, %sp_id, transaction_id = %req.transaction_id, tran_code = %req.tran_code, ?behaviour, "smartca sign request on the phone");
            }
            accepted(&req)
        }
        Err(SubmitError::Conflict) => fail(Answer::DuplicateTransaction),
        Err(SubmitError::Full | SubmitError::Busy) => {
            let mut resp = fail(Answer::Unavailable);
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
