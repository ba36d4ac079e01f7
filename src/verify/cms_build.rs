//! Assembling the detached CMS SignedData kyso hands back for `format: "cms"`: first the signed
//! attributes (contentType id-data, messageDigest = the session digest, signingTime, and the
//! ESS signingCertificateV2 that binds the signer's certificate), whose SHA-256 the provider
//! signs; then, with the returned signature, the SignedData with the certificate chain. The
//! certificates go in exactly as the provider sent them, so their fingerprints stay the same.

use chrono::{DateTime, Datelike, Utc};
use der::asn1::ObjectIdentifier;
use der::Encode;
use rsa::pkcs1::RsaPssParams;
use sha2::{Digest, Sha256};

use super::cms::{
    CONTENT_TYPE, DATA, MESSAGE_DIGEST, RSASSA_PSS, RSA_ENCRYPTION, SHA256, SIGNED_DATA,
};
use super::tlv::{self, write, write_all, Walker};
use super::{Scheme, VerifyError};

const SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

fn oid(id: ObjectIdentifier) -> Vec<u8> {
    // An OID constant always encodes; an empty value would only make the CMS unreadable.
    id.to_der().unwrap_or_default()
}

fn bad(why: impl std::fmt::Display) -> VerifyError {
    VerifyError::MalformedCertificate(format!("building the CMS: {why}"))
}

/// The issuer Name and serial INTEGER of a certificate, as encoded in it.
fn issuer_and_serial(certificate: &[u8]) -> Result<(Vec<u8>, Vec<u8>), VerifyError> {
    let cert = tlv::single(certificate).map_err(bad)?;
    let tbs = Walker::new(cert.value)
        .expect(tlv::SEQUENCE, "tbsCertificate")
        .map_err(bad)?;
    let mut w = Walker::new(tbs.value);
    w.optional(tlv::context(0)).map_err(bad)?; // version
    let serial = w.expect(tlv::INTEGER, "serialNumber").map_err(bad)?;
    w.expect(tlv::SEQUENCE, "signature").map_err(bad)?;
    let issuer = w.expect(tlv::SEQUENCE, "issuer").map_err(bad)?;
    Ok((issuer.whole.to_vec(), serial.whole.to_vec()))
}

/// UTCTime through 2049, GeneralizedTime after (RFC 5652 §11.3).
fn time(t: DateTime<Utc>) -> Vec<u8> {
    if (1950..2050).contains(&t.year()) {
        write(
            tlv::UTC_TIME,
            t.format("%y%m%d%H%M%SZ").to_string().as_bytes(),
        )
    } else {
        write(
            tlv::GENERALIZED_TIME,
            t.format("%Y%m%d%H%M%SZ").to_string().as_bytes(),
        )
    }
}

fn attribute(id: ObjectIdentifier, value: &[u8]) -> Vec<u8> {
    write_all(tlv::SEQUENCE, &[&oid(id), &write(tlv::SET, value)])
}

/// DER SET OF: elements in ascending order of their encodings.
fn set_of(mut elements: Vec<Vec<u8>>) -> Vec<u8> {
    elements.sort();
    write(tlv::SET, &elements.concat())
}

/// The signed attributes as a DER SET (tag 0x31): what [`signed_attributes_digest`] hashes
/// and the provider signs. Deterministic for the same inputs, so a retry signs the same bytes.
pub fn signed_attributes(
    content_digest: &[u8; 32],
    signing_time: DateTime<Utc>,
    certificate: &[u8],
) -> Result<Vec<u8>, VerifyError> {
    let (issuer, serial) = issuer_and_serial(certificate)?;
    // ESSCertIDv2 with the default hash (SHA-256, so omitted) and the issuer/serial.
    let general_names = write(tlv::SEQUENCE, &write(tlv::context(4), &issuer));
    let issuer_serial = write_all(tlv::SEQUENCE, &[&general_names, &serial]);
    let cert_hash = write(tlv::OCTET_STRING, &Sha256::digest(certificate));
    let ess_cert_id = write_all(tlv::SEQUENCE, &[&cert_hash, &issuer_serial]);
    let signing_certificate = write(tlv::SEQUENCE, &write(tlv::SEQUENCE, &ess_cert_id));
    Ok(set_of(vec![
        attribute(CONTENT_TYPE, &oid(DATA)),
        attribute(SIGNING_TIME, &time(signing_time)),
        attribute(MESSAGE_DIGEST, &write(tlv::OCTET_STRING, content_digest)),
        attribute(SIGNING_CERTIFICATE_V2, &signing_certificate),
    ]))
}

/// What the provider must sign for a CMS session.
pub fn signed_attributes_digest(signed_attributes: &[u8]) -> [u8; 32] {
    Sha256::digest(signed_attributes).into()
}

/// The detached SignedData, as a DER ContentInfo.
pub fn assemble(
    signed_attributes: &[u8],
    signature: &[u8],
    scheme: Scheme,
    certificate: &[u8],
    chain: &[Vec<u8>],
) -> Result<Vec<u8>, VerifyError> {
    let (issuer, serial) = issuer_and_serial(certificate)?;
    let attrs = tlv::single(signed_attributes).map_err(bad)?;
    if attrs.tag != tlv::SET {
        return Err(bad("signed attributes are not a SET"));
    }
    let sha256 = write(tlv::SEQUENCE, &oid(SHA256));
    let signature_algorithm = match scheme {
        Scheme::Pkcs1v15 => write_all(
            tlv::SEQUENCE,
            &[&oid(RSA_ENCRYPTION), &write(tlv::NULL, &[])],
        ),
        Scheme::PssSha256 => {
            let params = RsaPssParams::new::<Sha256>(32).to_der().map_err(bad)?;
            write_all(tlv::SEQUENCE, &[&oid(RSASSA_PSS), &params])
        }
    };
    let signer_info = write_all(
        tlv::SEQUENCE,
        &[
            &write(tlv::INTEGER, &[1]),
            &write_all(tlv::SEQUENCE, &[&issuer, &serial]),
            &sha256,
            &write(tlv::context(0), attrs.value),
            &signature_algorithm,
            &write(tlv::OCTET_STRING, signature),
        ],
    );
    let mut certificates = vec![certificate.to_vec()];
    for c in chain {
        if !certificates.contains(c) {
            certificates.push(c.clone());
        }
    }
    certificates.sort();
    let signed_data = write_all(
        tlv::SEQUENCE,
        &[
            &write(tlv::INTEGER, &[1]),
            &write(tlv::SET, &sha256),
            &write(tlv::SEQUENCE, &oid(DATA)),
            &write(tlv::context(0), &certificates.concat()),
            &write(tlv::SET, &signer_info),
        ],
    );
    Ok(write_all(
        tlv::SEQUENCE,
        &[&oid(SIGNED_DATA), &write(tlv::context(0), &signed_data)],
    ))
}
