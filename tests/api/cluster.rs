//! Three gateway processes on one PostgreSQL database: 300 sessions created across them, one
//! instance killed with SIGKILL mid-flight. Every session ends, every session prompted exactly
//! one phone, and a WebSocket on a surviving instance receives every event of its tenant in
//! sequence order with no gap — including events of sessions other instances drove.

use std::collections::{BTreeMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{digest_of, root_path, spawn_mock, test_config_toml, KEY};
use crate::pg::fresh_db;

const SESSIONS: usize = 300;

/// Creates a SmartCA session for `signer` with `purpose` on the gateway at `base` (a separate
/// `kyso` process); answers its id, asserting 201.
pub(crate) async fn create_at(
    http: &reqwest::Client,
    base: &str,
    signer: &str,
    purpose: &str,
) -> String {
    let resp = http
        .post(format!("{base}/v1/signatures"))
        .bearer_auth(KEY)
        .json(
            &json!({"provider": "vnpt-smartca", "signer": signer, "purpose": purpose,
            "digest": digest_of(signer.as_bytes())}),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), 201, "create {signer}");
    let s: Value = resp.json().await.expect("json");
    s["id"].as_str().expect("id").to_owned()
}

pub(crate) struct Instance {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub(crate) async fn start(config: &std::path::Path, db: &str) -> Instance {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args(["serve", "--config"])
        .arg(config)
        .env("KYSO_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("KYSO_DATABASE__URL", db)
        .env("KYSO_DATABASE__LEASE_S", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kyso");
    let inst = Instance {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http
            .get(format!("{}/readyz", inst.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return inst;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("instance did not become ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_lose_nothing_and_prompt_once_when_one_is_killed() {
    let Some(db) = fresh_db("cluster").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mock = spawn_mock(dir.path(), 200).await;
    let root = root_path(dir.path(), &mock);
    let config = dir.path().join("kyso.toml");
    std::fs::write(
        &config,
        test_config_toml(&dir.path().join("unused.db"), mock.addr, &root),
    )
    .expect("config");
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(start(&config, &db.url).await);
    }
    // The survivor's WebSocket, from the beginning of the tenant's stream.
    let mut req = format!(
        "{}/v1/events?after=0",
        instances[0].base.replace("http", "ws")
    )
    .into_client_request()
    .expect("ws request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {KEY}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("ws");

    let http = reqwest::Client::new();
    let bases: Vec<String> = instances.iter().map(|i| i.base.clone()).collect();
    let mut ids = Vec::new();
    let mut killed = false;
    for n in 0..SESSIONS {
        if n == SESSIONS / 3 && !killed {
            instances[2].child.kill().expect("SIGKILL");
            let _ = instances[2].child.wait();
            killed = true;
        }
        let alive = if killed { 2 } else { 3 };
        let base = &bases[n % alive];
        // Ends in 123: an ordinary signer, never one of the mock's behaviour suffixes.
        let signer = format!("00109{n:04}123");
        ids.push(create_at(&http, base, &signer, "sign").await);
        tokio::time::sleep(Duration::from_millis(u64::from(n as u32 * 7919 % 5))).await;
    }

    // Every session reaches a terminal state; read them through the survivor.
    let started = Instant::now();
    let mut pending: HashSet<String> = ids.iter().cloned().collect();
    let mut seqs = Vec::new();
    let mut terminal_seen: BTreeMap<String, String> = BTreeMap::new();
    while terminal_seen.len() < SESSIONS && started.elapsed() < Duration::from_secs(120) {
        let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await
        else {
            break;
        };
        let Message::Text(t) = msg else { continue };
        let ev: Value = serde_json::from_str(&t).expect("event json");
        seqs.push(ev["seq"].as_i64().expect("seq"));
        let status = ev["session"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !["pending", "awaiting_user"].contains(&status.as_str()) {
            let id = ev["session"]["id"].as_str().unwrap_or_default().to_owned();
            pending.remove(&id);
            terminal_seen.insert(id, status);
        }
    }
    assert!(
        pending.is_empty(),
        "{} sessions never reached a terminal event",
        pending.len()
    );
    assert!(
        terminal_seen.values().all(|s| s == "signed"),
        "{terminal_seen:?}"
    );
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "every event, in sequence order, no gap");
    assert_eq!(
        seqs.len(),
        SESSIONS * 3,
        "pending, awaiting_user and signed for each"
    );

    // Exactly one phone prompt per session, whichever instance sent it.
    let stats: Value = http
        .get(format!("http://{}/admin/stats", mock.addr))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["prompts"].as_u64(), Some(SESSIONS as u64), "{stats}");
    let resent = ids
        .iter()
        .filter(|id| stats["sign_requests"][format!("kyso-{id}")].as_u64() != Some(1))
        .count();
    eprintln!(
        "cluster: {SESSIONS} sessions done in {:?} after the last create; sign requests re-sent after takeover: {resent}",
        started.elapsed()
    );
}
