//! The PKCS7 / CMS answer format (`MSS_Format` `…#PKCS7`): a CMS SignedData (RFC 5652) made
//! by the SIM, carrying the SIM certificate and its issuing CA, one SignerInfo identified by
//! issuer and serial, and signed attributes contentType, signingTime and messageDigest. For a
//! DigestInfo DTBS the message digest is that digest and the SignedData is detached; for
//! content (text/plain or other bytes) the content is encapsulated and hashed with SHA-256.
//! The signature over the DER SET of signed attributes follows the signer's behaviour
//! (corrupted, other digest) like the raw PKCS#1 answer.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Null, ObjectIdentifier, OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode};
use sha2::{Digest, Sha256};
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use super::sign_req::Tbs;
use crate::behaviour::SignaturePlan;
use crate::pki::{PkiError, SignerCredential};
use crate::state::signature_for;

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

fn der_err(_: der::Error) -> PkiError {
    PkiError::Crypto("CMS structure does not encode")
}

/// The message digest the CMS signs for `tbs`.
pub fn message_digest(tbs: &Tbs) -> [u8; 32] {
    match tbs {
        Tbs::Digest(d) => *d,
        Tbs::Content(c) => Sha256::digest(c).into(),
    }
}

/// DER ContentInfo(SignedData) over `tbs`, signed by `cred`, with `ca_der` in the certificates.
pub fn signed_data(
    cred: &SignerCredential,
    ca_der: &[u8],
    tbs: &Tbs,
    plan: SignaturePlan,
) -> Result<Vec<u8>, PkiError> {
    let leaf = Certificate::from_der(&cred.cert_der)
        .map_err(|_| PkiError::Crypto("SIM certificate does not parse"))?;
    let ca = Certificate::from_der(ca_der)
        .map_err(|_| PkiError::Crypto("CA certificate does not parse"))?;
    let attribute = |oid: ObjectIdentifier, value: Any| -> Result<Attribute, PkiError> {
        Ok(Attribute {
            oid,
            values: SetOfVec::try_from(vec![value]).map_err(der_err)?,
        })
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| PkiError::Crypto("clock before 1970"))?;
    let signing_time = UtcTime::from_unix_duration(std::time::Duration::from_secs(now.as_secs()))
        .map_err(der_err)?;
    let digest = message_digest(tbs);
    let signed_attrs = SetOfVec::try_from(vec![
        attribute(CONTENT_TYPE, Any::encode_from(&ID_DATA).map_err(der_err)?)?,
        attribute(
            SIGNING_TIME,
            Any::encode_from(&signing_time).map_err(der_err)?,
        )?,
        attribute(
            MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(digest.to_vec()).map_err(der_err)?)
                .map_err(der_err)?,
        )?,
    ])
    .map_err(der_err)?;
    let attrs_hash: [u8; 32] = Sha256::digest(signed_attrs.to_der().map_err(der_err)?).into();
    let signature = signature_for(cred, plan, &attrs_hash)?;

    let sha256 = AlgorithmIdentifierOwned {
        oid: SHA256,
        parameters: None,
    };
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: leaf.tbs_certificate.issuer.clone(),
            serial_number: leaf.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: sha256.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: RSA_ENCRYPTION,
            parameters: Some(Any::from(Null)),
        },
        signature: OctetString::new(signature).map_err(der_err)?,
        unsigned_attrs: None,
    };
    let econtent = match tbs {
        Tbs::Digest(_) => None,
        Tbs::Content(c) => Some(
            Any::encode_from(&OctetString::new(c.clone()).map_err(der_err)?).map_err(der_err)?,
        ),
    };
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![sha256]).map_err(der_err)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(vec![
                CertificateChoices::Certificate(leaf),
                CertificateChoices::Certificate(ca),
            ])
            .map_err(der_err)?,
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).map_err(der_err)?),
    };
    ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(der_err)?,
    }
    .to_der()
    .map_err(der_err)
}
