//! Per-certificate rules that do not need another certificate: validity at the signing time,
//! the extensions kyso understands (key usage, extended key usage through [`super::eku`],
//! basic constraints) and refusing critical extensions it does not, since ignoring one (say,
//! name constraints) would widen trust.

use chrono::{DateTime, Utc};
use der::asn1::ObjectIdentifier;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::time::Time;
use x509_cert::Certificate;

use super::extensions::extension;
use super::{eku, VerifyError};

const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

/// Critical extensions that are safe to accept: either checked here (extended key usage in
/// [`eku`]), or (policies, alternative names) only ever narrowing what the certificate may be
/// used for.
const UNDERSTOOD_CRITICAL: &[ObjectIdentifier] = &[
    KEY_USAGE,
    BASIC_CONSTRAINTS,
    ObjectIdentifier::new_unwrap("2.5.29.37"), // extKeyUsage
    ObjectIdentifier::new_unwrap("2.5.29.32"), // certificatePolicies
    ObjectIdentifier::new_unwrap("2.5.29.17"), // subjectAltName
    ObjectIdentifier::new_unwrap("2.5.29.14"), // subjectKeyIdentifier
    ObjectIdentifier::new_unwrap("2.5.29.35"), // authorityKeyIdentifier
];

pub(crate) fn to_utc(time: Time) -> Result<DateTime<Utc>, VerifyError> {
    let since_epoch = time.to_unix_duration();
    i64::try_from(since_epoch.as_secs())
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .ok_or_else(|| VerifyError::MalformedCertificate(format!("time {time} out of range")))
}

/// RFC 5280 validity is inclusive at both ends.
pub(crate) fn require_valid_at(cert: &Certificate, at: DateTime<Utc>) -> Result<(), VerifyError> {
    let validity = &cert.tbs_certificate.validity;
    if at < to_utc(validity.not_before)? {
        Err(VerifyError::CertificateNotYetValid)
    } else if at > to_utc(validity.not_after)? {
        Err(VerifyError::CertificateExpired)
    } else {
        Ok(())
    }
}

pub(crate) fn key_usage(cert: &Certificate) -> Result<Option<KeyUsage>, VerifyError> {
    extension(cert, KEY_USAGE)
}

pub(crate) fn basic_constraints(
    cert: &Certificate,
) -> Result<Option<BasicConstraints>, VerifyError> {
    extension(cert, BASIC_CONSTRAINTS)
}

/// The signer certificate must say it may sign. A missing key usage extension would
/// technically allow everything, but every CA kyso trusts sets it on signing certificates, so
/// its absence means the certificate was not issued for signing. An extended key usage that
/// excludes signing refuses it too (the table in [`eku`]).
pub(crate) fn require_signing_usage(cert: &Certificate) -> Result<(), VerifyError> {
    match key_usage(cert)? {
        Some(usage) if usage.digital_signature() || usage.non_repudiation() => {
            eku::require_signing_purpose(cert)
        }
        Some(_) => Err(VerifyError::UntrustedCertificate(
            "key usage lacks digitalSignature and nonRepudiation".into(),
        )),
        None => Err(VerifyError::UntrustedCertificate(
            "certificate has no key usage extension".into(),
        )),
    }
}

pub(crate) fn require_understood_extensions(cert: &Certificate) -> Result<(), VerifyError> {
    let unknown = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|ext| ext.critical && !UNDERSTOOD_CRITICAL.contains(&ext.extn_id));
    match unknown {
        Some(ext) => Err(VerifyError::UntrustedCertificate(format!(
            "unsupported critical extension {}",
            ext.extn_id
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use der::Decode;

    use super::*;

    fn cert(der: &[u8]) -> Certificate {
        Certificate::from_der(der).expect("fixture certificate parses")
    }

    #[test]
    fn a_signer_whose_extended_key_usage_excludes_signing_is_refused() {
        let tls_server = cert(include_bytes!("../../tests/fixtures/tls-server.der"));
        let err = require_signing_usage(&tls_server).expect_err("serverAuth only");
        assert_eq!(err.code(), "untrusted_certificate");
        let secure_email = cert(include_bytes!("../../tests/fixtures/secure-email.der"));
        assert!(require_signing_usage(&secure_email).is_ok());
    }

    #[test]
    fn a_signer_without_signing_key_usage_is_refused_whatever_its_extended_key_usage() {
        let enc_only = cert(include_bytes!("../../tests/fixtures/enc-only.der"));
        let err = require_signing_usage(&enc_only).expect_err("keyEncipherment only");
        assert!(err.to_string().contains("key usage lacks"), "{err}");
    }
}
