//! Extended key usage (RFC 5280 §4.2.1.12) of a signer certificate: when the extension is
//! present the certificate may be used only for the purposes it lists, so one issued for TLS
//! servers, code, time stamps or OCSP answers must not pass for a person's or a company's
//! signature. The Vietnamese profiles (protocols/vn-certificates.md) decide signing by key
//! usage (digitalSignature or nonRepudiation); this narrows it, never widens it.
//!
//! The rule, one row per purpose kyso names:
//!
//! | purpose | OID | on a signer certificate |
//! |---|---|---|
//! | (no extendedKeyUsage extension) | — | allowed: key usage alone decides |
//! | anyExtendedKeyUsage | 2.5.29.37.0 | allowed |
//! | emailProtection | 1.3.6.1.5.5.7.3.4 | allowed: S/MIME signing, carried by VN token certificates |
//! | clientAuth | 1.3.6.1.5.5.7.3.2 | allowed: VN token certificates carry it; proving the holder to a relying party is what a login or registration signature does |
//! | documentSigning (RFC 9336) | 1.3.6.1.5.5.7.3.36 | allowed |
//! | Microsoft document signing | 1.3.6.1.4.1.311.10.3.12 | allowed |
//! | Adobe Authentic Documents Trust | 1.2.840.113583.1.1.5 | allowed |
//! | serverAuth | 1.3.6.1.5.5.7.3.1 | refused |
//! | codeSigning | 1.3.6.1.5.5.7.3.3 | refused |
//! | timeStamping | 1.3.6.1.5.5.7.3.8 | refused |
//! | OCSPSigning | 1.3.6.1.5.5.7.3.9 | refused |
//! | any other purpose | | refused |
//!
//! A certificate is refused (`untrusted_certificate`) when it carries the extension and none of
//! its purposes is an allowed one; one allowed purpose next to others (clientAuth with
//! serverAuth) is enough.

use der::asn1::ObjectIdentifier;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::Certificate;

use super::extensions::extension;
use super::VerifyError;

const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");

/// Purposes by OID with the name the refusal prints, and whether they allow signing.
const PURPOSES: &[(ObjectIdentifier, &str, bool)] = &[
    (oid("2.5.29.37.0"), "anyExtendedKeyUsage", true),
    (oid("1.3.6.1.5.5.7.3.4"), "emailProtection", true),
    (oid("1.3.6.1.5.5.7.3.2"), "clientAuth", true),
    (oid("1.3.6.1.5.5.7.3.36"), "documentSigning", true),
    (oid("1.3.6.1.4.1.311.10.3.12"), "msDocumentSigning", true),
    (
        oid("1.2.840.113583.1.1.5"),
        "adobeAuthenticDocumentsTrust",
        true,
    ),
    (oid("1.3.6.1.5.5.7.3.1"), "serverAuth", false),
    (oid("1.3.6.1.5.5.7.3.3"), "codeSigning", false),
    (oid("1.3.6.1.5.5.7.3.8"), "timeStamping", false),
    (oid("1.3.6.1.5.5.7.3.9"), "OCSPSigning", false),
];

/// How many purposes a refusal names: the list comes from the certificate, so it is bounded.
const NAMED_IN_REFUSAL: usize = 4;

const fn oid(dotted: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(dotted)
}

fn allows_signing(purpose: &ObjectIdentifier) -> bool {
    PURPOSES
        .iter()
        .any(|(known, _, allowed)| known == purpose && *allowed)
}

fn name(purpose: &ObjectIdentifier) -> String {
    PURPOSES
        .iter()
        .find(|(known, _, _)| known == purpose)
        .map_or_else(|| purpose.to_string(), |(_, name, _)| (*name).to_owned())
}

/// Refuses a signer certificate whose extended key usage excludes signing (see the table).
pub(crate) fn require_signing_purpose(cert: &Certificate) -> Result<(), VerifyError> {
    match extension::<ExtendedKeyUsage>(cert, EXT_KEY_USAGE)? {
        None => Ok(()),
        Some(ExtendedKeyUsage(purposes)) => judge(&purposes),
    }
}

fn judge(purposes: &[ObjectIdentifier]) -> Result<(), VerifyError> {
    if purposes.iter().any(allows_signing) {
        return Ok(());
    }
    let mut named: Vec<String> = purposes.iter().take(NAMED_IN_REFUSAL).map(name).collect();
    if purposes.len() > NAMED_IN_REFUSAL {
        named.push(format!("{} more", purposes.len() - NAMED_IN_REFUSAL));
    }
    Err(VerifyError::UntrustedCertificate(format!(
        "extended key usage does not allow signing: {}",
        if named.is_empty() {
            "no purpose".to_owned()
        } else {
            named.join(", ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;

    fn cert(der: &[u8]) -> Certificate {
        Certificate::from_der(der).expect("fixture certificate parses")
    }

    fn refusal(purposes: &[&str]) -> Option<String> {
        let purposes: Vec<ObjectIdentifier> = purposes.iter().map(|p| oid(p)).collect();
        judge(&purposes).err().map(|e| e.to_string())
    }

    #[test]
    fn a_certificate_for_tls_servers_only_may_not_sign() {
        let err =
            require_signing_purpose(&cert(include_bytes!("../../tests/fixtures/tls-server.der")))
                .expect_err("serverAuth only");
        assert_eq!(err.code(), "untrusted_certificate");
        assert!(err.to_string().contains("serverAuth"), "{err}");
    }

    #[test]
    fn a_secure_email_certificate_or_one_without_the_extension_may_sign() {
        for der in [
            &include_bytes!("../../tests/fixtures/secure-email.der")[..],
            &include_bytes!("../../tests/fixtures/person.der")[..],
        ] {
            assert!(require_signing_purpose(&cert(der)).is_ok());
        }
    }

    #[test]
    fn every_purpose_that_excludes_signing_is_refused() {
        for purpose in [
            "1.3.6.1.5.5.7.3.1",
            "1.3.6.1.5.5.7.3.3",
            "1.3.6.1.5.5.7.3.8",
            "1.3.6.1.5.5.7.3.9",
            "1.3.6.1.5.5.7.3.5",
            "1.2.3.4.5",
        ] {
            assert!(refusal(&[purpose]).is_some(), "{purpose}");
        }
        assert!(refusal(&["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.3"]).is_some());
        assert!(refusal(&[]).is_some(), "an empty list names no purpose");
    }

    #[test]
    fn every_signing_purpose_is_allowed_alone_or_next_to_others() {
        for purpose in [
            "2.5.29.37.0",
            "1.3.6.1.5.5.7.3.4",
            "1.3.6.1.5.5.7.3.2",
            "1.3.6.1.5.5.7.3.36",
            "1.3.6.1.4.1.311.10.3.12",
            "1.2.840.113583.1.1.5",
        ] {
            assert_eq!(refusal(&[purpose]), None, "{purpose}");
            assert_eq!(refusal(&["1.3.6.1.5.5.7.3.1", purpose]), None, "{purpose}");
        }
    }

    #[test]
    fn a_refusal_names_a_bounded_number_of_purposes() {
        let many: Vec<String> = (1..=50).map(|n| format!("1.2.3.{n}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let message = refusal(&many).expect("refused");
        assert!(message.contains("1.2.3.4, 46 more"), "{message}");
        assert!(!message.contains("1.2.3.5"), "{message}");
    }
}
