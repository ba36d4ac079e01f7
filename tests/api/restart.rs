//! `kill -9` with sessions waiting on phones: after a restart every one resumes, completes, and
//! caused exactly one prompt at the provider.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{root_path, spawn_mock, test_config_toml, KEY};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start(config: &std::path::Path, port: u16) -> Gateway {
    let child = Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args(["serve", "--config"])
        .arg(config)
        .env("KYSO_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kyso");
    let gw = Gateway(child);
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return gw;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("kyso did not become ready");
}

#[tokio::test]
async fn pending_sessions_resume_after_kill_9_with_one_prompt_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mock = spawn_mock(dir.path(), 300).await;
    let root = root_path(dir.path(), &mock);
    let config = dir.path().join("kyso.toml");
    std::fs::write(
        &config,
        test_config_toml(&dir.path().join("kyso.db"), mock.addr, &root),
    )
    .expect("config");
    let port = free_port();
    let mut gateway = start(&config, port).await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");

    let signers = ["001099020999", "001099021999", "0101234999"];
    let mut ids = Vec::new();
    for signer in signers {
        ids.push(crate::cluster::create_at(&http, &base, signer, "register").await);
    }
    // Wait until every request is on a phone, then kill the gateway without warning.
    for id in &ids {
        let mut on_phone = false;
        for _ in 0..100 {
            let s: Value = http
                .get(format!("{base}/v1/signatures/{id}"))
                .bearer_auth(KEY)
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            if s["status"] == "awaiting_user" {
                on_phone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(on_phone, "{id} reached the phone before the kill");
    }
    gateway.0.kill().expect("kill -9");
    let _ = gateway.0.wait();
    // Each session's work names its signer's certificate bundle, stored once apart; the new
    // process, which has never seen them, reads them back to verify the signatures.
    {
        let mut db = open_db(&dir.path().join("kyso.db")).await;
        let works: Vec<String> = sqlx::query_scalar("SELECT work FROM sessions")
            .fetch_all(&mut db)
            .await
            .expect("works");
        assert_eq!(works.len(), ids.len());
        for work in &works {
            let work: Value = serde_json::from_str(work).expect("work json");
            assert!(work.get("certificate").is_none(), "{work}");
            assert_eq!(
                work["certificate_ref"].as_str().map(str::len),
                Some(64),
                "{work}"
            );
        }
        let bundles: i64 = sqlx::query_scalar("SELECT count(*) FROM cert_bundles")
            .fetch_one(&mut db)
            .await
            .expect("bundles");
        assert_eq!(bundles, signers.len() as i64);
    }

    let port2 = free_port();
    let _gateway2 = start(&config, port2).await;
    let base2 = format!("http://127.0.0.1:{port2}");
    let admin = format!("http://{}", mock.addr);
    for signer in signers {
        let list: Value = http
            .get(format!(
                "{admin}/admin/requests?signer={signer}&status=pending"
            ))
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        let list = list["requests"].as_array().cloned().unwrap_or_default();
        assert_eq!(list.len(), 1, "one prompt for {signer}");
        let rid = list[0]["id"].as_str().expect("rid");
        http.post(format!("{admin}/admin/requests/{rid}/approve"))
            .json(&json!({}))
            .send()
            .await
            .expect("approve");
    }
    for id in &ids {
        let s: Value = http
            .get(format!("{base2}/v1/signatures/{id}?wait=20"))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(s["status"], "signed", "{s}");
    }
    let stats: Value = http
        .get(format!("{admin}/admin/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    for id in &ids {
        assert_eq!(stats["sign_requests"][format!("kyso-{id}")], 1, "{stats}");
    }
}

#[tokio::test]
async fn a_graceful_restart_keeps_waiting_sessions_and_their_event_sequence() {
    let (app, id, rid) = on_phone_after_restart("001099022999").await;
    assert!(app.dir.path().join("kyso.db").exists());
    app.approve(&rid).await;
    let done = app.finish(&id, 20).await;
    assert_eq!(done["status"], "signed", "{done}");
    let mut ws = app.ws("?after=0", Some(KEY)).await;
    let events = ws.until_terminal(&id, 5).await;
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3],
        "the outbox sequence continues across the restart"
    );
}

/// A session of `signer` on the phone, after a graceful restart (so no bundle is held in
/// memory): the app, the session id and the phone request's id.
async fn on_phone_after_restart(signer: &str) -> (crate::helpers::TestApp, String, String) {
    let mut app = crate::helpers::spawn_app().await;
    let s = app.start(signer, json!({})).await;
    let id = s["id"].as_str().expect("id").to_owned();
    let rid = app.first_prompt(signer).await;
    app.restart().await;
    (app, id, rid)
}

/// A connection to the SQLite file at `path`, beside the gateway's.
async fn open_db(path: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", path.display());
    sqlx::SqliteConnection::connect(&url)
        .await
        .expect("open db")
}

/// A session whose stored certificate bundle is gone (deleted by hand, a restore without that
/// table) cannot have its signature checked: it ends failed and says why, rather than retrying
/// a read that cannot succeed.
#[tokio::test]
async fn a_session_whose_stored_certificate_is_lost_ends_failed() {
    let (app, id, rid) = on_phone_after_restart("001099023999").await;
    let mut db = open_db(&app.dir.path().join("kyso.db")).await;
    let gone = sqlx::query("DELETE FROM cert_bundles")
        .execute(&mut db)
        .await
        .expect("delete");
    assert_eq!(gone.rows_affected(), 1);
    app.approve(&rid).await;
    let done = app.finish(&id, 20).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "untrusted_certificate", "{done}");
    let message = done["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("is lost"), "{done}");
}

/// Work written before bundles were stored apart carries the certificate inline, and still
/// verifies (here with the bundle table emptied, so nothing else could supply it).
#[tokio::test]
async fn a_work_state_with_its_certificate_inline_still_verifies() {
    let (app, id, rid) = on_phone_after_restart("001099024999").await;
    let mut db = open_db(&app.dir.path().join("kyso.db")).await;
    let inlined = sqlx::query(
        "UPDATE sessions SET work = json_set(json_remove(work, '$.certificate_ref'),
                                             '$.certificate', json(b.bundle))
         FROM cert_bundles b WHERE sessions.work ->> '$.certificate_ref' = b.digest",
    )
    .execute(&mut db)
    .await
    .expect("inline");
    assert_eq!(inlined.rows_affected(), 1);
    sqlx::query("DELETE FROM cert_bundles")
        .execute(&mut db)
        .await
        .expect("delete");
    app.approve(&rid).await;
    let done = app.finish(&id, 20).await;
    assert_eq!(done["status"], "signed", "{done}");
}
