//! Which of a signer's VNPT SmartCA certificates `start` signs with, and why none when none
//! is usable.

use std::cmp::Reverse;

use chrono::{DateTime, Utc};

use super::wire::{self, CertStatus, UserCertificate};
use crate::domain::ErrorCode;
use crate::providers::{CertBundle, Failure};

/// The certificate `start` signs with.
#[derive(Debug)]
pub(super) struct Chosen {
    pub serial: String,
    pub bundle: CertBundle,
}

/// Picks the certificate to sign with among the usable ones (not locked, revoked or expired,
/// valid now): known-active before unknown status, a personal SMARTCA before an ESEAL, then
/// the one that lasts longest. With nothing usable, the failure names the strongest reason.
pub(super) fn choose_certificate(
    certs: &[UserCertificate],
    now: DateTime<Utc>,
) -> Result<Chosen, Failure> {
    let mut best: Option<(Rank, Chosen)> = None;
    let mut refusal = Failure {
        code: ErrorCode::NoCertificate,
        provider_code: None,
        message: "the signer has no usable VNPT SmartCA certificate".into(),
    };
    for cert in certs {
        let serial = cert.serial_number.clone().filter(|s| !s.is_empty());
        let (Some(serial), Some(bundle)) = (serial, cert.bundle()) else {
            continue;
        };
        let raw = cert.cert_status.as_deref();
        let status = raw.map_or(CertStatus::Unknown, wire::normalise_cert_status);
        let validity = cert.validity(&bundle.certificate);
        let expired = validity.is_some_and(|(_, to)| now > to);
        let not_yet = validity.is_some_and(|(from, _)| now < from);
        let reason = match status.refusal() {
            Some(code) => Some((code, raw.map(str::to_owned))),
            None if expired => Some((ErrorCode::CertificateExpired, None)),
            None if not_yet => Some((ErrorCode::NoCertificate, None)),
            None => None,
        };
        if let Some((code, provider_code)) = reason {
            if weight(code) > weight(refusal.code) {
                let message =
                    format!("the signer's VNPT SmartCA certificate is unusable ({code:?})");
                refusal = Failure {
                    code,
                    provider_code,
                    message,
                };
            }
            continue;
        }
        let service = match cert.service_type.as_deref().map(str::trim) {
            Some(s) if s.eq_ignore_ascii_case(wire::SERVICE_PERSON) => 0,
            Some(s) if s.eq_ignore_ascii_case(wire::SERVICE_SEAL) => 1,
            _ => 2,
        };
        let rank = (
            status != CertStatus::Active,
            service,
            Reverse(validity.map(|v| v.1)),
        );
        if best.as_ref().is_none_or(|(r, _)| rank < *r) {
            best = Some((rank, Chosen { serial, bundle }));
        }
    }
    best.map(|(_, chosen)| chosen).ok_or(refusal)
}

/// Smaller is better: known-active first, then the service, then the later expiry.
type Rank = (bool, u8, Reverse<Option<DateTime<Utc>>>);

/// A locked account is what the user can act on, so it wins over the other refusals.
fn weight(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::PinBlocked => 3,
        ErrorCode::RevokedCertificate => 2,
        ErrorCode::CertificateExpired => 1,
        _ => 0,
    }
}
