//! Test harness: the real gateway router on port 0, the real mock carriers on port 0, a real
//! SQLite file, and a real WebSocket client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use chrono::Utc;
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use futures_util::StreamExt;
use kyso::config::{hash_api_key, Config};
use kyso::dev::{set, MockSite};
use kyso::domain::{Format as SignatureFormat, Purpose, Session, SessionId, Status};
use kyso::startup::Application;
use kyso::store::NewSession;
use mock_carriers::{MockCarriers, MockConfig};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub const KEY: &str = "test-key-dvc";
pub const OTHER_KEY: &str = "test-key-other";

pub struct Mock {
    pub addr: SocketAddr,
    pub carriers: MockCarriers,
    _stop: oneshot::Sender<()>,
}

pub async fn spawn_mock(state_dir: &Path, approve_delay_ms: u64) -> Mock {
    let carriers = MockCarriers::new(MockConfig {
        state_dir: state_dir.join("mock"),
        approve_delay_ms,
        ..MockConfig::default()
    })
    .expect("mock carriers");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
    let addr = listener.local_addr().expect("mock addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(mock_carriers::serve(listener, carriers.clone(), async {
        let _ = stopped.await;
    }));
    Mock {
        addr,
        carriers,
        _stop: stop,
    }
}

/// The gateway's config for tests: two tenants, the dev stack's mock providers
/// ([`kyso::dev::mock_providers`]) with short timings.
pub fn test_config_toml(db: &Path, mock: SocketAddr, root: &Path) -> String {
    let header = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[database]
url = "sqlite://{db}"
[engine]
tick_ms = 100
min_timeout_s = 1
[events]
ping_interval_s = 1
send_timeout_s = 2
[[tenants]]
id = "dvc-portal"
api_key_sha256 = "{k1}"
rate_per_s = 1000
signer_requests_per_minute = 12
[[tenants]]
id = "other-portal"
api_key_sha256 = "{k2}"
"#,
        db = db.display(),
        k1 = hash_api_key(KEY),
        k2 = hash_api_key(OTHER_KEY),
    );
    let site = MockSite {
        addr: &mock.to_string(),
        root: &root.display().to_string(),
        // start_gateway points this at the gateway's port; polling is only the safety net.
        gateway: "http://127.0.0.1:9",
    };
    let mut providers = kyso::dev::mock_providers(&site);
    let ids: Vec<(String, String)> = providers
        .iter()
        .map(|(id, p)| {
            (
                id.clone(),
                p["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for (id, kind) in ids {
        set(&mut providers, &format!("{id}.default_timeout_s"), 60);
        set(&mut providers, &format!("{id}.retry_budget_ms"), 2500);
        set(
            &mut providers,
            &format!("{id}.{kind}.request_timeout_ms"),
            8000,
        );
        let poll_ms = match id.as_str() {
            "vnpt-smartca" | "viettel-sim" => Some(150),
            // Notified by the MSSP; polling is the slow safety net.
            "vnpt-sim" => Some(4000),
            _ => None,
        };
        if let Some(ms) = poll_ms {
            set(&mut providers, &format!("{id}.{kind}.poll_first_ms"), ms);
            set(&mut providers, &format!("{id}.{kind}.poll_interval_ms"), ms);
        }
    }
    let mut root = toml::Table::new();
    root.insert("providers".into(), toml::Value::Table(providers));
    let providers = toml::to_string(&root).expect("the providers render as TOML");
    format!("{header}\n{providers}")
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// Config keys (dotted paths) set over the test config, kept across restarts.
    overrides: Vec<(String, Value)>,
    pub mock: Mock,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(500).await
}

pub async fn spawn_app_with(approve_delay_ms: u64) -> TestApp {
    spawn_app_overriding(approve_delay_ms, Vec::new()).await
}

/// A test app whose config has `overrides` (dotted key paths, e.g.
/// `providers.viettel-sim.mssp.messaging_mode`) set over the test config.
pub async fn spawn_app_overriding(
    approve_delay_ms: u64,
    overrides: Vec<(String, Value)>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mock = spawn_mock(dir.path(), approve_delay_ms).await;
    let (addr, stop, done) = start_gateway(dir.path(), &mock, &overrides).await;
    TestApp {
        addr,
        overrides,
        mock,
        http: reqwest::Client::new(),
        dir,
        stop: Some(stop),
        done: Some(done),
    }
}

pub fn root_path(dir: &Path, mock: &Mock) -> PathBuf {
    let root = dir.join("root.der");
    std::fs::write(&root, mock.carriers.root_der()).expect("write root");
    root
}

async fn start_gateway(
    dir: &Path,
    mock: &Mock,
    overrides: &[(String, Value)],
) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let root = root_path(dir, mock);
    let toml = test_config_toml(&dir.join("kyso.db"), mock.addr, &root);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let bound = listener.local_addr().expect("gateway addr");
    // MSSPs post asynchServerServer notifications to the port just bound.
    let callback_base = ["viettel-sim", "vnpt-sim", "mobifone-sim"].map(|id| {
        let key = format!("providers.{id}.mssp.public_callback_base");
        (key, Value::String(format!("http://{bound}")))
    });
    let mut figment = Figment::from(Toml::string(&toml));
    for (key, value) in callback_base.iter().chain(overrides) {
        figment = figment.merge(Serialized::default(key, value));
    }
    let config = Config::from_figment(figment).expect("config");
    let app = Application::with_listener(config, listener)
        .await
        .expect("build app");
    let addr = app.local_addr();
    mock.carriers
        .set_smartca_webhook_url(Some(format!("http://{addr}/callbacks/vnpt-smartca")));
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        app.run(async {
            let _ = stopped.await;
        })
        .await
        .expect("gateway run");
    });
    (addr, stop, done)
}

pub fn digest_of(data: &[u8]) -> String {
    BASE64_STANDARD.encode(Sha256::digest(data))
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the gateway gracefully and starts a new one on the same database.
    pub async fn restart(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
        let (addr, stop, done) = start_gateway(self.dir.path(), &self.mock, &self.overrides).await;
        self.addr = addr;
        self.stop = Some(stop);
        self.done = Some(done);
    }

    /// Restarts with more config overrides, for ones that need the mock's address.
    pub async fn restart_with(&mut self, more: Vec<(String, Value)>) {
        self.overrides.extend(more);
        self.restart().await;
    }

    pub async fn post_signature(&self, body: &Value, key: &str) -> reqwest::Response {
        self.http
            .post(self.url("/v1/signatures"))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Creates a session and returns its JSON, asserting 201.
    pub async fn start(&self, signer: &str, extra: Value) -> Value {
        self.start_as(KEY, signer, extra).await
    }

    /// Creates a session for the tenant of `key` and returns its JSON, asserting 201.
    pub async fn start_as(&self, key: &str, signer: &str, extra: Value) -> Value {
        let mut body = json!({
            "provider": "vnpt-smartca",
            "signer": signer,
            "purpose": "register",
            "digest": digest_of(signer.as_bytes()),
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let resp = self.post_signature(&body, key).await;
        assert_eq!(resp.status(), 201, "create {signer}");
        resp.json().await.expect("session json")
    }

    pub async fn get(&self, id: &str, wait: u64) -> Value {
        self.get_as(KEY, id, wait).await
    }

    /// Reads a session of the tenant of `key`, long-polling up to `wait` seconds.
    pub async fn get_as(&self, key: &str, id: &str, wait: u64) -> Value {
        let resp = self
            .http
            .get(self.url(&format!("/v1/signatures/{id}?wait={wait}")))
            .bearer_auth(key)
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("json")
    }

    /// Long-polls until the session is terminal (at most `secs`).
    pub async fn finish(&self, id: &str, secs: u64) -> Value {
        self.finish_as(KEY, id, secs).await
    }

    /// [`Self::finish`] for the tenant of `key`.
    pub async fn finish_as(&self, key: &str, id: &str, secs: u64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.get_as(key, id, 10).await;
            let status = s["status"].as_str().unwrap_or_default().to_owned();
            if !["pending", "awaiting_user"].contains(&status.as_str())
                || tokio::time::Instant::now() > deadline
            {
                return s;
            }
        }
    }

    pub async fn mock_json(&self, method: reqwest::Method, path: &str) -> Value {
        self.http
            .request(method, format!("http://{}{}", self.mock.addr, path))
            .json(&json!({}))
            .send()
            .await
            .expect("mock admin")
            .json()
            .await
            .expect("mock json")
    }

    /// The mock's pending phone requests for a signer, waiting until one shows up.
    pub async fn phone_requests(&self, signer: &str) -> Vec<Value> {
        for _ in 0..100 {
            let v = self
                .mock_json(
                    reqwest::Method::GET,
                    &format!("/admin/requests?signer={signer}&status=pending"),
                )
                .await;
            let list = v["requests"].as_array().cloned().unwrap_or_default();
            if !list.is_empty() {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Vec::new()
    }

    /// The id of the first phone request for `signer` (waiting until it shows up).
    pub async fn first_prompt(&self, signer: &str) -> String {
        self.phone_requests(signer).await[0]["id"]
            .as_str()
            .expect("a prompt on the phone")
            .to_owned()
    }

    /// The user approves phone request `rid` at the mock.
    pub async fn approve(&self, rid: &str) {
        let path = format!("/admin/requests/{rid}/approve");
        self.mock_json(reqwest::Method::POST, &path).await;
    }

    pub async fn ws(&self, query: &str, key: Option<&str>) -> WsClient {
        let mut req = format!("ws://{}/v1/events{query}", self.addr)
            .into_client_request()
            .expect("ws request");
        if let Some(k) = key {
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {k}").parse().expect("header"),
            );
        }
        let (stream, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("ws connect");
        WsClient { stream }
    }
}

pub struct WsClient {
    pub stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl WsClient {
    /// The next event frame (pings are skipped), or None after `secs`.
    pub async fn next_event(&mut self, secs: u64) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
                .ok()?;
            if let Message::Text(t) = msg {
                return serde_json::from_str(&t).ok();
            }
        }
    }

    /// Events until one for `session` reaches a terminal state.
    pub async fn until_terminal(&mut self, session: &str, secs: u64) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(ev) = self.next_event(secs).await {
            let done = ev["session"]["id"] == session
                && !["pending", "awaiting_user"]
                    .contains(&ev["session"]["status"].as_str().unwrap_or_default());
            seen.push(ev);
            if done {
                break;
            }
        }
        seen
    }
}

/// A pending SmartCA session of `tenant` for `signer`, with `reference`, five minutes to go.
pub fn smartca_session(tenant: &str, signer: &str, reference: &str) -> Session {
    let now = Utc::now();
    Session {
        id: SessionId::generate(),
        tenant: tenant.into(),
        provider: "vnpt-smartca".into(),
        signer: signer.into(),
        purpose: Purpose::Register,
        reference: Some(reference.into()),
        status: Status::Pending,
        verification_code: "1234".into(),
        digest: [9; 32],
        display_text: "x".into(),
        document_name: None,
        format: SignatureFormat::Pkcs1,
        created_at: now,
        expires_at: now + chrono::Duration::seconds(300),
        completed_at: None,
        result: None,
        error: None,
    }
}

/// A create of `s` (no lease).
pub fn new_session(s: &Session, key: Option<&str>, hash: u8, allow_concurrent: bool) -> NewSession {
    NewSession {
        session: s.clone(),
        idempotency_key: key.map(str::to_owned),
        request_hash: [hash; 32],
        allow_concurrent,
        lease_until: None,
    }
}
