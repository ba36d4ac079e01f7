//! Revocation and CMS against the OpenSSL fixture set (tests/fixtures, manifest.json): CRLs and
//! OCSP responses made by OpenSSL, CMS made by `openssl cms -sign`, a live `openssl ocsp`
//! responder started here, and the CMS kyso assembles read back by its own verifier. This file
//! holds the fixtures every module reads; one module per concern.

mod cms;
mod responder;
mod revocation;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use kyso::verify::{Evidence, Scheme, SignatureCheck, TrustAnchors};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn read(file: &str) -> Vec<u8> {
    let path = dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn root() -> TrustAnchors {
    TrustAnchors::from_der(vec![read("root-ca.der")]).expect("root-ca.der loads")
}

pub fn digest_of(file: &str) -> [u8; 32] {
    Sha256::digest(read(file)).into()
}

#[derive(Deserialize)]
pub struct Manifest {
    pub cms: Vec<CmsCase>,
    pub ocsp: Vec<OcspCase>,
}

#[derive(Deserialize)]
pub struct CmsCase {
    pub name: String,
    pub file: String,
    pub content: String,
    pub verdict: String,
}

#[derive(Deserialize)]
pub struct OcspCase {
    pub cert: String,
    pub response: String,
    pub status: String,
}

pub fn manifest() -> Manifest {
    serde_json::from_slice(&read("manifest.json")).expect("manifest.json parses")
}

/// A signature over data.sha256 by a fixture signer, checked now (the fixtures are current).
pub struct Signed {
    pub digest: [u8; 32],
    pub signature: Vec<u8>,
    pub certificate: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
    pub at: DateTime<Utc>,
}

impl Signed {
    pub fn new(name: &str) -> Self {
        Self {
            digest: digest_of("data.txt"),
            signature: read(&format!("sig-{name}.pkcs1")),
            certificate: read(&format!("{name}.der")),
            chain: vec![read("issuing-ca.der")],
            at: Utc::now(),
        }
    }

    pub fn check(&self) -> SignatureCheck<'_> {
        SignatureCheck {
            digest: &self.digest,
            signature: &self.signature,
            scheme: Scheme::Pkcs1v15,
            certificate: &self.certificate,
            chain: &self.chain,
            at: self.at,
        }
    }
}

pub fn evidence(ocsp: &[&str], crls: &[&str]) -> Evidence {
    Evidence {
        ocsp_responses: ocsp.iter().map(|f| read(f)).collect(),
        crls: crls.iter().map(|f| read(f)).collect(),
    }
}

/// A verifier's judgement of a fixture signer's signature, against the root.
pub(crate) trait Judge {
    /// The judgement of the signature by fixture signer `name` under `policy`.
    async fn judge_with(
        &self,
        name: &str,
        policy: kyso::verify::RevocationPolicy,
    ) -> Result<kyso::verify::Verdict, kyso::verify::Refusal>;
}

impl Judge for kyso::verify::Verifier {
    async fn judge_with(
        &self,
        name: &str,
        policy: kyso::verify::RevocationPolicy,
    ) -> Result<kyso::verify::Verdict, kyso::verify::Refusal> {
        self.verify(&Signed::new(name).check(), &root(), policy)
            .await
    }
}
