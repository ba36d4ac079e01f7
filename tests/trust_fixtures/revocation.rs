//! Revocation from evidence and from a fetcher that answers canned bytes: the manifest's OCSP
//! statuses, evidence about another certificate, the policies, the caches, CRL fallback, and
//! the nonce.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use kyso::verify::{Evidence, Fetch, FetchError, RevocationPolicy, Verifier};

use crate::{dir, evidence, manifest, read, root, Judge, Signed};

#[tokio::test]
async fn every_ocsp_case_of_the_manifest_gets_its_status() {
    for case in manifest().ocsp {
        let name = case.cert.trim_end_matches(".der");
        let verifier = Verifier::offline(evidence(&[&case.response], &[]));
        let result = verifier.judge_with(name, RevocationPolicy::Prefer).await;
        let status = match result {
            Ok(verdict) => verdict.verification.revocation,
            Err(refusal) => refusal.verification.revocation,
        };
        assert_eq!(status, case.status, "{}", case.cert);
    }
}

#[tokio::test]
async fn evidence_about_another_certificate_leaves_the_status_unknown() {
    let verifier = Verifier::offline(evidence(&["ocsp-resp-person.der"], &[]));
    let verdict = verifier
        .judge_with("revoked", RevocationPolicy::Prefer)
        .await
        .expect("prefer lets it through");
    assert_eq!(verdict.verification.revocation, "unknown");
    let detail = verdict.verification.revocation_detail.unwrap_or_default();
    assert!(
        detail.contains("does not name this certificate"),
        "{detail}"
    );
}

#[tokio::test]
async fn policy_require_refuses_a_signature_whose_revocation_is_unknown() {
    let verifier = Verifier::offline(Evidence::default());
    let refusal = verifier
        .judge_with("person", RevocationPolicy::Require)
        .await
        .expect_err("nothing to establish revocation with");
    assert_eq!(refusal.code(), "untrusted_certificate");
    assert_eq!(refusal.verification.signature, "valid");
    assert_eq!(refusal.verification.revocation, "not_checked");
    assert!(refusal.identity.is_some());
}

#[tokio::test]
async fn policy_off_asks_nobody() {
    let fetch = Arc::new(Canned::default());
    let verifier = Verifier::with_fetch(fetch.clone());
    let verdict = verifier
        .judge_with("revoked", RevocationPolicy::Off)
        .await
        .expect("not checked");
    assert_eq!(verdict.verification.revocation, "not_checked");
    assert_eq!(fetch.calls(), 0);
}

/// Answers every OCSP request with one response and every CRL request with one CRL, counting.
#[derive(Default)]
struct Canned {
    ocsp: Option<Vec<u8>>,
    crl: Option<Vec<u8>>,
    ocsp_calls: AtomicUsize,
    crl_calls: AtomicUsize,
}

impl Canned {
    fn calls(&self) -> usize {
        self.ocsp_calls.load(Ordering::SeqCst) + self.crl_calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Fetch for Canned {
    async fn ocsp(&self, _url: &str, _request: Vec<u8>) -> Result<Vec<u8>, FetchError> {
        self.ocsp_calls.fetch_add(1, Ordering::SeqCst);
        self.ocsp
            .clone()
            .ok_or_else(|| FetchError::Transport("connection refused".into()))
    }
    async fn crl(&self, _url: &str) -> Result<Vec<u8>, FetchError> {
        self.crl_calls.fetch_add(1, Ordering::SeqCst);
        self.crl.clone().ok_or(FetchError::Status(404))
    }
}

#[tokio::test]
async fn a_known_signer_is_answered_from_the_cache_until_next_update() {
    let fetch = Arc::new(Canned {
        ocsp: Some(read("ocsp-resp-person.der")),
        ..Canned::default()
    });
    let verifier = Verifier::with_fetch(fetch.clone());
    for _ in 0..3 {
        let verdict = verifier
            .judge_with("person", RevocationPolicy::Require)
            .await
            .expect("good");
        assert_eq!(verdict.verification.revocation, "good");
    }
    assert_eq!(fetch.calls(), 1, "one OCSP round trip for three signatures");
}

/// A known signer skips the path and the decoding, never the signature: another digest, or a
/// signature by a different key under the known certificate, is refused with the identity.
#[tokio::test]
async fn a_known_signer_still_has_every_signature_checked() {
    let verifier = Verifier::offline(evidence(&["ocsp-resp-person.der"], &[]));
    let good = Signed::new("person");
    verifier
        .verify(&good.check(), &root(), RevocationPolicy::Require)
        .await
        .expect("good: the signer is now known");
    let mut other_digest = Signed::new("person");
    other_digest.digest[0] ^= 1;
    let mut other_key = Signed::new("person");
    other_key.signature = read("sig-revoked.pkcs1");
    for bad in [other_digest, other_key] {
        let refusal = verifier
            .verify(&bad.check(), &root(), RevocationPolicy::Require)
            .await
            .expect_err("a bad signature by a known signer");
        assert_eq!(refusal.code(), "invalid_signature");
        assert!(refusal.identity.is_some(), "the known signer is named");
    }
    verifier
        .verify(&good.check(), &root(), RevocationPolicy::Require)
        .await
        .expect("and the good one still passes");
}

#[tokio::test]
async fn when_ocsp_is_down_the_crl_decides_and_is_fetched_once() {
    let fetch = Arc::new(Canned {
        crl: Some(read("issuing-ca.crl")),
        ..Canned::default()
    });
    let verifier = Verifier::with_fetch(fetch.clone());
    let refusal = verifier
        .judge_with("revoked", RevocationPolicy::Prefer)
        .await
        .expect_err("revoked by the CRL");
    assert_eq!(refusal.code(), "revoked_certificate");
    let detail = refusal.verification.revocation_detail.unwrap_or_default();
    assert!(detail.starts_with("CRL"), "{detail}");
    let verdict = verifier
        .judge_with("person", RevocationPolicy::Prefer)
        .await
        .expect("good by the same CRL");
    assert_eq!(verdict.verification.revocation, "good");
    assert_eq!(
        fetch.crl_calls.load(Ordering::SeqCst),
        1,
        "the CRL is cached"
    );
    assert_eq!(
        fetch.ocsp_calls.load(Ordering::SeqCst),
        1,
        "a responder that just failed is not asked again at once"
    );
}

#[tokio::test]
async fn a_response_to_another_request_is_refused_by_its_nonce() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (req, resp) = (tmp.path().join("req.der"), tmp.path().join("resp.der"));
    let ok = Command::new("openssl")
        .current_dir(dir())
        .args([
            "ocsp",
            "-issuer",
            "issuing-ca.pem",
            "-cert",
            "person.pem",
            "-reqout",
        ])
        .arg(&req)
        .output()
        .expect("openssl ocsp request")
        .status
        .success();
    assert!(ok);
    let ok = Command::new("openssl")
        .current_dir(dir())
        .args([
            "ocsp",
            "-index",
            "ca/index.txt",
            "-rsigner",
            "ocsp-responder.pem",
        ])
        .args([
            "-rkey",
            "ocsp-responder.key",
            "-CA",
            "issuing-ca.pem",
            "-reqin",
        ])
        .arg(&req)
        .arg("-respout")
        .arg(&resp)
        .output()
        .expect("openssl ocsp response")
        .status
        .success();
    assert!(ok);
    let fetch = Arc::new(Canned {
        ocsp: Some(std::fs::read(&resp).expect("response")),
        ..Canned::default()
    });
    let verdict = Verifier::with_fetch(fetch)
        .judge_with("person", RevocationPolicy::Prefer)
        .await
        .expect("prefer");
    assert_eq!(verdict.verification.revocation, "unknown");
    let detail = verdict.verification.revocation_detail.unwrap_or_default();
    assert!(detail.contains("nonce"), "{detail}");
}
