//! OCSP (RFC 6960) without the network: building a request for one certificate, with a nonce,
//! and judging a response. A response counts only when it is signed by the issuing CA itself or
//! by a responder certificate that CA issued for OCSP signing (id-kp-OCSPSigning), names this
//! certificate in a CertID, echoes our nonce when it carries one, and covers the signing time.
//! Nonces are not required back: many CA responders serve pre-signed answers, whose age is then
//! bounded by thisUpdate/nextUpdate like any cached answer.

use super::keys::PublicKey;
use aws_lc_rs::digest;
use chrono::{DateTime, Utc};
use der::asn1::{Null, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use rand::RngCore;
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::ext::Extension;
use x509_cert::Certificate;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    OcspResponseStatus, Request, ResponderId, TbsRequest, Version,
};

use super::certificate::require_valid_at;
use super::extensions::extension;
use super::keys::{public_key, verify_certificate_signature, verify_signed};
use super::revocation::{require_not_future, Answer, Source, Status, Subject};
use super::tlv;

const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
const BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// RFC 8954: at least 16 and at most 32 octets.
const NONCE_LEN: usize = 32;

/// A request ready to POST, and the nonce its answer should echo.
pub(crate) struct Built {
    pub der: Vec<u8>,
    pub nonce: Vec<u8>,
}

/// CertIDs hash with SHA-1, as RFC 5019 responders expect; it only names the certificate, so
/// SHA-1's collision weakness does not matter here (signatures still refuse SHA-1).
pub(crate) fn request(subject: Subject<'_>) -> Result<Built, String> {
    let mut nonce = vec![0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let cert_id = cert_id(subject, SHA1)?;
    let nonce_value = OctetString::new(nonce.clone())
        .and_then(|n| n.to_der())
        .and_then(OctetString::new)
        .map_err(|e| format!("encoding the nonce: {e}"))?;
    let req = OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions: Some(vec![Extension {
                extn_id: NONCE,
                critical: false,
                extn_value: nonce_value,
            }]),
        },
        optional_signature: None,
    };
    let der = req
        .to_der()
        .map_err(|e| format!("encoding the OCSP request: {e}"))?;
    Ok(Built { der, nonce })
}

fn hash(algorithm: ObjectIdentifier, data: &[u8]) -> Result<Vec<u8>, String> {
    let alg = match algorithm {
        SHA1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        SHA256 => &digest::SHA256,
        other => return Err(format!("CertID hash {other} is not supported")),
    };
    Ok(digest::digest(alg, data).as_ref().to_vec())
}

fn cert_id(subject: Subject<'_>, algorithm: ObjectIdentifier) -> Result<CertId, String> {
    let issuer = &subject.issuer.tbs_certificate;
    let name = issuer
        .subject
        .to_der()
        .map_err(|e| format!("encoding the issuer name: {e}"))?;
    let key = issuer
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let octets = |bytes: Vec<u8>| OctetString::new(bytes).map_err(|e| e.to_string());
    Ok(CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: algorithm,
            parameters: Some(Null.into()),
        },
        issuer_name_hash: octets(hash(algorithm, &name)?)?,
        issuer_key_hash: octets(hash(algorithm, key)?)?,
        serial_number: subject.leaf.tbs_certificate.serial_number.clone(),
    })
}

/// Whether a response's CertID names this certificate (hash parameters aside: some
/// responders omit the NULL).
fn names(id: &CertId, subject: Subject<'_>) -> bool {
    let Ok(ours) = cert_id(subject, id.hash_algorithm.oid) else {
        return false;
    };
    id.issuer_name_hash == ours.issuer_name_hash
        && id.issuer_key_hash == ours.issuer_key_hash
        && id.serial_number == ours.serial_number
}

fn time(t: OcspGeneralizedTime) -> Result<DateTime<Utc>, String> {
    let secs = i64::try_from(t.0.to_unix_duration().as_secs()).map_err(|e| e.to_string())?;
    DateTime::from_timestamp(secs, 0).ok_or_else(|| "time out of range".into())
}

/// Judges one DER OCSP response about `subject`. `nonce` is what we sent (none for a
/// response read from a file).
pub(crate) fn judge(
    response: &[u8],
    subject: Subject<'_>,
    nonce: Option<&[u8]>,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Answer, String> {
    let response =
        OcspResponse::from_der(response).map_err(|e| format!("not an OCSP response: {e}"))?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(format!("responder answered {:?}", response.response_status));
    }
    let bytes = response
        .response_bytes
        .ok_or("successful response without a body")?;
    if bytes.response_type != BASIC {
        return Err(format!(
            "response type {} is not basic",
            bytes.response_type
        ));
    }
    let raw = bytes.response.as_bytes();
    let basic =
        BasicOcspResponse::from_der(raw).map_err(|e| format!("malformed basic response: {e}"))?;
    let data = &basic.tbs_response_data;
    let produced_at = time(data.produced_at)?;

    // The signature covers tbsResponseData exactly as the responder encoded it.
    let outer = tlv::single(raw)?;
    let signed = tlv::Walker::new(outer.value).next()?.whole;
    let signature = basic
        .signature
        .as_bytes()
        .ok_or("signature is not a whole number of bytes")?;
    let key = responder_key(&basic, subject, produced_at)?;
    verify_signed(basic.signature_algorithm.oid, signed, signature, &key)
        .map_err(|why| format!("response signature: {why}"))?;

    if let (Some(sent), Some(echoed)) = (nonce, basic.nonce()) {
        if echoed.0.as_bytes() != sent {
            return Err("the response answers another request (nonce differs)".into());
        }
    }
    let single = data
        .responses
        .iter()
        .find(|r| names(&r.cert_id, subject))
        .ok_or("the response does not name this certificate")?;
    let this_update = time(single.this_update)?;
    require_not_future(this_update, now)?;
    let status = match &single.cert_status {
        CertStatus::Good(_) => Status::Good,
        CertStatus::Revoked(info) => Status::Revoked {
            since: time(info.revocation_time)?,
            reason: info.revocation_reason.map(|r| format!("{r:?}")),
        },
        CertStatus::Unknown(_) => Status::Unknown,
    };
    let answer = Answer {
        status,
        source: Source::Ocsp,
        this_update,
        next_update: single.next_update.map(time).transpose()?,
    };
    if !answer.covers(at) {
        return Err(format!(
            "stale: thisUpdate {this_update}, nextUpdate {:?}, signing time {at}",
            answer.next_update
        ));
    }
    Ok(answer)
}

/// The key that must have signed the response: the issuer's own, or that of a delegated
/// responder certificate carried in the response.
fn responder_key(
    basic: &BasicOcspResponse,
    subject: Subject<'_>,
    produced_at: DateTime<Utc>,
) -> Result<PublicKey, String> {
    let issuer = subject.issuer;
    let key_hash = |c: &Certificate| {
        let bits = c
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, bits)
            .as_ref()
            .to_vec()
    };
    let is_responder = |c: &Certificate| match &basic.tbs_response_data.responder_id {
        ResponderId::ByName(name) => c.tbs_certificate.subject == *name,
        ResponderId::ByKey(hash) => hash.as_bytes() == key_hash(c).as_slice(),
    };
    let issuer_key = public_key(issuer).map_err(|e| e.to_string())?;
    if is_responder(issuer) {
        return Ok(issuer_key);
    }
    let mut why = "no certificate of the responder in the response".to_owned();
    for cert in basic.certs.iter().flatten().filter(|c| is_responder(c)) {
        match delegated(cert, issuer, &issuer_key, produced_at) {
            Ok(key) => return Ok(key),
            Err(reason) => why = reason,
        }
    }
    Err(format!("responder not authorised: {why}"))
}

fn delegated(
    cert: &Certificate,
    issuer: &Certificate,
    issuer_key: &PublicKey,
    produced_at: DateTime<Utc>,
) -> Result<PublicKey, String> {
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return Err("responder certificate is from another CA".into());
    }
    verify_certificate_signature(cert, issuer_key)?;
    let eku: Option<ExtendedKeyUsage> =
        extension(cert, EXT_KEY_USAGE).map_err(|e| e.to_string())?;
    if !eku.is_some_and(|eku| eku.0.contains(&KP_OCSP_SIGNING)) {
        return Err("responder certificate lacks id-kp-OCSPSigning".into());
    }
    require_valid_at(cert, produced_at)
        .map_err(|e| format!("responder certificate at producedAt: {e}"))?;
    public_key(cert).map_err(|e| e.to_string())
}
