//! Trust anchors: the CA certificates a provider's (or the USB-token path's) signers must chain
//! to, loaded from PEM bundles or DER files.

use base64::Engine;
use der::Decode;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::VerifyError;

/// Certificates a provider's signers must chain to.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    /// Shared: a verification on the blocking pool holds its own handle.
    pub(crate) certs: std::sync::Arc<[Certificate]>,
    /// SHA-256 over every anchor's DER: what a cached path was found against.
    pub(crate) id: [u8; 32],
}

impl TrustAnchors {
    /// One file holding one or more PEM certificates, or a single DER certificate.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, VerifyError> {
        Self::from_der(certificates_from_pem_or_der(bytes)?)
    }

    pub fn from_der(certs: Vec<Vec<u8>>) -> Result<Self, VerifyError> {
        let mut hasher = Sha256::new();
        for der in &certs {
            hasher.update((der.len() as u64).to_be_bytes());
            hasher.update(der);
        }
        let id = hasher.finalize().into();
        let certs = certs
            .iter()
            .enumerate()
            .map(|(i, der)| {
                Certificate::from_der(der).map_err(|e| {
                    VerifyError::MalformedCertificate(format!("trust anchor {}: {e}", i + 1))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            certs: certs.into(),
            id,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

/// The DER certificates in a file: every CERTIFICATE block of a PEM file, or the file itself
/// when it is not PEM (then taken as one DER certificate, judged when decoded).
pub fn certificates_from_pem_or_der(bytes: &[u8]) -> Result<Vec<Vec<u8>>, VerifyError> {
    const BEGIN: &str = "-----BEGIN ";
    if !bytes.windows(BEGIN.len()).any(|w| w == BEGIN.as_bytes()) {
        return Ok(vec![bytes.to_vec()]);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| VerifyError::MalformedCertificate("PEM file is not text".into()))?;
    let ders = pem_certificates(text)?;
    if ders.is_empty() {
        return Err(VerifyError::MalformedCertificate(
            "PEM file holds no CERTIFICATE block".into(),
        ));
    }
    Ok(ders)
}

/// Base64 bodies of every `CERTIFICATE` block; other blocks (keys, CRLs) are skipped so an
/// operator's bundle with extras still loads.
fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, VerifyError> {
    let mut ders = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| VerifyError::MalformedCertificate("unterminated PEM header".into()))?;
        let label = &after[..label_end];
        let body_start = &after[label_end + "-----".len()..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start.find(&end_marker).ok_or_else(|| {
            VerifyError::MalformedCertificate(format!("PEM block {label} has no END line"))
        })?;
        if matches!(label, "CERTIFICATE" | "X509 CERTIFICATE") {
            let body: String = body_start[..body_end]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| VerifyError::MalformedCertificate(format!("PEM base64: {e}")))?;
            ders.push(der);
        }
        rest = &body_start[body_end + end_marker.len()..];
    }
    Ok(ders)
}
