//! Revocation and CMS against the OpenSSL fixture set (tests/fixtures, manifest.json): CRLs and
//! OCSP responses made by OpenSSL, CMS made by `openssl cms -sign`, a live `openssl ocsp`
//! responder started here, and the CMS kyso assembles read back by its own verifier.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kyso::verify::{
    cms_build, verify_cms, CmsCheck, Evidence, Fetch, FetchError, OnlineOptions, RevocationPolicy,
    Scheme, SignatureCheck, TrustAnchors, Verifier,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(file: &str) -> Vec<u8> {
    let path = dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn root() -> TrustAnchors {
    TrustAnchors::from_der(vec![read("root-ca.der")]).expect("root-ca.der loads")
}

fn digest_of(file: &str) -> [u8; 32] {
    Sha256::digest(read(file)).into()
}

#[derive(Deserialize)]
struct Manifest {
    cms: Vec<CmsCase>,
    ocsp: Vec<OcspCase>,
}

#[derive(Deserialize)]
struct CmsCase {
    name: String,
    file: String,
    content: String,
    verdict: String,
}

#[derive(Deserialize)]
struct OcspCase {
    cert: String,
    response: String,
    status: String,
}

fn manifest() -> Manifest {
    serde_json::from_slice(&read("manifest.json")).expect("manifest.json parses")
}

/// A signature over data.sha256 by a fixture signer, checked now (the fixtures are current).
struct Signed {
    digest: [u8; 32],
    signature: Vec<u8>,
    certificate: Vec<u8>,
    chain: Vec<Vec<u8>>,
    at: DateTime<Utc>,
}

impl Signed {
    fn new(name: &str) -> Self {
        Self {
            digest: digest_of("data.txt"),
            signature: read(&format!("sig-{name}.pkcs1")),
            certificate: read(&format!("{name}.der")),
            chain: vec![read("issuing-ca.der")],
            at: Utc::now(),
        }
    }

    fn check(&self) -> SignatureCheck<'_> {
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

fn evidence(ocsp: &[&str], crls: &[&str]) -> Evidence {
    Evidence {
        ocsp_responses: ocsp.iter().map(|f| read(f)).collect(),
        crls: crls.iter().map(|f| read(f)).collect(),
    }
}

#[tokio::test]
async fn every_ocsp_case_of_the_manifest_gets_its_status() {
    for case in manifest().ocsp {
        let name = case.cert.trim_end_matches(".der");
        let verifier = Verifier::offline(evidence(&[&case.response], &[]));
        let result = verifier
            .verify(
                &Signed::new(name).check(),
                &root(),
                RevocationPolicy::Prefer,
            )
            .await;
        let status = match result {
            Ok(verdict) => verdict.verification.revocation,
            Err(refusal) => refusal.verification.revocation,
        };
        assert_eq!(status, case.status, "{}", case.cert);
    }
}

#[test]
fn every_cms_case_of_the_manifest_gets_its_verdict() {
    for case in manifest().cms {
        let result = verify_cms(
            &read(&case.file),
            &digest_of(&case.content),
            &root(),
            Utc::now(),
            // The manifest's intermediate, which cms-person-noattr does not carry.
            &[read("issuing-ca.der")],
        );
        match (result, case.verdict.as_str()) {
            (Ok(v), "valid") => assert_eq!(v.verification.signature, "valid", "{}", case.name),
            (Ok(_), expected) => panic!("{}: valid, manifest says {expected}", case.name),
            (Err(e), expected) => assert_eq!(e.code(), expected, "{}: {e}", case.name),
        }
    }
}

#[test]
fn a_cms_without_its_intermediate_verifies_when_the_intermediate_is_given() {
    let without = verify_cms(
        &read("cms-person-noattr.der"),
        &digest_of("data.txt"),
        &root(),
        Utc::now(),
        &[],
    )
    .expect_err("no path without the issuing CA");
    assert_eq!(without.code(), "untrusted_certificate");
    let verdict = verify_cms(
        &read("cms-person-noattr.der"),
        &digest_of("data.txt"),
        &root(),
        Utc::now(),
        &[read("issuing-ca.der")],
    )
    .expect("valid with the intermediate given");
    assert_eq!(verdict.identity.citizen_id.as_deref(), Some("001099012345"));
}

#[test]
fn garbage_is_an_invalid_signature_not_a_crash() {
    let err =
        verify_cms(b"\x30\x03\x02\x01", &[0; 32], &root(), Utc::now(), &[]).expect_err("garbage");
    assert_eq!(err.code(), "invalid_signature", "{err}");
}

#[test]
fn a_cms_that_kyso_assembles_verifies_and_binds_its_content() {
    let certificate = read("org.der");
    let digest = digest_of("data.txt");
    let attrs = cms_build::signed_attributes(&digest, Utc::now(), &certificate).expect("attrs");
    let to_sign = cms_build::signed_attributes_digest(&attrs);
    let out = Command::new("openssl")
        .args(["pkeyutl", "-sign", "-pkeyopt", "digest:sha256", "-inkey"])
        .arg(dir().join("org.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(&to_sign)?;
            child.wait_with_output()
        })
        .expect("openssl signs");
    assert!(out.status.success());
    let cms = cms_build::assemble(
        &attrs,
        &out.stdout,
        Scheme::Pkcs1v15,
        &certificate,
        &[read("issuing-ca.der")],
    )
    .expect("assembles");
    let verdict = verify_cms(&cms, &digest, &root(), Utc::now(), &[]).expect("kyso accepts it");
    assert_eq!(verdict.identity.tax_code.as_deref(), Some("0100686209-199"));
    let err = verify_cms(&cms, &digest_of("other.txt"), &root(), Utc::now(), &[])
        .expect_err("other content");
    assert_eq!(err.code(), "invalid_signature");
}

#[tokio::test]
async fn evidence_about_another_certificate_leaves_the_status_unknown() {
    let verifier = Verifier::offline(evidence(&["ocsp-resp-person.der"], &[]));
    let verdict = verifier
        .verify(
            &Signed::new("revoked").check(),
            &root(),
            RevocationPolicy::Prefer,
        )
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
        .verify(
            &Signed::new("person").check(),
            &root(),
            RevocationPolicy::Require,
        )
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
        .verify(
            &Signed::new("revoked").check(),
            &root(),
            RevocationPolicy::Off,
        )
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
            .verify(
                &Signed::new("person").check(),
                &root(),
                RevocationPolicy::Require,
            )
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
        .verify(
            &Signed::new("revoked").check(),
            &root(),
            RevocationPolicy::Prefer,
        )
        .await
        .expect_err("revoked by the CRL");
    assert_eq!(refusal.code(), "revoked_certificate");
    let detail = refusal.verification.revocation_detail.unwrap_or_default();
    assert!(detail.starts_with("CRL"), "{detail}");
    let verdict = verifier
        .verify(
            &Signed::new("person").check(),
            &root(),
            RevocationPolicy::Prefer,
        )
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
        .verify(
            &Signed::new("person").check(),
            &root(),
            RevocationPolicy::Prefer,
        )
        .await
        .expect("prefer");
    assert_eq!(verdict.verification.revocation, "unknown");
    let detail = verdict.verification.revocation_detail.unwrap_or_default();
    assert!(detail.contains("nonce"), "{detail}");
}

/// `openssl ocsp` serving the fixture CA's index on a free loopback port; killed on drop.
struct Responder {
    child: Child,
    port: u16,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_responder() -> Responder {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new("openssl")
        .current_dir(dir())
        .args(["ocsp", "-index", "ca/index.txt", "-port", &port.to_string()])
        .args([
            "-rsigner",
            "ocsp-responder.pem",
            "-rkey",
            "ocsp-responder.key",
        ])
        .args(["-CA", "issuing-ca.pem"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl ocsp starts");
    // It prints `ACCEPT …` once listening. A probe connection would not do: the responder
    // serves one connection at a time and gives up on one that closes without a request.
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("ACCEPT") {
                let _ = tx.send(());
            }
        }
    });
    let responder = Responder { child, port };
    rx.recv_timeout(Duration::from_secs(10))
        .expect("openssl ocsp listens within 10 s");
    responder
}

#[tokio::test]
async fn openssl_s_own_responder_answers_good_and_revoked_with_our_nonce() {
    let responder = start_responder();
    // The fixtures' AIA names 127.0.0.1:18888; point it at the port we got.
    let options = OnlineOptions {
        timeout: Duration::from_secs(5),
        rewrites: vec![(
            "http://127.0.0.1:18888".into(),
            format!("http://127.0.0.1:{}", responder.port),
        )],
    };
    let verifier = Verifier::online(&options).expect("client builds");
    let good = verifier
        .verify(
            &Signed::new("person").check(),
            &root(),
            RevocationPolicy::Require,
        )
        .await
        .expect("person is good");
    assert_eq!(good.verification.revocation, "good");
    let detail = good.verification.revocation_detail.unwrap_or_default();
    assert!(detail.starts_with("OCSP"), "{detail}");
    let refusal = verifier
        .verify(
            &Signed::new("revoked").check(),
            &root(),
            RevocationPolicy::Require,
        )
        .await
        .expect_err("revoked");
    assert_eq!(refusal.code(), "revoked_certificate", "{refusal}");
    drop(responder);
}

#[tokio::test]
async fn an_unreachable_responder_and_crl_leave_prefer_unknown_and_require_refused() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let options = OnlineOptions {
        timeout: Duration::from_secs(2),
        rewrites: vec![(
            "http://127.0.0.1:18888".into(),
            format!("http://127.0.0.1:{port}"),
        )],
    };
    let verifier = Verifier::online(&options).expect("client builds");
    let verdict = verifier
        .verify(
            &Signed::new("person").check(),
            &root(),
            RevocationPolicy::Prefer,
        )
        .await
        .expect("prefer");
    assert_eq!(verdict.verification.revocation, "unknown");
    let refusal = verifier
        .verify(
            &Signed::new("person").check(),
            &root(),
            RevocationPolicy::Require,
        )
        .await
        .expect_err("require");
    assert_eq!(refusal.code(), "untrusted_certificate");
    assert!(refusal.to_string().contains("revocation"), "{refusal}");
}

#[tokio::test]
async fn a_cms_goes_through_revocation_like_a_raw_signature() {
    let verifier = Verifier::offline(evidence(&[], &["issuing-ca.crl"]));
    let content = digest_of("data.txt");
    let check = CmsCheck {
        cms: &read("cms-org.der"),
        content_digest: &content,
        extra_certificates: &[],
        at: Utc::now(),
    };
    let verdict = verifier
        .verify_cms(&check, &root(), RevocationPolicy::Require)
        .await
        .expect("org is not on the CRL");
    assert_eq!(verdict.verification.revocation, "good");
}
