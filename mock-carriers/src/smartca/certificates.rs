//! SmartCA certificate listing: `POST /v1/credentials/get_certificate` describes the signer's
//! (provisioned-on-first-use) certificate with its chain, lists it as locked for PIN-blocked
//! signers and not at all for signers without a subscription.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::wire::{self, Answer};
use super::{body_error, fail, fault, reply, sp_ok, user_id};
use crate::behaviour::{Behaviour, CallKind};
use crate::http::json_body;
use crate::pki::{HolderKind, Provider, SignerCredential};
use crate::state::Shared;

pub(super) async fn get_certificate(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let req: wire::CertificateRequest = match json_body(body) {
        Ok(req) => req,
        Err(e) => return body_error(e),
    };
    let signer = match user_id(req.user_id.as_deref()) {
        Ok(s) => s,
        Err(code) => return fail(code),
    };
    if let Some(resp) = fault(&shared, signer, CallKind::Certificates).await {
        return resp;
    }
    if !sp_ok(&shared, req.sp_id.as_deref(), req.sp_password.as_deref()) {
        return fail(Answer::SpCredentialInvalid);
    }
    let behaviour = Behaviour::for_signer(signer);
    if behaviour == Behaviour::NoCertificate {
        let list = wire::CertificateList {
            user_certificates: Vec::new(),
        };
        return reply(Answer::Success, Some(list));
    }
    let cred = match shared.credential(Provider::SmartCa, signer).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "provisioning failed");
            return fail(Answer::InternalError);
        }
    };
    let mut certs = vec![describe(&shared, &cred, behaviour)];
    if let Some(serial) = req.serial_number.as_deref() {
        certs.retain(|c| same_serial(&c.serial_number, serial));
    }
    let list = wire::CertificateList {
        user_certificates: certs,
    };
    reply(Answer::Success, Some(list))
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
pub(super) fn same_serial(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim().trim_start_matches('0').to_ascii_lowercase();
    norm(a) == norm(b)
}
