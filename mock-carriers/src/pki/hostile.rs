//! What an attacker holding nothing but fresh keys can send a gateway: a signer certificate
//! and a pile of self-issued "CA" certificates under one name, made to turn naive path
//! building into a search over orderings. Nothing here chains to the mock root. QA, the
//! gateway's hostile-input tests and its benchmark all take their inputs from here, so each run
//! uses new keys and a new name.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyUsagePurpose};

use super::authority::{generate_key, random_serial};
use super::PkiError;

/// How the "CA" certificates share their keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Every CA certificate carries the same key and is signed by it: each is a valid issuer
    /// of every other, so a search over orderings meets n! paths.
    SharedKey,
    /// Two keys, each CA certificate signed by the other key: the orderings alternate.
    TwoKeysCrossSigned,
    /// A key per CA certificate, each self-signed: every one must be tried as an issuer of
    /// every other, the most signature checks a name can ask for.
    DistinctKeys,
}

/// A signature as a USB-token plugin would hand it over, with the hostile chain beside it.
#[derive(Debug, Clone)]
pub struct HostileSignature {
    /// The bytes signed; the signature is PKCS#1 v1.5 over their SHA-256.
    pub data: Vec<u8>,
    pub signature: Vec<u8>,
    pub certificate: Vec<u8>,
    /// The signer's private key, PKCS#8 DER (for building a CMS with OpenSSL).
    pub key_pkcs8: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
}

/// `cas` self-issued CA certificates named after a fresh random CA, and a signer certificate
/// issued under that name, which has signed `data`.
pub fn self_issued_chain(
    cas: usize,
    shape: Shape,
    data: &[u8],
) -> Result<HostileSignature, PkiError> {
    let name = format!("Hostile CA {}", hex::encode(&random_serial()[..6]));
    let key_count = match shape {
        Shape::SharedKey => 1,
        Shape::TwoKeysCrossSigned => 2,
        Shape::DistinctKeys => cas.max(1),
    };
    let keys = (0..key_count)
        .map(|_| generate_key())
        .collect::<Result<Vec<_>, _>>()?;
    let ca_params = |serial: [u8; 16]| {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, &name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(serial.to_vec().into());
        params
    };
    let mut chain = Vec::with_capacity(cas);
    for index in 0..cas {
        let (_, own) = &keys[index % keys.len()];
        let (_, signer) = match shape {
            Shape::TwoKeysCrossSigned => &keys[(index + 1) % keys.len()],
            Shape::SharedKey | Shape::DistinctKeys => &keys[index % keys.len()],
        };
        let issuer = Issuer::new(ca_params(random_serial()), signer);
        let cert = ca_params(random_serial()).signed_by(own, &issuer)?;
        chain.push(cert.der().to_vec());
    }
    let (key_pkcs8, leaf_key) = generate_key()?;
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name
        .push(DnType::CommonName, format!("Signer of {name}"));
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    leaf.serial_number = Some(random_serial().to_vec().into());
    let issuer = Issuer::new(ca_params(random_serial()), &keys[0].1);
    let certificate = leaf.signed_by(&leaf_key, &issuer)?.der().to_vec();
    let signature = sign_pkcs1_sha256(&key_pkcs8, data)?;
    Ok(HostileSignature {
        data: data.to_vec(),
        signature,
        certificate,
        key_pkcs8,
        chain,
    })
}

impl HostileSignature {
    /// The signer's PKCS#1 v1.5 signature over SHA-256(`data`), e.g. over CMS signed attributes.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, PkiError> {
        sign_pkcs1_sha256(&self.key_pkcs8, data)
    }
}

fn sign_pkcs1_sha256(pkcs8: &[u8], data: &[u8]) -> Result<Vec<u8>, PkiError> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    let key = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| PkiError::Crypto("RSA key"))?;
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        data,
        &mut signature,
    )
    .map_err(|_| PkiError::Crypto("RSA signing failed"))?;
    Ok(signature)
}
