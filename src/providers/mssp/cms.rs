//! Reading a PKCS#7/CMS `Base64Signature` (`MSS_Format` PKCS7) just far enough for the engine:
//! the signer certificate with the chain the carrier put in `certificates`, and, when the SIM
//! signed without signed attributes, the raw RSA signature, which is then a plain PKCS#1
//! signature over the session's digest. A SignerInfo with signed attributes signs their hash,
//! not the digest; judging that is the CMS verifier's job, so it is reported as such.

use der::{Decode, Encode};
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::Certificate;

use crate::providers::CertBundle;
use crate::verify::Scheme;

const ID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const ID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const ID_SUBJECT_KEY_IDENTIFIER: &str = "2.5.29.14";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmsError {
    #[error("the CMS signature is not DER SignedData: {0}")]
    Malformed(String),
    #[error("the CMS signature has {0} signers; exactly one is expected")]
    SignerCount(usize),
    #[error("the CMS signature uses {0}, not SHA-256 with RSA")]
    Algorithm(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CmsParts {
    /// The signer's certificate (matched by the SignerInfo's id) and the others as its chain.
    pub certificate: Option<CertBundle>,
    pub signature: CmsSignature,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CmsSignature {
    /// No signed attributes: the signature is over the content's SHA-256, i.e. the digest.
    Raw { signature: Vec<u8>, scheme: Scheme },
    /// Signed attributes present: only a full CMS verifier can judge it.
    SignedAttributes,
}

pub fn parse(der_bytes: &[u8]) -> Result<CmsParts, CmsError> {
    let malformed = |e: der::Error| CmsError::Malformed(e.to_string());
    let info = cms::content_info::ContentInfo::from_der(der_bytes).map_err(malformed)?;
    if info.content_type.to_string() != ID_SIGNED_DATA {
        return Err(CmsError::Malformed(format!(
            "content type {} is not signedData",
            info.content_type
        )));
    }
    let signed: cms::signed_data::SignedData = info.content.decode_as().map_err(malformed)?;
    let signers: Vec<_> = signed.signer_infos.0.iter().collect();
    let [signer] = signers.as_slice() else {
        return Err(CmsError::SignerCount(signers.len()));
    };
    let digest_alg = signer.digest_alg.oid.to_string();
    if digest_alg != ID_SHA256 {
        return Err(CmsError::Algorithm(format!("digest {digest_alg}")));
    }
    let scheme = match signer.signature_algorithm.oid.to_string().as_str() {
        RSA_ENCRYPTION | SHA256_WITH_RSA => Scheme::Pkcs1v15,
        RSASSA_PSS => Scheme::PssSha256,
        other => return Err(CmsError::Algorithm(format!("signature {other}"))),
    };
    let certs: Vec<Certificate> = signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|choice| match choice {
            cms::cert::CertificateChoices::Certificate(c) => Some(c.clone()),
            cms::cert::CertificateChoices::Other(_) => None,
        })
        .collect();
    let leaf = certs.iter().position(|c| identifies(&signer.sid, c));
    let certificate = match leaf {
        Some(i) => {
            let certificate = certs[i].to_der().map_err(malformed)?;
            let chain = certs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, c)| c.to_der())
                .collect::<Result<Vec<_>, _>>()
                .map_err(malformed)?;
            Some(CertBundle { certificate, chain })
        }
        None => None,
    };
    let signature = match &signer.signed_attrs {
        Some(_) => CmsSignature::SignedAttributes,
        None => CmsSignature::Raw {
            signature: signer.signature.as_bytes().to_vec(),
            scheme,
        },
    };
    Ok(CmsParts {
        certificate,
        signature,
    })
}

fn identifies(sid: &cms::signed_data::SignerIdentifier, cert: &Certificate) -> bool {
    use cms::signed_data::SignerIdentifier as Sid;
    let tbs = &cert.tbs_certificate;
    match sid {
        Sid::IssuerAndSerialNumber(isn) => {
            isn.issuer == tbs.issuer && isn.serial_number == tbs.serial_number
        }
        Sid::SubjectKeyIdentifier(ski) => tbs
            .extensions
            .iter()
            .flatten()
            .filter(|e| e.extn_id.to_string() == ID_SUBJECT_KEY_IDENTIFIER)
            .filter_map(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())
            .any(|k| k == *ski),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn a_cms_without_signed_attributes_yields_the_raw_signature_and_the_signer() {
        let (cms, person) = (fixture("cms-person-noattr.der"), fixture("person.der"));
        let parts = parse(&cms).expect("parses");
        assert_eq!(parts.certificate.map(|b| b.certificate), Some(person));
        let CmsSignature::Raw { signature, scheme } = parts.signature else {
            panic!("no signed attributes, so a raw signature");
        };
        assert_eq!((signature.len(), scheme), (256, Scheme::Pkcs1v15));
    }

    #[test]
    fn a_cms_with_signed_attributes_is_reported_with_its_chain() {
        let (cms, org, ca) = (
            fixture("cms-org.der"),
            fixture("org.der"),
            fixture("issuing-ca.der"),
        );
        let parts = parse(&cms).expect("parses");
        assert_eq!(parts.signature, CmsSignature::SignedAttributes);
        let bundle = parts.certificate.expect("signer certificate");
        assert_eq!((bundle.certificate, bundle.chain), (org, vec![ca]));
    }

    #[test]
    fn what_is_not_signed_data_is_refused() {
        assert!(matches!(
            parse(b"\x30\x03\x02\x01\x01"),
            Err(CmsError::Malformed(_))
        ));
        assert!(parse(&[]).is_err());
        assert!(parse(&fixture("person.der")).is_err());
    }
}
