//! MSS_StatusQuery, MSS_Receipt, MSS_ProfileQuery and the asynchServerServer notification,
//! plus [`outcome`], the one mapping from a prompt's state to ETSI codes:
//!
//! | prompt | answer |
//! |---|---|
//! | pending | 504 OUTSTANDING_TRANSACTION |
//! | signed | 500 SIGNATURE with the signature; with the signatureValidation service 502 VALID_SIGNATURE, or 501 / 503 for the revoked / bad-signature / expired-certificate rows |
//! | refused | fault 401 USER_CANCEL (status 401 in a notification) |
//! | expired (TimeOut) | fault 208 EXPIRED_TRANSACTION (status 208 in a notification) |

use axum::response::Response;

use super::reply::{profile_detail, signing_certificate_detail, Part, SIGNING_CERTIFICATE_URI};
use super::soap::{Element, Fault};
use super::wire::{self, ApInfo};
use super::{Call, Transaction};
use crate::behaviour::{Behaviour, CallKind};
use crate::requests::{Extra, RequestStatus, SignRequest};
use crate::state::Shared;

/// Where a transaction stands, in ETSI terms.
pub(super) enum Outcome {
    Pending,
    Signed { code: u16, signature: Vec<u8> },
    Failed { code: u16, detail: &'static str },
}

pub(super) fn outcome(req: &SignRequest, tx: &Transaction) -> Outcome {
    match req.status {
        RequestStatus::Pending => Outcome::Pending,
        RequestStatus::Rejected => Outcome::Failed {
            code: 401,
            detail: "the user cancelled the request",
        },
        RequestStatus::Expired => Outcome::Failed {
            code: 208,
            detail: "the user did not answer before TimeOut",
        },
        RequestStatus::Signed => Outcome::Signed {
            code: success_code(req.behaviour, tx.validate),
            signature: req
                .documents
                .first()
                .and_then(|d| d.signature.clone())
                .unwrap_or_default(),
        },
    }
}

/// 500 unless the AP asked the MSSP to validate; a validating MSSP tells what it found.
fn success_code(behaviour: Behaviour, validate: bool) -> u16 {
    if !validate {
        return 500;
    }
    match behaviour {
        Behaviour::RevokedCertificate => 501,
        Behaviour::CorruptSignature | Behaviour::WrongDigest | Behaviour::ExpiredCertificate => 503,
        _ => 502,
    }
}

/// Adds the signature, the profile and the status to a response part.
pub(super) fn with_result(
    part: Part,
    signature: &[u8],
    profile: Option<&str>,
    code: u16,
    detail: Option<&str>,
) -> Part {
    let part = part.signature(signature);
    let part = match profile {
        Some(p) => part.profile(p),
        None => part,
    };
    part.status(code, detail)
}

/// The signingCertificate service answer, when the AP asked for it.
pub(super) async fn certificate_detail(
    shared: &std::sync::Arc<Shared>,
    tx: &Transaction,
) -> Option<String> {
    if !tx.want_certificate {
        return None;
    }
    let provider = tx.provider;
    let cred = shared.credential(provider, &tx.msisdn).await.ok()?;
    let (ca, _) = shared.pki.chain(provider);
    Some(signing_certificate_detail(
        SIGNING_CERTIFICATE_URI,
        &cred.cert_der,
        &ca,
    ))
}

/// The stored transaction with this MSSP_TransID at this carrier.
fn find(call: &Call, id: &str) -> Option<SignRequest> {
    call.shared.settle();
    call.shared
        .store
        .find_for(call.provider, id)
        .filter(|r| r.tran_code == id)
}

/// Common start of status and receipt: faults, header, transaction lookup.
async fn transaction(
    call: &Call,
    part: &Element,
    kind: CallKind,
) -> Result<(ApInfo, Option<String>, SignRequest), Response> {
    let found = part
        .attr("MSSP_TransID")
        .and_then(|id| find(call, id.trim()));
    let msisdn = found
        .as_ref()
        .map(|r| r.signer.clone())
        .or_else(|| wire::msisdn_of(part).and_then(wire::normalise_msisdn));
    if let Some(msisdn) = msisdn {
        if let Some(resp) = call.transport_fault(&msisdn, kind).await {
            return Err(resp);
        }
    }
    let tref = wire::header(part, &call.credentials())
        .and_then(|ap| wire::transaction_ref(part, ap, kind == CallKind::Receipt))
        .map_err(|f| call.fault(f))?;
    // Looked up again: a 5 s fault delay may have let the outcome come due.
    match find(call, &tref.mssp_trans_id) {
        Some(req) => Ok((tref.ap, tref.message, req)),
        None => Err(call.fault(Fault::wrong_param("unknown MSSP_TransID"))),
    }
}

pub(super) async fn status(call: &Call, part: &Element) -> Response {
    let (ap, _, req) = match transaction(call, part, CallKind::Status).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let Extra::Mssp(tx) = &req.extra else {
        return call.fault(Fault::wrong_param("unknown MSSP_TransID"));
    };
    let resp = Part::new("MSS_StatusResp", &ap, &call.shape).mobile_user(&tx.msisdn);
    let resp = match outcome(&req, tx) {
        Outcome::Pending => resp.status(504, None),
        Outcome::Failed { code, detail } => return call.fault(Fault::status(code, detail)),
        Outcome::Signed { code, signature } => {
            let detail = certificate_detail(&call.shared, tx).await;
            with_result(resp, &signature, None, code, detail.as_deref())
        }
    };
    call.ok(resp.envelope("MSS_StatusQueryResponse", &call.shape))
}

pub(super) async fn receipt(call: &Call, part: &Element) -> Response {
    let (ap, message, req) = match transaction(call, part, CallKind::Receipt).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    tracing::debug!(mssp_trans_id = %req.tran_code, message = ?message, "receipt shown on the phone");
    let resp = Part::new("MSS_ReceiptResp", &ap, &call.shape).status(100, None);
    call.ok(resp.envelope("MSS_ReceiptResponse", &call.shape))
}

pub(super) async fn profile(call: &Call, part: &Element) -> Response {
    if let Some(msisdn) = wire::msisdn_of(part).and_then(wire::normalise_msisdn) {
        if let Some(resp) = call.transport_fault(&msisdn, CallKind::Certificates).await {
            return resp;
        }
    }
    let checked = wire::header(part, &call.credentials())
        .and_then(|ap| wire::profile_req(part).map(|msisdn| (ap, msisdn)));
    let (ap, msisdn) = match checked {
        Ok(found) => found,
        Err(fault) => return call.fault(fault),
    };
    if Behaviour::for_signer(&msisdn) == Behaviour::NoCertificate {
        return call.fault(Fault::status(
            105,
            "this MSISDN has no mobile signature service",
        ));
    }
    let cred = match call.shared.credential(call.provider, &msisdn).await {
        Ok(cred) => cred,
        Err(e) => {
            tracing::error!(error = %e, "provisioning failed");
            return call.fault(Fault::status(900, "internal error"));
        }
    };
    let detail = profile_detail(&cred.meta.subject.display(), &cred.cert_der);
    let resp = Part::new("MSS_ProfileResp", &ap, &call.shape)
        .profile(wire::PROFILE_URI)
        .status(100, Some(&detail));
    call.ok(resp.envelope("MSS_ProfileQueryResponse", &call.shape))
}

/// The asynchServerServer notification for a finished request: an `MSS_StatusResp` carrying
/// `MSSP_TransID`, wrapped in `MSS_Notification`. Failures travel as their status code.
pub(super) fn notification(shared: &Shared, req: &SignRequest, tx: &Transaction) -> Option<String> {
    let resp = Part::new("MSS_StatusResp", &tx.ap, &tx.shape)
        .attr("MSSP_TransID", &req.tran_code)
        .mobile_user(&tx.msisdn);
    let resp = match outcome(req, tx) {
        Outcome::Pending => return None,
        Outcome::Failed { code, .. } => resp.status(code, None),
        Outcome::Signed { code, signature } => {
            let detail = tx.want_certificate.then(|| {
                let provider = tx.provider;
                let cred = shared.pki.signer(provider, &tx.msisdn).ok()?;
                let (ca, _) = shared.pki.chain(provider);
                Some(signing_certificate_detail(
                    SIGNING_CERTIFICATE_URI,
                    &cred.cert_der,
                    &ca,
                ))
            });
            with_result(resp, &signature, None, code, detail.flatten().as_deref())
        }
    };
    Some(resp.envelope("MSS_Notification", &tx.shape))
}
