//! What verifying one signature costs, first time and for a known signer: `cargo bench --bench
//! verify`. Uses the OpenSSL fixtures (tests/fixtures) and an in-process OCSP source that hands
//! back the fixture's pre-made response, so the figures are CPU only, no network.
//!
//! - `rsa only`: the one RSA-2048 PKCS#1 v1.5 verification of the signer's signature, with
//!   aws-lc-rs as the verifier does it.
//! - `first`: a fresh verifier: certificate parsing, path building (two certificate
//!   signatures), identity, OCSP request and response (two more signatures).
//! - `cached`: the same signer again: path and revocation answer come from the caches.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use der::Decode;
use kyso::verify::{
    verify, Fetch, FetchError, RevocationPolicy, Scheme, SignatureCheck, TrustAnchors, Verifier,
};

fn read(file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Answers every OCSP request with the fixture's response about person.der.
struct CannedOcsp(Vec<u8>);

#[async_trait]
impl Fetch for CannedOcsp {
    async fn ocsp(&self, _url: &str, _request: Vec<u8>) -> Result<Vec<u8>, FetchError> {
        Ok(self.0.clone())
    }
    async fn crl(&self, _url: &str) -> Result<Vec<u8>, FetchError> {
        Err(FetchError::Transport("not in this benchmark".into()))
    }
}

fn median(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (p(0.5), p(0.9))
}

fn measure(name: &str, runs: usize, mut f: impl FnMut()) {
    for _ in 0..runs / 10 {
        f();
    }
    let samples = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    let (p50, p90) = median(samples);
    println!(
        "{name:<40} median {:>8.1} µs   p90 {:>8.1} µs   ({runs} runs)",
        p50.as_secs_f64() * 1e6,
        p90.as_secs_f64() * 1e6
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let digest: [u8; 32] = read("data.sha256").try_into().expect("32 bytes");
    let signature = read("sig-person.pkcs1");
    let certificate = read("person.der");
    let chain = vec![read("issuing-ca.der")];
    let anchors = TrustAnchors::from_der(vec![read("root-ca.der")]).expect("root");
    let ocsp = read("ocsp-resp-person.der");
    let check = SignatureCheck {
        digest: &digest,
        signature: &signature,
        scheme: Scheme::Pkcs1v15,
        certificate: &certificate,
        chain: &chain,
        at: Utc::now(),
    };

    let cert = x509_cert::Certificate::from_der(&certificate).expect("cert");
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key;
    let key = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        spki.raw_bytes(),
    );
    let lc_digest =
        aws_lc_rs::digest::Digest::import_less_safe(&digest, &aws_lc_rs::digest::SHA256)
            .expect("32 bytes");
    measure("rsa only (signer's signature)", 2000, || {
        key.verify_digest(&lc_digest, &signature).expect("valid");
    });

    measure("no revocation, no cache (verify::verify)", 1000, || {
        black_box(verify(&check, &anchors).expect("valid"));
    });

    measure("first: fresh verifier, path + OCSP", 500, || {
        let verifier = Verifier::with_fetch(Arc::new(CannedOcsp(ocsp.clone())));
        let verdict = rt
            .block_on(verifier.verify(&check, &anchors, RevocationPolicy::Require))
            .expect("valid");
        assert_eq!(verdict.verification.revocation, "good");
    });

    let verifier = Verifier::with_fetch(Arc::new(CannedOcsp(ocsp.clone())));
    measure("cached: known signer, path + OCSP cached", 2000, || {
        let verdict = rt
            .block_on(verifier.verify(&check, &anchors, RevocationPolicy::Require))
            .expect("valid");
        black_box(verdict);
    });
}
