//! All RSA goes through the `rsa` crate, which only verifies: extracting a certificate's public
//! key (refusing anything under 2048 bits), checking the signer's signature over the session
//! digest, and checking CA signatures (certificates, CRLs, OCSP responses) with the hash
//! algorithms kyso accepts.

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::Certificate;

use super::{Scheme, VerifyError};

/// Below this the spec refuses the key, whoever signed it.
pub(crate) const MIN_RSA_BITS: usize = 2048;
/// The `rsa` crate's default cap is 4096; some national roots use larger keys.
const MAX_RSA_BITS: usize = 8192;
/// Salt length the providers use for RSASSA-PSS (equal to the SHA-256 output).
const PSS_SALT_LEN: usize = 32;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const MD5_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.4");
const SHA1_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");

pub(crate) fn public_key(cert: &Certificate) -> Result<RsaPublicKey, VerifyError> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(VerifyError::UntrustedCertificate(format!(
            "public key algorithm {} is not RSA",
            spki.algorithm.oid
        )));
    }
    let pkcs1 = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| malformed("public key is not a whole number of bytes"))
        .and_then(|bytes| {
            rsa::pkcs1::RsaPublicKey::from_der(bytes)
                .map_err(|e| malformed(&format!("RSA public key: {e}")))
        })?;
    let n = BigUint::from_bytes_be(pkcs1.modulus.as_bytes());
    let e = BigUint::from_bytes_be(pkcs1.public_exponent.as_bytes());
    let bits = n.bits();
    if bits < MIN_RSA_BITS {
        return Err(VerifyError::UntrustedCertificate(format!(
            "RSA key of {bits} bits"
        )));
    }
    RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
        .map_err(|e| VerifyError::UntrustedCertificate(format!("unusable RSA key: {e}")))
}

fn malformed(why: &str) -> VerifyError {
    VerifyError::MalformedCertificate(why.to_owned())
}

/// The signer's signature must be over exactly this digest: no re-hashing, no other padding.
pub(crate) fn verify_digest(
    key: &RsaPublicKey,
    scheme: Scheme,
    digest: &[u8; 32],
    signature: &[u8],
) -> Result<(), VerifyError> {
    let checked = match scheme {
        Scheme::Pkcs1v15 => key.verify(Pkcs1v15Sign::new::<Sha256>(), digest, signature),
        Scheme::PssSha256 => key.verify(
            Pss::new_with_salt::<Sha256>(PSS_SALT_LEN),
            digest,
            signature,
        ),
    };
    checked.map_err(|_| VerifyError::InvalidSignature)
}

/// How a certificate's signature algorithm is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertHash {
    Sha256,
    Sha384,
    Sha512,
}

fn cert_hash(algorithm: ObjectIdentifier) -> Result<CertHash, String> {
    match algorithm {
        SHA256_WITH_RSA => Ok(CertHash::Sha256),
        SHA384_WITH_RSA => Ok(CertHash::Sha384),
        SHA512_WITH_RSA => Ok(CertHash::Sha512),
        SHA1_WITH_RSA => Err("SHA-1 certificate signatures are refused".into()),
        MD5_WITH_RSA => Err("MD5 certificate signatures are refused".into()),
        other => Err(format!(
            "unsupported certificate signature algorithm {other}"
        )),
    }
}

/// Checks `cert`'s signature with its issuer's key. Errors are reasons for an untrusted path.
pub(crate) fn verify_certificate_signature(
    cert: &Certificate,
    issuer_key: &RsaPublicKey,
) -> Result<(), String> {
    // The outer algorithm is unsigned; it must repeat the signed inner one (RFC 5280 §4.1.1.2).
    if cert.signature_algorithm != cert.tbs_certificate.signature {
        return Err("signature algorithm differs from the signed one".into());
    }
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|e| format!("cannot re-encode the signed part: {e}"))?;
    let signature = cert
        .signature
        .as_bytes()
        .ok_or("signature is not a whole number of bytes")?;
    verify_signed(cert.signature_algorithm.oid, &tbs, signature, issuer_key)
        .map_err(|_| "certificate signature does not verify with the issuer's key".into())
}

/// Checks a CA-made signature (certificate, CRL, OCSP response) over `data` with the hash
/// algorithms kyso accepts. The error explains a refused algorithm or a bad signature.
pub(crate) fn verify_signed(
    algorithm: ObjectIdentifier,
    data: &[u8],
    signature: &[u8],
    key: &RsaPublicKey,
) -> Result<(), String> {
    let checked = match cert_hash(algorithm)? {
        CertHash::Sha256 => key.verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(data),
            signature,
        ),
        CertHash::Sha384 => key.verify(
            Pkcs1v15Sign::new::<Sha384>(),
            &Sha384::digest(data),
            signature,
        ),
        CertHash::Sha512 => key.verify(
            Pkcs1v15Sign::new::<Sha512>(),
            &Sha512::digest(data),
            signature,
        ),
    };
    checked.map_err(|_| "signature does not verify".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_and_md5_certificate_signatures_are_refused() {
        assert!(cert_hash(SHA1_WITH_RSA).is_err_and(|why| why.contains("SHA-1")));
        assert!(cert_hash(MD5_WITH_RSA).is_err());
    }

    #[test]
    fn sha2_rsa_certificate_signatures_are_accepted() {
        assert_eq!(cert_hash(SHA256_WITH_RSA), Ok(CertHash::Sha256));
        assert_eq!(cert_hash(SHA384_WITH_RSA), Ok(CertHash::Sha384));
        assert_eq!(cert_hash(SHA512_WITH_RSA), Ok(CertHash::Sha512));
    }

    #[test]
    fn rsa_pss_certificate_signatures_are_not_understood() {
        let pss = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
        assert!(cert_hash(pss).is_err_and(|why| why.contains("unsupported")));
    }
}
