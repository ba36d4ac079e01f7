//! A holder frozen past its lease, then resumed (issue 16 item 1): two gateway processes on one
//! PostgreSQL database, sessions created on A whose provider answers take 5 s (signer suffix
//! `902`). A is stopped with SIGSTOP while its starts are in flight, B takes the sessions over
//! once A's 2 s leases lapse, and A is resumed with SIGCONT. A's steps write nothing
//! (`kyso_lease_lost_total` counts them), every session ends signed, and each prompted one
//! phone with at most one repeated sign request (B's, same transaction id).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{create_at, start};
use crate::helpers::{root_path, spawn_mock, test_config_toml, KEY};
use crate::pg::fresh_db;

const SESSIONS: usize = 4;

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success(), "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_paused_past_its_lease_writes_nothing_when_resumed() {
    let Some(db) = fresh_db("lease_cluster").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mock = spawn_mock(dir.path(), 200).await;
    let root = root_path(dir.path(), &mock);
    let config = dir.path().join("kyso.toml");
    let toml = test_config_toml(&dir.path().join("unused.db"), mock.addr, &root);
    std::fs::write(&config, toml).expect("config");
    let a = start(&config, &db.url).await;
    let b = start(&config, &db.url).await;
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in 0..SESSIONS {
        let signer = format!("00109{n:04}902");
        ids.push(create_at(&http, &a.base, &signer, "sign").await);
    }
    // A's starts are in flight (each answer takes 5 s): freeze A past its 2 s lease.
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(a.child.id(), "-STOP");
    tokio::time::sleep(Duration::from_secs(5)).await;
    signal(a.child.id(), "-CONT");

    // Every session ends signed (read through B).
    let started = Instant::now();
    for id in &ids {
        loop {
            let s: Value = http
                .get(format!("{}/v1/signatures/{id}", b.base))
                .bearer_auth(KEY)
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            let status = s["status"].as_str().unwrap_or_default().to_owned();
            if status == "signed" {
                break;
            }
            assert!(
                !["rejected", "failed", "expired", "cancelled"].contains(&status.as_str()),
                "{s}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "not signed: {s}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let metrics = http
        .get(format!("{}/metrics", a.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let lost: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("kyso_lease_lost_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(lost >= 1.0, "A noticed no lost lease:\n{metrics}");

    let stats: Value = http
        .get(format!("http://{}/admin/stats", mock.addr))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["prompts"].as_u64(), Some(SESSIONS as u64), "{stats}");
    for id in &ids {
        let sent = stats["sign_requests"][format!("kyso-{id}")].as_u64();
        assert!(
            matches!(sent, Some(1 | 2)),
            "{id}: {sent:?} sign requests; {stats}"
        );
    }
    eprintln!(
        "lease_cluster: A abandoned {lost} steps; all signed in {:?}",
        started.elapsed()
    );
}
