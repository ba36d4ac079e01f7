//! `kyso dev`, the real binary: configured by its flags alone. A `KYSO_…` setting in the
//! environment (a production database, a listen address) makes it refuse to start, naming the
//! variable and never its value; with only the variables it allows, it keeps its database in
//! `--state-dir` and listens where `--listen` says.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `kyso dev` on free ports, with `vars` as its whole environment.
fn kyso_dev(state_dir: &Path, listen: &str, vars: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args(["dev", "--listen", listen, "--mock-listen", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(state_dir)
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kyso dev starts")
}

/// Waits up to `limit` for the process to exit; a process still running is killed.
fn exit_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    text
}

#[test]
fn kyso_dev_refuses_to_start_with_a_production_setting_in_the_environment_and_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let production = dir.path().join("production.db");
    let production_url = format!("sqlite://{}?mode=rwc", production.display());
    for (name, value) in [
        ("KYSO_DATABASE__URL", production_url.as_str()),
        ("KYSO_SERVER__LISTEN", "127.0.0.1:1"),
        ("kyso_tenants", "[{id=\"prod-s3cret\"}]"),
    ] {
        let state = tempfile::tempdir().expect("tempdir");
        let mut child = kyso_dev(
            state.path(),
            "127.0.0.1:0",
            &[(name, value), ("KYSO_DEV_API_KEY", "kyso_dev_test")],
        );
        let status = exit_within(&mut child, Duration::from_secs(20));
        let stderr = stderr_of(&mut child);
        let status = status.unwrap_or_else(|| panic!("kyso dev started with {name} set"));
        assert!(!status.success(), "{name}: {status}");
        assert!(stderr.contains(name), "{name}: {stderr}");
        assert!(
            !stderr.contains(value),
            "{name}: the value is not printed: {stderr}"
        );
        assert!(
            !production.exists(),
            "{name}: the production database was opened"
        );
        assert!(
            !state.path().join("kyso-dev.db").exists(),
            "{name}: nothing started"
        );
    }
}

#[test]
fn kyso_dev_listens_where_its_flags_say_and_keeps_its_database_in_the_state_dir() {
    let state = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = kyso_dev(
        state.path(),
        &listen,
        &[
            ("KYSO_DEV_API_KEY", "kyso_dev_test"),
            ("KYSO_LOG_FORMAT", "json"),
            ("KYSO_TEST_POSTGRES_URL", "postgres://127.0.0.1:1/none"),
        ],
    );
    let stdout = child.stdout.take().expect("stdout");
    let gateway = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take(20)
        .find_map(|l| {
            l.trim()
                .strip_prefix("gateway")
                .map(|a| a.trim().to_owned())
        });
    let running = child.try_wait().ok().flatten().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let stderr = stderr_of(&mut child);
    assert!(running, "kyso dev stopped: {stderr}");
    assert_eq!(gateway, Some(format!("http://{listen}")), "{stderr}");
    assert!(state.path().join("kyso-dev.db").exists(), "{stderr}");
}
