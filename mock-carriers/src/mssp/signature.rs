//! MSS_Signature: check the request, apply the signer's behaviour (PIN blocked → 402, no key
//! → 404, everything else prompts the phone), make the signature the phone will return
//! (PKCS#1 or CMS), and put one prompt on the phone per (carrier, AP_TransID) — a repeat
//! returns the same MSSP_TransID and never prompts twice, while a second transaction for a
//! MSISDN with a prompt pending gets 406. Then answer by messaging mode: `synch` holds the
//! call until the user answers or TimeOut passes; the asynchronous modes acknowledge at once
//! with 100 REQUEST_OK.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::Response;

use super::reply::Part;
use super::sign_req::{signature_req, Format, Mode, SignatureReq, Tbs};
use super::soap::{Element, Fault};
use super::status::{outcome, with_result, Outcome};
use super::wire;
use super::{cms, Call, Transaction};
use crate::behaviour::{Behaviour, CallKind};
use crate::requests::{Document, Extra, NewRequest, RequestStatus, SignRequest, SubmitError};
use crate::state::signature_for;

/// How long past TimeOut a held synch call waits for the expiry to be applied.
const SYNCH_GRACE: Duration = Duration::from_secs(2);

pub(super) async fn handle(call: &Call, part: &Element) -> Response {
    if let Some(msisdn) = wire::msisdn_of(part).and_then(wire::normalise_msisdn) {
        if let Some(resp) = call.transport_fault(&msisdn, CallKind::Sign).await {
            return resp;
        }
    }
    let req = match wire::header(part, &call.credentials())
        .and_then(|ap| signature_req(part, ap, call.state().strict_vn))
    {
        Ok(req) => req,
        Err(fault) => return call.fault(fault),
    };
    match Behaviour::for_signer(&req.msisdn) {
        Behaviour::PinBlocked => {
            return call.fault(Fault::status(402, "the SIM's signing PIN is blocked"))
        }
        Behaviour::NoCertificate => {
            return call.fault(Fault::status(404, "no signing key on this SIM"))
        }
        _ => {}
    }
    let digest = cms::message_digest(&req.tbs);
    let store = &call.shared.store;
    match store.repeat(call.provider, &req.ap.ap_trans_id, &req.msisdn, None) {
        Some(Ok(existing)) => {
            if existing.documents.first().map(|d| d.digest) != Some(digest) {
                return call.fault(Fault::wrong_param(
                    "AP_TransID was already used for other data to be signed",
                ));
            }
            return answer(call, &req, existing).await;
        }
        Some(Err(_)) => {
            return call.fault(Fault::wrong_param(
                "AP_TransID was already used for another MSISDN",
            ))
        }
        None => {}
    }
    match prompt(call, &req, digest).await {
        Ok(stored) => answer(call, &req, stored).await,
        Err(fault) => call.fault(fault),
    }
}

/// Signs in advance and puts the prompt on the phone.
async fn prompt(call: &Call, req: &SignatureReq, digest: [u8; 32]) -> Result<SignRequest, Fault> {
    let internal = |e: crate::pki::PkiError| {
        tracing::error!(error = %e, "SIM signing failed");
        Fault::status(900, "internal error")
    };
    let cred = call
        .shared
        .credential(call.provider, &req.msisdn)
        .await
        .map_err(internal)?;
    let behaviour = Behaviour::for_signer(&req.msisdn);
    let plan = behaviour.signature_plan();
    let (signature, label) = match (req.format, &req.tbs) {
        (Format::Pkcs1, Tbs::Digest(d)) => {
            (signature_for(&cred, plan, d).map_err(internal)?, "PKCS1")
        }
        (Format::Pkcs1, Tbs::Content(_)) => {
            return Err(Fault::status(107, "PKCS1 signs a DigestInfo"))
        }
        (Format::Cms, tbs) => {
            let (ca, _) = call.shared.pki.chain(call.provider);
            (
                cms::signed_data(&cred, &ca, tbs, plan).map_err(internal)?,
                "PKCS7",
            )
        }
    };
    let notify_url = match req.mode {
        Mode::AsynchServerServer => {
            let url = req
                .ap
                .ap_url
                .clone()
                .or_else(|| call.state().notification_url(call.provider));
            Some(url.ok_or_else(|| Fault::missing_param("asynchServerServer needs AP_URL"))?)
        }
        _ => None,
    };
    let tx = Transaction {
        provider: call.provider,
        mode: req.mode,
        format: req.format,
        ap: req.ap.clone(),
        msisdn: req.msisdn.clone(),
        timeout_s: req.timeout_s,
        profile: req.profile.clone(),
        want_certificate: req.want_certificate,
        validate: req.validate,
        notify_url,
        shape: call.shape.clone(),
    };
    let new = NewRequest {
        provider: call.provider,
        signer: req.msisdn.clone(),
        transaction_id: req.ap.ap_trans_id.clone(),
        tran_code: new_mssp_trans_id(),
        display_text: req.display.clone(),
        documents: vec![Document {
            doc_id: format!("DataToBeSigned ({label})"),
            digest,
            signature: Some(signature),
        }],
        behaviour,
        window: Some(Duration::from_secs(req.timeout_s)),
        exclusive: true,
        extra: Extra::Mssp(Arc::new(tx)),
    };
    match call.shared.store.submit(new) {
        Ok((stored, created)) => {
            if created {
                tracing::info!(carrier = call.provider.id(), msisdn = %req.msisdn, ap_trans_id = %req.ap.ap_trans_id, mssp_trans_id = %stored.tran_code, mode = ?req.mode, ?behaviour, "MSS signature request on the phone");
            }
            Ok(stored)
        }
        Err(SubmitError::Busy) => Err(Fault::status(
            406,
            "a signature request for this MSISDN is already in progress",
        )),
        Err(SubmitError::Conflict) => Err(Fault::wrong_param(
            "AP_TransID was already used for another MSISDN",
        )),
        Err(SubmitError::Full) => {
            Err(Fault::status(900, "the MSSP is overloaded")
                .with_http(StatusCode::SERVICE_UNAVAILABLE))
        }
    }
}

/// The MSSP_TransID: an NCName of 18 characters.
fn new_mssp_trans_id() -> String {
    format!("MT{}", hex::encode(rand::random::<[u8; 8]>()))
}

/// The answer to a (first or repeated) MSS_Signature for `stored`.
async fn answer(call: &Call, req: &SignatureReq, stored: SignRequest) -> Response {
    let Extra::Mssp(tx) = &stored.extra else {
        return call.fault(Fault::status(900, "internal error"));
    };
    let resp = Part::new("MSS_SignatureResp", &req.ap, &call.shape)
        .attr("MSSP_TransID", &stored.tran_code)
        .mobile_user(&tx.msisdn);
    if tx.mode != Mode::Synch {
        let xml = resp
            .profile(&tx.profile)
            .status(100, None)
            .envelope("MSS_SignatureResponse", &call.shape);
        return call.ok(xml);
    }
    let done = match held(call, &stored, tx.timeout_s).await {
        Ok(done) => done,
        Err(fault) => return call.fault(fault),
    };
    match outcome(&done, tx) {
        Outcome::Pending => call.fault(Fault::status(208, "the transaction timed out")),
        Outcome::Failed { code, detail } => call.fault(Fault::status(code, detail)),
        Outcome::Signed { code, signature } => {
            let detail = super::status::certificate_detail(&call.shared, tx).await;
            let xml = with_result(resp, &signature, Some(&tx.profile), code, detail.as_deref())
                .envelope("MSS_SignatureResponse", &call.shape);
            call.ok(xml)
        }
    }
}

/// Holds a synch call until the request leaves `pending` (or TimeOut + grace passes).
async fn held(call: &Call, stored: &SignRequest, timeout_s: u64) -> Result<SignRequest, Fault> {
    let Ok(_slot) = call.state().synch_slots.clone().try_acquire_owned() else {
        return Err(
            Fault::status(900, "too many synchronous requests in progress")
                .with_http(StatusCode::SERVICE_UNAVAILABLE),
        );
    };
    let deadline = Instant::now() + Duration::from_secs(timeout_s) + SYNCH_GRACE;
    loop {
        let waiter = call.state().waiter(&stored.id);
        let notified = waiter.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        call.shared.settle();
        let current = call
            .shared
            .store
            .find(&stored.id)
            .ok_or_else(|| Fault::status(900, "the transaction was lost"))?;
        if current.status != RequestStatus::Pending {
            // Finished before this call waited (a repeat): drop the waiter nobody will wake.
            call.state().wake(&stored.id);
            return Ok(current);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
            call.shared.settle();
            return Ok(call.shared.store.find(&stored.id).unwrap_or(current));
        }
    }
}
