//! Configuration the gateway cannot run with, and background tasks that die: both must stop
//! the process loudly rather than leave an instance that answers ok and moves no session.

use std::time::{Duration, Instant};

use figment::providers::{Format, Toml};
use figment::Figment;
use kyso::config::Config;
use kyso::startup::Application;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::helpers::{digest_of, root_path, spawn_mock, test_config_toml, KEY};

#[tokio::test]
async fn a_scheduler_that_dies_makes_readiness_fail_and_the_run_end_in_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mock = spawn_mock(dir.path(), 300).await;
    let root = root_path(dir.path(), &mock);
    let toml = test_config_toml(&dir.path().join("kyso.db"), mock.addr, &root);
    let mut config = Config::from_figment(Figment::from(Toml::string(&toml))).expect("config");
    // Forced past validation: the scheduler panicked on this once a session was due.
    config.engine.tick_ms = 1;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let app = Application::with_listener(config, listener)
        .await
        .expect("build");
    let base = format!("http://{}", app.local_addr());
    let run = tokio::spawn(app.run(std::future::pending()));
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/v1/signatures"))
        .bearer_auth(KEY)
        .json(
            &json!({"provider": "vnpt-smartca", "signer": "001099012345",
            "purpose": "register", "digest": digest_of(b"x")}),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let deadline = Instant::now() + Duration::from_secs(10);
    let ended = loop {
        if run.is_finished() {
            break run.await.expect("run task");
        }
        assert!(
            Instant::now() < deadline,
            "the gateway kept running with a dead scheduler"
        );
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 503 {
                let body: Value = r.json().await.expect("json");
                assert_eq!(body["status"], "not_ready", "{body}");
                assert!(
                    body["failed"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("scheduler"),
                    "{body}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let err = ended.expect_err("run ends in an error");
    assert!(err.to_string().contains("scheduler` panicked"), "{err}");
}

#[test]
fn serve_with_a_setting_out_of_range_exits_non_zero_naming_the_key() {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/local.toml");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path())
        .env("KYSO_ENGINE__TICK_MS", "1")
        .env("KYSO_SERVER__LISTEN", "127.0.0.1:0")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn kyso");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kyso serve started with engine.tick_ms = 1");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("`engine.tick_ms` = 1"), "{stderr}");
    assert!(stderr.contains("10..=60000"), "{stderr}");
}
