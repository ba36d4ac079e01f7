//! The USB-token path (`/v1/challenges`, `/v1/verifications`) with `[usb]` trusting the OpenSSL
//! fixture root: every case of the fixture manifest gets its verdict, revocation included (by
//! OpenSSL's own OCSP responder, and by the CRL when that responder is down), challenges are
//! single-use and per tenant, and what cannot be judged is a 400.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_overriding, TestApp, KEY, OTHER_KEY};

pub(crate) fn fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file)
}

pub(crate) fn b64(file: &str) -> String {
    BASE64_STANDARD.encode(std::fs::read(fixture(file)).expect("fixture"))
}

pub(crate) fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The fixtures' AIA and CRL DP name 127.0.0.1:18888; `[revocation] rewrites` send them here.
async fn app_with_revocation(ocsp_port: u16, crl_port: u16) -> TestApp {
    let rewrites = json!([
        {"from": "http://127.0.0.1:18888/ocsp", "to": format!("http://127.0.0.1:{ocsp_port}/ocsp")},
        {"from": "http://127.0.0.1:18888/issuing-ca.crl",
         "to": format!("http://127.0.0.1:{crl_port}/issuing-ca.crl")},
    ]);
    let anchors = json!([fixture("root-ca.pem").display().to_string()]);
    spawn_app_overriding(
        500,
        vec![
            ("usb.trust_anchors".into(), anchors),
            ("revocation.rewrites".into(), rewrites),
            ("revocation.timeout_ms".into(), json!(2000)),
        ],
    )
    .await
}

/// `openssl ocsp` over the fixture CA's index; killed on drop.
struct Responder(Child);

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_responder(port: u16) -> Responder {
    let mut child = Command::new("openssl")
        .current_dir(fixture(""))
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
    // It prints `ACCEPT …` once listening; a probe connection would make it give up.
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
    let responder = Responder(child);
    rx.recv_timeout(Duration::from_secs(10))
        .expect("openssl ocsp listens within 10 s");
    responder
}

/// Serves the fixture CRL at `/issuing-ca.crl`.
async fn serve_crl() -> u16 {
    let crl = std::fs::read(fixture("issuing-ca.crl")).expect("crl");
    let app = axum::Router::new().route(
        "/issuing-ca.crl",
        axum::routing::get(move || {
            let crl = crl.clone();
            async move { crl }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

/// POSTs `body` as tenant `key`; the status and the JSON answer (null when not JSON).
pub(crate) async fn post(app: &TestApp, path: &str, body: &Value, key: &str) -> (u16, Value) {
    let resp = app
        .http
        .post(app.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Every manifest case through the API; the revoked case must say which source refused it.
async fn every_case(app: &TestApp, revoked_by: &str) {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(fixture("manifest.json")).expect("manifest"))
            .expect("manifest parses");
    for case in manifest["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().unwrap_or("?");
        let format = match case["scheme"].as_str() {
            Some("pss-sha256-salt32") => "pss",
            _ => "pkcs1",
        };
        let body = json!({
            "digest": manifest["digest_b64"],
            "signature": b64(case["sig"].as_str().expect("sig")),
            "certificate": b64(case["cert"].as_str().expect("cert")),
            "chain": [b64("issuing-ca.der")],
            "format": format,
        });
        let (status, answer) = post(app, "/v1/verifications", &body, KEY).await;
        let verdict = case["verdict"].as_str().expect("verdict");
        if verdict == "valid" {
            assert_eq!(status, 200, "{name}: {answer}");
            assert_eq!(
                answer["verification"]["revocation"], "good",
                "{name}: {answer}"
            );
            for (field, expected) in case["identity"].as_object().into_iter().flatten() {
                assert_eq!(&answer["identity"][field], expected, "{name}: {field}");
            }
        } else {
            assert_eq!(status, 422, "{name}: {answer}");
            assert_eq!(answer["error"]["code"], verdict, "{name}: {answer}");
            assert!(
                answer["verification"].is_object(),
                "{name}: the verdict comes along"
            );
        }
        if name == "revoked" {
            let detail = answer["verification"]["revocation_detail"]
                .as_str()
                .unwrap_or("");
            assert!(detail.starts_with(revoked_by), "{name}: {detail}");
        }
    }
}

#[tokio::test]
async fn every_manifest_case_gets_its_verdict_with_openssl_answering_ocsp() {
    let port = free_port();
    let _responder = start_responder(port);
    let app = app_with_revocation(port, free_port()).await;
    every_case(&app, "OCSP").await;
}

#[tokio::test]
async fn every_manifest_case_gets_its_verdict_from_the_crl_when_ocsp_is_down() {
    let crl_port = serve_crl().await;
    let app = app_with_revocation(free_port(), crl_port).await;
    every_case(&app, "CRL").await;
}

/// What the browser plugin does: SHA-256 with RSA over the nonce bytes.
pub(crate) fn plugin_signs(nonce: &[u8], dir: &Path) -> Vec<u8> {
    let nonce_path = dir.join("nonce.bin");
    std::fs::write(&nonce_path, nonce).expect("write nonce");
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(fixture("person.key"))
        .arg(&nonce_path)
        .output()
        .expect("openssl dgst");
    assert!(out.status.success());
    out.stdout
}

pub(crate) async fn challenge(app: &TestApp, key: &str) -> (String, Vec<u8>) {
    let (status, c) = post(app, "/v1/challenges", &json!({}), key).await;
    assert_eq!(status, 201, "{c}");
    assert!(c["expires_at"].is_string());
    let nonce = BASE64_STANDARD
        .decode(c["nonce"].as_str().expect("nonce"))
        .expect("base64 nonce");
    assert_eq!(nonce.len(), 32);
    (c["id"].as_str().expect("id").to_owned(), nonce)
}

#[tokio::test]
async fn a_signed_challenge_verifies_once_and_only_for_its_tenant() {
    let app = app_with_revocation(free_port(), free_port()).await;
    let (id, nonce) = challenge(&app, KEY).await;
    let body = json!({
        "challenge_id": id,
        "signature": BASE64_STANDARD.encode(plugin_signs(&nonce, app.dir.path())),
        // PEM text, and base64 of a PEM file: both are what portals send.
        "certificate": std::fs::read_to_string(fixture("person.pem")).expect("pem"),
        "chain": [b64("issuing-ca.pem")],
        "format": "pkcs1",
        "signer": "001099012345",
    });
    let (status, _) = post(&app, "/v1/verifications", &body, OTHER_KEY).await;
    assert_eq!(
        status, 404,
        "another tenant's challenge is unknown to this one"
    );
    let (status, answer) = post(&app, "/v1/verifications", &body, KEY).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["verdict"], "valid");
    assert_eq!(answer["identity"]["name"], "Trần Thị Thanh Thủy");
    assert_eq!(answer["verification"]["revocation"], "unknown", "{answer}");
    let (status, again) = post(&app, "/v1/verifications", &body, KEY).await;
    assert_eq!(status, 404, "{again}");
    assert_eq!(again["error"]["code"], "challenge_not_found");
}

#[tokio::test]
async fn a_cms_over_the_challenge_verifies_without_a_separate_certificate() {
    let app = app_with_revocation(free_port(), free_port()).await;
    let (id, nonce) = challenge(&app, KEY).await;
    let nonce_path = app.dir.path().join("nonce.bin");
    std::fs::write(&nonce_path, &nonce).expect("write nonce");
    let out = Command::new("openssl")
        .args([
            "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER", "-in",
        ])
        .arg(&nonce_path)
        .arg("-signer")
        .arg(fixture("org.pem"))
        .arg("-inkey")
        .arg(fixture("org.key"))
        .arg("-certfile")
        .arg(fixture("issuing-ca.pem"))
        .output()
        .expect("openssl cms");
    assert!(out.status.success());
    let body = json!({
        "challenge_id": id,
        "signature": BASE64_STANDARD.encode(out.stdout),
        "format": "cms",
    });
    let (status, answer) = post(&app, "/v1/verifications", &body, KEY).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["identity"]["tax_code"], "0100686209-199");
}

#[tokio::test]
async fn input_that_cannot_be_judged_is_a_400_and_keeps_the_challenge() {
    let app = app_with_revocation(free_port(), free_port()).await;
    let (id, _) = challenge(&app, KEY).await;
    let cases = [
        json!({"challenge_id": id, "signature": "***", "certificate": b64("person.der"), "format": "pkcs1"}),
        json!({"challenge_id": id, "digest": BASE64_STANDARD.encode([0u8; 32]),
               "signature": "AAAA", "certificate": b64("person.der"), "format": "pkcs1"}),
        json!({"challenge_id": id, "signature": "AAAA", "format": "pkcs1"}),
        json!({"digest": BASE64_STANDARD.encode([0u8; 20]), "signature": "AAAA",
               "certificate": b64("person.der"), "format": "pkcs1"}),
        json!({"challenge_id": id, "signature": "AAAA", "format": "sha1"}),
    ];
    for body in cases {
        let (status, answer) = post(&app, "/v1/verifications", &body, KEY).await;
        assert_eq!(status, 400, "{body} -> {answer}");
    }
    let body = json!({"challenge_id": id, "signature": "AAAA",
                      "certificate": b64("person.der"), "format": "pkcs1"});
    let (status, answer) = post(&app, "/v1/verifications", &body, KEY).await;
    assert_eq!(status, 422, "the challenge was still usable: {answer}");
    assert_eq!(answer["error"]["code"], "invalid_signature");
    assert_eq!(answer["verification"]["signature"], "invalid");
}

#[tokio::test]
async fn without_usb_trust_anchors_the_path_is_unavailable() {
    let app = spawn_app().await;
    let body = json!({"digest": BASE64_STANDARD.encode([0u8; 32]), "signature": "AAAA",
                      "certificate": b64("person.der"), "format": "pkcs1"});
    let (status, answer) = post(&app, "/v1/verifications", &body, KEY).await;
    assert_eq!(status, 503, "{answer}");
    let resp = app
        .http
        .post(app.url("/v1/challenges"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401, "challenges need an API key");
}

/// One fixture signature over the manifest digest, sent with the issuing CA.
async fn verify_fixture(
    app: &TestApp,
    cert: &str,
    sig: &str,
    signer: Option<&str>,
) -> (u16, Value) {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(fixture("manifest.json")).expect("manifest"))
            .expect("manifest parses");
    let mut body = json!({
        "digest": manifest["digest_b64"],
        "signature": b64(sig),
        "certificate": b64(cert),
        "chain": [b64("issuing-ca.der")],
        "format": "pkcs1",
    });
    if let Some(signer) = signer {
        body["signer"] = json!(signer);
    }
    post(app, "/v1/verifications", &body, KEY).await
}

#[tokio::test]
async fn a_social_insurance_number_never_passes_for_the_tax_code_with_the_same_digits() {
    let app = app_with_revocation(free_port(), free_port()).await;
    for signer in ["MST_0100686209", "MST:0100686209", "0100686209"] {
        let (status, answer) =
            verify_fixture(&app, "bhxh.der", "sig-bhxh.pkcs1", Some(signer)).await;
        assert_eq!(status, 422, "{signer}: {answer}");
        assert_eq!(answer["error"]["code"], "signer_mismatch", "{signer}");
        assert_eq!(answer["identity"]["social_insurance"], "0100686209");
    }
    let (status, answer) =
        verify_fixture(&app, "bhxh.der", "sig-bhxh.pkcs1", Some("BHXH_0100686209")).await;
    assert_eq!(
        status, 200,
        "the same number typed as BHXH is this signer: {answer}"
    );
}

#[tokio::test]
async fn a_certificate_for_tls_servers_only_may_not_sign_but_one_for_secure_email_may() {
    let app = app_with_revocation(free_port(), free_port()).await;
    let (status, answer) =
        verify_fixture(&app, "tls-server.der", "sig-tls-server.pkcs1", None).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "untrusted_certificate");
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("serverAuth"), "{message}");
    for (cert, sig) in [
        ("secure-email.der", "sig-secure-email.pkcs1"),
        ("person.der", "sig-person.pkcs1"),
    ] {
        let (status, answer) = verify_fixture(&app, cert, sig, Some("001099012345")).await;
        assert_eq!(status, 200, "{cert}: {answer}");
        assert_eq!(answer["verdict"], "valid");
    }
}
