//! Spawning a mock on port 0 with its own state directory, a SmartCA client, and certificate
//! helpers built on the `rsa` and `x509-cert` crates (independent of the mock's aws-lc-rs).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use mock_carriers::{MockCarriers, MockConfig};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

pub const SP_ID: &str = "kyso-dev";
pub const SP_PASSWORD: &str = "kyso-dev-secret";
pub const DELAY_MS: u64 = 100;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub struct TestMock {
    pub base: String,
    pub mock: MockCarriers,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestMock {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn spawn_mock() -> TestMock {
    spawn_mock_with(|_| {}).await
}

pub async fn spawn_mock_with(tweak: impl FnOnce(&mut MockConfig)) -> TestMock {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = MockConfig {
        state_dir: dir.path().to_path_buf(),
        approve_delay_ms: DELAY_MS,
        ..MockConfig::default()
    };
    tweak(&mut config);
    let mock = MockCarriers::new(config).expect("mock carriers start");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mock_carriers::serve(listener, mock.clone(), async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    TestMock {
        base: format!("http://{addr}"),
        mock,
        http,
        _dir: dir,
        stop: Some(stop),
    }
}

impl TestMock {
    /// `(pushes sent, pushes answered)` once no push sent so far is on its way.
    pub async fn pushes_settled(&self) -> (u64, u64) {
        self.mock.pushes_settled(Duration::from_secs(20)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
    }

    /// POST expecting HTTP 200 and a JSON body.
    pub async fn post_ok(&self, path: &str, body: &Value) -> Value {
        let resp = self.post(path, body).await.expect("request sent");
        assert_eq!(resp.status(), 200, "HTTP status for {path}");
        resp.json().await.expect("JSON body")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request sent");
        resp.json().await.expect("JSON body")
    }

    pub async fn certificates(&self, user_id: &str) -> Value {
        let body = json!({"sp_id": SP_ID, "sp_password": SP_PASSWORD, "user_id": user_id,
                          "transaction_id": "cert-1"});
        self.post_ok("/sca/sp769/v1/credentials/get_certificate", &body)
            .await
    }

    pub async fn sign(&self, user_id: &str, transaction_id: &str, digest: &[u8; 32]) -> Value {
        self.post_ok(
            "/sca/sp769/v1/signatures/sign",
            &sign_body(user_id, transaction_id, digest),
        )
        .await
    }

    pub async fn status(&self, id: &str) -> Value {
        self.post_ok(
            &format!("/sca/sp769/v1/signatures/sign/{id}/status"),
            &json!({}),
        )
        .await
    }

    /// Polls status until `status_code`/`signatures` leave the waiting state (or 5 s pass).
    pub async fn wait_final(&self, id: &str) -> Value {
        for _ in 0..100 {
            let s = self.status(id).await;
            if s["status_code"] != 200 || !s["data"]["signatures"].is_null() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{id} still waiting");
    }
}

pub fn sign_body(user_id: &str, transaction_id: &str, digest: &[u8; 32]) -> Value {
    json!({
        "sp_id": SP_ID, "sp_password": SP_PASSWORD, "user_id": user_id,
        "transaction_id": transaction_id,
        "transaction_desc": "Dang ky tai khoan DVC - ma 4821",
        "time_stamp": "20261128153000Z",
        "sign_files": [{"data_to_be_signed": hex::encode(digest), "doc_id": "register-4821",
                        "file_type": "json", "sign_type": "hash"}]
    })
}

pub fn digest_of(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

pub fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().expect("base64 string"))
        .expect("valid base64")
}

pub fn parse_cert(der: &[u8]) -> Certificate {
    Certificate::from_der(der).expect("certificate parses")
}

pub fn public_key(cert: &Certificate) -> RsaPublicKey {
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .expect("SPKI encodes");
    RsaPublicKey::from_public_key_der(&spki).expect("RSA public key")
}

/// RSA PKCS#1 v1.5 / SHA-256 verification of a signature over a precomputed digest.
pub fn verifies(cert: &Certificate, digest: &[u8], signature: &[u8]) -> bool {
    public_key(cert)
        .verify(Pkcs1v15Sign::new::<Sha256>(), digest, signature)
        .is_ok()
}

/// Whether `issuer` signed `cert` (sha256WithRSAEncryption).
pub fn issued_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let tbs = cert.tbs_certificate.to_der().expect("TBS encodes");
    let sig = cert.signature.raw_bytes();
    verifies(issuer, &Sha256::digest(&tbs), sig)
}

/// Subject attribute values with the given dotted OID, decoded as text.
pub fn subject_values(cert: &Certificate, oid: &str) -> Vec<String> {
    cert.tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid.to_string() == oid)
        .map(|atv| String::from_utf8_lossy(atv.value.value()).into_owned())
        .collect()
}

/// Webhooks received, as (path, body).
pub type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A local HTTP listener taking webhooks on any `/hooks/{name}`; returns its base URL.
pub async fn webhook_listener() -> (String, Received) {
    let seen: Received = Arc::default();
    let sink = seen.clone();
    let app = axum::Router::new().route(
        "/hooks/{name}",
        axum::routing::post(
            move |axum::extract::Path(name): axum::extract::Path<String>,
                  axum::Json(body): axum::Json<Value>| {
                let sink = sink.clone();
                async move {
                    sink.lock().expect("lock").push((name, body));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

/// Waits (at most 5 s) until `n` webhooks arrived, then a little longer so a stray extra one
/// would show, and returns them all.
pub async fn received(seen: &Received, n: usize) -> Vec<(String, Value)> {
    for _ in 0..100 {
        if seen.lock().expect("lock").len() >= n {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return seen.lock().expect("lock").clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} webhooks arrived");
}
