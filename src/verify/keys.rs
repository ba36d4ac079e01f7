//! RSA public keys and the signatures made with them: a certificate's key is read and its size
//! checked with the `rsa` crate (refusing anything under 2048 or over 8192 bits), and every
//! signature — the signer's over the session digest, and CA signatures over certificates, CRLs
//! and OCSP responses, with the hash algorithms kyso accepts — is verified with aws-lc-rs, the
//! constant-time implementation rustls already brings (and about eight times faster than the
//! `rsa` crate's, which tests keep as a second opinion).

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as lc, ParsedPublicKey, UnparsedPublicKey, VerificationAlgorithm};
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
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

/// An RSA public key that passed kyso's rules, kept as the PKCS#1 `RSAPublicKey` DER that
/// aws-lc-rs reads, and parsed once for PKCS#1 v1.5 with SHA-256: a known signer's next
/// signature is then the RSA operation and little else.
#[derive(Debug, Clone)]
pub(crate) struct PublicKey {
    pkcs1: Box<[u8]>,
    pkcs1v15_sha256: ParsedPublicKey,
}

impl PublicKey {
    /// The key as the `rsa` crate reads it, for tests that compare the two implementations.
    #[cfg(test)]
    pub(crate) fn to_rsa(&self) -> RsaPublicKey {
        use rsa::pkcs1::DecodeRsaPublicKey;
        RsaPublicKey::from_pkcs1_der(&self.pkcs1).expect("checked when the key was read")
    }
}

pub(crate) fn public_key(cert: &Certificate) -> Result<PublicKey, VerifyError> {
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
    let key = RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
        .map_err(|e| VerifyError::UntrustedCertificate(format!("unusable RSA key: {e}")))?;
    // Re-encoded from the checked numbers so aws-lc-rs reads exactly what the size rules saw.
    let pkcs1 = rsa::pkcs1::RsaPublicKey {
        modulus: rsa::pkcs1::UintRef::new(&key.n().to_bytes_be())
            .map_err(|e| malformed(&format!("RSA modulus: {e}")))?,
        public_exponent: rsa::pkcs1::UintRef::new(&key.e().to_bytes_be())
            .map_err(|e| malformed(&format!("RSA exponent: {e}")))?,
    }
    .to_der()
    .map_err(|e| malformed(&format!("RSA public key: {e}")))?;
    let pkcs1v15_sha256 = ParsedPublicKey::new(&lc::RSA_PKCS1_2048_8192_SHA256, &pkcs1)
        .map_err(|e| VerifyError::UntrustedCertificate(format!("unusable RSA key: {e}")))?;
    Ok(PublicKey {
        pkcs1: pkcs1.into_boxed_slice(),
        pkcs1v15_sha256,
    })
}

fn malformed(why: &str) -> VerifyError {
    VerifyError::MalformedCertificate(why.to_owned())
}

/// The signer's signature must be over exactly this digest: no re-hashing, no other padding.
pub(crate) fn verify_digest(
    key: &PublicKey,
    scheme: Scheme,
    digest: &[u8; 32],
    signature: &[u8],
) -> Result<(), VerifyError> {
    // aws-lc-rs's PSS verification expects a salt as long as the hash, which is what the
    // providers use.
    const _: () = assert!(PSS_SALT_LEN == 32);
    let digest = digest::Digest::import_less_safe(digest, &digest::SHA256)
        .map_err(|_| VerifyError::InvalidSignature)?;
    match scheme {
        Scheme::Pkcs1v15 => key.pkcs1v15_sha256.verify_digest_sig(&digest, signature),
        Scheme::PssSha256 => UnparsedPublicKey::new(&lc::RSA_PSS_2048_8192_SHA256, &*key.pkcs1)
            .verify_digest(&digest, signature),
    }
    .map_err(|_| VerifyError::InvalidSignature)
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
    issuer_key: &PublicKey,
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
    key: &PublicKey,
) -> Result<(), String> {
    let other: &'static dyn VerificationAlgorithm = match cert_hash(algorithm)? {
        CertHash::Sha256 => {
            return key
                .pkcs1v15_sha256
                .verify_sig(data, signature)
                .map_err(|_| "signature does not verify".into())
        }
        CertHash::Sha384 => &lc::RSA_PKCS1_2048_8192_SHA384,
        CertHash::Sha512 => &lc::RSA_PKCS1_2048_8192_SHA512,
    };
    UnparsedPublicKey::new(other, &*key.pkcs1)
        .verify(data, signature)
        .map_err(|_| "signature does not verify".into())
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

    fn fixture(file: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(file);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The `rsa` crate's opinion of the same signature: a second implementation to disagree with.
    fn rsa_crate_says(key: &PublicKey, scheme: Scheme, digest: &[u8; 32], sig: &[u8]) -> bool {
        use rsa::{Pkcs1v15Sign, Pss};
        use sha2::Sha256;
        let key = key.to_rsa();
        match scheme {
            Scheme::Pkcs1v15 => key.verify(Pkcs1v15Sign::new::<Sha256>(), digest, sig),
            Scheme::PssSha256 => key.verify(Pss::new_with_salt::<Sha256>(32), digest, sig),
        }
        .is_ok()
    }

    #[test]
    fn aws_lc_and_the_rsa_crate_agree_on_every_fixture_signature() {
        let person =
            public_key(&Certificate::from_der(&fixture("person.der")).expect("cert")).expect("key");
        let digest: [u8; 32] = fixture("data.sha256").try_into().expect("32 bytes");
        let other: [u8; 32] = fixture("other.sha256").try_into().expect("32 bytes");
        let mut flipped = fixture("sig-person.pkcs1");
        flipped[40] ^= 1;
        let cases = [
            ("sig-person.pkcs1", Scheme::Pkcs1v15, digest, true),
            ("sig-person.pss", Scheme::PssSha256, digest, true),
            ("sig-person.pkcs1", Scheme::PssSha256, digest, false),
            ("sig-person.pss", Scheme::Pkcs1v15, digest, false),
            ("sig-person.pkcs1", Scheme::Pkcs1v15, other, false),
            (
                "sig-person-other-digest.pkcs1",
                Scheme::Pkcs1v15,
                digest,
                false,
            ),
            ("sig-org.pkcs1", Scheme::Pkcs1v15, digest, false),
        ];
        for (file, scheme, digest, valid) in cases {
            let sig = fixture(file);
            let ours = verify_digest(&person, scheme, &digest, &sig).is_ok();
            assert_eq!(ours, valid, "{file} {scheme:?}");
            assert_eq!(
                rsa_crate_says(&person, scheme, &digest, &sig),
                valid,
                "{file}"
            );
        }
        assert!(verify_digest(&person, Scheme::Pkcs1v15, &digest, &flipped).is_err());
        assert!(!rsa_crate_says(
            &person,
            Scheme::Pkcs1v15,
            &digest,
            &flipped
        ));
    }

    #[test]
    fn certificate_signatures_verify_with_the_issuer_key_only() {
        let read = |f: &str| Certificate::from_der(&fixture(f)).expect("cert");
        let root = public_key(&read("root-ca.der")).expect("root key");
        let issuing = public_key(&read("issuing-ca.der")).expect("issuing key");
        assert!(verify_certificate_signature(&read("issuing-ca.der"), &root).is_ok());
        assert!(verify_certificate_signature(&read("person.der"), &issuing).is_ok());
        assert!(verify_certificate_signature(&read("person.der"), &root).is_err());
    }

    #[test]
    fn rsa_pss_certificate_signatures_are_not_understood() {
        let pss = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
        assert!(cert_hash(pss).is_err_and(|why| why.contains("unsupported")));
    }
}
