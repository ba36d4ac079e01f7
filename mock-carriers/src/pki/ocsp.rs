//! The OCSP responder's logic (RFC 6960, with RFC 5019's GET form handled by the HTTP layer):
//! parse a DER OCSPRequest, answer each CertID good / revoked / unknown, echo the nonce, and
//! sign the response. Responses are signed **directly by the issuing CA** (responderID byName
//! = the CA's subject, no certificates attached), so a client checks them with the issuer
//! certificate it already has. A CertID whose issuer hashes do not match this CA is `unknown`;
//! a request that does not parse answers `malformedRequest`.

use chrono::{DateTime, Utc};
use x509_cert::der::asn1::{BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString};
use x509_cert::der::{Any, DateTime as DerDateTime, Decode, Encode};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    ResponderId, ResponseData, RevokedInfo, SingleResponse, Version,
};

use super::authority::Authority;
use super::issued::CertState;
use super::PkiError;

/// How long a response is good for (nextUpdate − thisUpdate).
pub const VALIDITY: chrono::Duration = chrono::Duration::hours(1);
/// CertIDs one request may ask about.
const MAX_CERT_IDS: usize = 32;

const NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// The DER OCSPResponse for `request_der`, asked of `ca`; `state` looks a serial up in the
/// CA's issued book.
pub fn respond(
    request_der: &[u8],
    ca: &Authority,
    state: impl Fn(&[u8]) -> CertState,
    now: DateTime<Utc>,
) -> Vec<u8> {
    let answer = match OcspRequest::from_der(request_der) {
        Ok(req)
            if !req.tbs_request.request_list.is_empty()
                && req.tbs_request.request_list.len() <= MAX_CERT_IDS =>
        {
            build(&req, ca, state, now).unwrap_or_else(|e| {
                tracing::error!(error = %e, "OCSP response could not be built");
                OcspResponse::internal_error()
            })
        }
        _ => OcspResponse::malformed_request(),
    };
    encode(&answer)
}

/// A bodiless OCSPResponse with the given status (e.g. `unauthorized` for an unknown CA).
pub fn status_only(status: x509_ocsp::OcspResponseStatus) -> Vec<u8> {
    encode(&OcspResponse {
        response_status: status,
        response_bytes: None,
    })
}

fn encode(answer: &OcspResponse) -> Vec<u8> {
    // A bodiless response always encodes; fall back to its fixed bytes just in case.
    answer
        .to_der()
        .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, 0x02])
}

fn build(
    req: &OcspRequest,
    ca: &Authority,
    state: impl Fn(&[u8]) -> CertState,
    now: DateTime<Utc>,
) -> Result<OcspResponse, PkiError> {
    let der_err = |_| PkiError::Crypto("OCSP structure does not encode");
    let name_der = ca.subject_der()?;
    let this_update = ocsp_time(now)?;
    let next_update = ocsp_time(now + VALIDITY)?;
    let mut responses = Vec::with_capacity(req.tbs_request.request_list.len());
    for single in &req.tbs_request.request_list {
        let cert_id = &single.req_cert;
        let status = if issued_here(cert_id, &name_der, ca.public_key_bits()) {
            state(cert_id.serial_number.as_bytes())
        } else {
            CertState::Unknown
        };
        let cert_status = match status {
            CertState::Good => CertStatus::good(),
            CertState::Unknown => CertStatus::Unknown(Null),
            CertState::Revoked { at } => CertStatus::Revoked(RevokedInfo {
                revocation_time: ocsp_time(at)?,
                revocation_reason: Some(x509_cert::ext::pkix::crl::CrlReason::KeyCompromise),
            }),
        };
        responses.push(SingleResponse {
            cert_id: cert_id.clone(),
            cert_status,
            this_update,
            next_update: Some(next_update),
            single_extensions: None,
        });
    }
    // Echo the nonce extension unchanged, as RFC 8954 asks.
    let nonce: Vec<_> = req
        .tbs_request
        .request_extensions
        .iter()
        .flatten()
        .filter(|ext| ext.extn_id == NONCE)
        .cloned()
        .collect();
    let tbs = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByName(ca.certificate().tbs_certificate.subject.clone()),
        produced_at: this_update,
        responses,
        response_extensions: (!nonce.is_empty()).then_some(nonce),
    };
    let signature = ca.sign_sha256(&tbs.to_der().map_err(der_err)?)?;
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: SHA256_WITH_RSA,
            parameters: Some(Any::from(Null)),
        },
        signature: BitString::from_bytes(&signature).map_err(der_err)?,
        certs: None,
    };
    OcspResponse::successful(basic).map_err(der_err)
}

/// Whether the CertID's issuer hashes are this CA's (under the hash the client chose).
fn issued_here(cert_id: &CertId, name_der: &[u8], key_bits: &[u8]) -> bool {
    let Some(algorithm) = digest_algorithm(&cert_id.hash_algorithm.oid) else {
        return false;
    };
    let hash = |data: &[u8]| aws_lc_rs::digest::digest(algorithm, data);
    let same =
        |ours: aws_lc_rs::digest::Digest, theirs: &OctetString| ours.as_ref() == theirs.as_bytes();
    same(hash(name_der), &cert_id.issuer_name_hash)
        && same(hash(key_bits), &cert_id.issuer_key_hash)
}

fn digest_algorithm(oid: &ObjectIdentifier) -> Option<&'static aws_lc_rs::digest::Algorithm> {
    match *oid {
        SHA1 => Some(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY),
        SHA256 => Some(&aws_lc_rs::digest::SHA256),
        SHA384 => Some(&aws_lc_rs::digest::SHA384),
        SHA512 => Some(&aws_lc_rs::digest::SHA512),
        _ => None,
    }
}

fn ocsp_time(at: DateTime<Utc>) -> Result<OcspGeneralizedTime, PkiError> {
    let secs = u64::try_from(at.timestamp()).map_err(|_| PkiError::Crypto("time before 1970"))?;
    let dt = DerDateTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map_err(|_| PkiError::Crypto("time out of range"))?;
    Ok(OcspGeneralizedTime(GeneralizedTime::from_date_time(dt)))
}
