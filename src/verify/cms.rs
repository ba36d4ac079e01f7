//! Reading a CMS SignedData (RFC 5652) down to what the raw-signature checks need: which
//! certificate signed, over which SHA-256 digest, with which padding. With signed attributes the
//! contentType must match, the messageDigest must be the expected content's SHA-256, and the
//! signature covers the DER SET (tag 0x31) of the attributes exactly as received; without them
//! the signature covers the content digest itself. Everything after that (key size, key usage,
//! validity, path, revocation) is the same as for a raw signature.

use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use rsa::pkcs1::RsaPssParams;
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::Certificate;

use cms::signed_data::{SignerIdentifier, SignerInfo};

use super::extensions::extension;
use super::tlv::{self, Walker};
use super::{Scheme, VerifyError};

pub(crate) const SIGNED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
pub(crate) const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
pub(crate) const CONTENT_TYPE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
pub(crate) const MESSAGE_DIGEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
pub(crate) const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
pub(crate) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
pub(crate) const SHA256_WITH_RSA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
pub(crate) const RSASSA_PSS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
const SUBJECT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
/// A registration signature has one signer; this bounds a hostile certificate bag.
const MAX_CERTIFICATES: usize = 16;

/// A CMS reduced to a raw signature check.
#[derive(Debug, Clone)]
pub(crate) struct Unpacked {
    /// What the RSA signature is over: SHA-256 of the signed attributes, or the content digest.
    pub signed_digest: [u8; 32],
    pub signature: Vec<u8>,
    pub scheme: Scheme,
    /// The signer's certificate (DER, as received).
    pub certificate: Vec<u8>,
    /// Every other certificate the CMS or the caller supplied.
    pub chain: Vec<Vec<u8>>,
}

fn malformed(why: impl std::fmt::Display) -> VerifyError {
    VerifyError::MalformedSignature(format!("CMS: {why}"))
}

/// `extra` are certificates from outside the CMS (the caller's `certificate` and `chain`).
pub(crate) fn unpack(
    cms: &[u8],
    content_digest: &[u8; 32],
    extra: &[Vec<u8>],
) -> Result<Unpacked, VerifyError> {
    let info = tlv::single(cms).map_err(malformed)?;
    let mut w = Walker::new(info.value);
    let kind = w.expect(tlv::OID, "contentType").map_err(malformed)?;
    if ObjectIdentifier::from_der(kind.whole).ok() != Some(SIGNED_DATA) {
        return Err(malformed("not a SignedData"));
    }
    let explicit = w.expect(tlv::context(0), "content").map_err(malformed)?;
    let signed_data = tlv::single(explicit.value).map_err(malformed)?;
    let mut sd = Walker::new(signed_data.value);
    sd.expect(tlv::INTEGER, "version").map_err(malformed)?;
    sd.expect(tlv::SET, "digestAlgorithms").map_err(malformed)?;
    let encap = sd
        .expect(tlv::SEQUENCE, "encapContentInfo")
        .map_err(malformed)?;
    let certs = sd.optional(tlv::context(0)).map_err(malformed)?;
    sd.optional(tlv::context(1)).map_err(malformed)?;
    let signer_infos = sd.expect(tlv::SET, "signerInfos").map_err(malformed)?;

    let mut ec = Walker::new(encap.value);
    let content_type = ec.expect(tlv::OID, "eContentType").map_err(malformed)?;
    let content_type = ObjectIdentifier::from_der(content_type.whole).map_err(malformed)?;
    if let Some(embedded) = ec.optional(tlv::context(0)).map_err(malformed)? {
        let octets = tlv::single(embedded.value).map_err(malformed)?;
        if octets.tag != tlv::OCTET_STRING {
            return Err(malformed("embedded content is not one DER OCTET STRING"));
        }
        if Sha256::digest(octets.value).as_slice() != content_digest {
            return Err(VerifyError::InvalidSignature);
        }
    }

    let mut candidates: Vec<Vec<u8>> = match certs {
        Some(bag) => Walker::new(bag.value)
            .all()
            .map_err(malformed)?
            .into_iter()
            .filter(|c| c.tag == tlv::SEQUENCE)
            .map(|c| c.whole.to_vec())
            .collect(),
        None => Vec::new(),
    };
    candidates.extend(extra.iter().cloned());
    if candidates.len() > MAX_CERTIFICATES {
        return Err(malformed(format!(
            "more than {MAX_CERTIFICATES} certificates"
        )));
    }

    let infos = Walker::new(signer_infos.value).all().map_err(malformed)?;
    let [raw_info] = infos.as_slice() else {
        return Err(malformed(format!(
            "{} signers; exactly one is accepted",
            infos.len()
        )));
    };
    let info = SignerInfo::from_der(raw_info.whole).map_err(malformed)?;
    if info.digest_alg.oid != SHA256 {
        return Err(malformed(format!(
            "digest algorithm {} is not SHA-256",
            info.digest_alg.oid
        )));
    }
    let scheme = scheme(&info)?;
    let signed_digest = match raw_signed_attributes(raw_info.value)? {
        Some(raw) => {
            check_attributes(&info, content_type, content_digest)?;
            // Signed as a SET: the [0] IMPLICIT tag is replaced by the universal SET tag.
            let mut hasher = Sha256::new();
            hasher.update([tlv::SET]);
            hasher.update(&raw[1..]);
            hasher.finalize().into()
        }
        None if content_type == DATA => *content_digest,
        None => return Err(malformed("no signed attributes over non-data content")),
    };
    let signer_index = candidates
        .iter()
        .position(|der| is_signer(der, &info.sid))
        .ok_or_else(|| {
            VerifyError::UntrustedCertificate(
                "the signer's certificate is neither in the CMS nor given".into(),
            )
        })?;
    let certificate = candidates.remove(signer_index);
    candidates.retain(|c| *c != certificate);
    Ok(Unpacked {
        signed_digest,
        signature: info.signature.as_bytes().to_vec(),
        scheme,
        certificate,
        chain: candidates,
    })
}

/// The `[0]` signed attributes of a SignerInfo, as received, tag included.
fn raw_signed_attributes(info: &[u8]) -> Result<Option<&[u8]>, VerifyError> {
    let mut w = Walker::new(info);
    w.expect(tlv::INTEGER, "signer version")
        .map_err(malformed)?;
    w.next().map_err(malformed)?; // sid
    w.expect(tlv::SEQUENCE, "digestAlgorithm")
        .map_err(malformed)?;
    Ok(w.optional(tlv::context(0))
        .map_err(malformed)?
        .map(|t| t.whole))
}

fn scheme(info: &SignerInfo) -> Result<Scheme, VerifyError> {
    let alg = &info.signature_algorithm;
    match alg.oid {
        RSA_ENCRYPTION | SHA256_WITH_RSA => Ok(Scheme::Pkcs1v15),
        RSASSA_PSS => {
            let params = alg
                .parameters
                .as_ref()
                .ok_or_else(|| malformed("RSASSA-PSS without parameters"))?
                .to_der()
                .map_err(malformed)?;
            let params = RsaPssParams::from_der(&params).map_err(malformed)?;
            let mgf_hash = params.mask_gen.parameters.map(|p| p.oid);
            if params.hash.oid == SHA256
                && params.mask_gen.oid == MGF1
                && mgf_hash == Some(SHA256)
                && params.salt_len == 32
            {
                Ok(Scheme::PssSha256)
            } else {
                Err(malformed(
                    "RSASSA-PSS other than SHA-256, MGF1-SHA-256, 32-byte salt",
                ))
            }
        }
        other => Err(malformed(format!("signature algorithm {other} is refused"))),
    }
}

/// contentType must name the content, messageDigest must be its digest; each exactly once.
fn check_attributes(
    info: &SignerInfo,
    content_type: ObjectIdentifier,
    content_digest: &[u8; 32],
) -> Result<(), VerifyError> {
    let attrs = info
        .signed_attrs
        .as_ref()
        .map(|a| a.as_slice())
        .unwrap_or_default();
    let single = |oid: ObjectIdentifier, name: &str| {
        let mut found = attrs.iter().filter(|a| a.oid == oid);
        match (found.next(), found.next()) {
            (Some(a), None) if a.values.len() == 1 => Ok(a.values.as_slice()[0].clone()),
            (None, _) => Err(malformed(format!("signed attributes lack {name}"))),
            _ => Err(malformed(format!("{name} must appear once with one value"))),
        }
    };
    let declared: ObjectIdentifier = single(CONTENT_TYPE, "contentType")?
        .decode_as()
        .map_err(malformed)?;
    if declared != content_type {
        return Err(malformed("contentType attribute differs from eContentType"));
    }
    let digest: OctetString = single(MESSAGE_DIGEST, "messageDigest")?
        .decode_as()
        .map_err(malformed)?;
    if digest.as_bytes() != content_digest {
        return Err(VerifyError::InvalidSignature);
    }
    Ok(())
}

fn is_signer(der: &[u8], sid: &SignerIdentifier) -> bool {
    let Ok(cert) = Certificate::from_der(der) else {
        return false;
    };
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            cert.tbs_certificate.issuer == ias.issuer
                && cert.tbs_certificate.serial_number == ias.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            matches!(extension::<SubjectKeyIdentifier>(&cert, SUBJECT_KEY_ID), Ok(Some(own)) if own == *ski)
        }
    }
}
