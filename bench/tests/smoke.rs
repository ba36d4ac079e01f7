//! A short run of the whole benchmark (tiny N, a few seconds per phase), so the harness cannot
//! rot: every phase must run and print its row. The figures themselves are not judged here —
//! a debug build on a busy CI machine says nothing about SPEC §9.

use std::process::Command;

#[test]
fn a_tiny_run_prints_a_row_for_every_measurement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_kyso-bench"))
        .args([
            "--quick",
            "--held",
            "200",
            "--overload",
            "300",
            "--hold-secs",
            "1",
            "--provider-rate",
            "100",
            "--sessions",
            "100",
            "--instances",
            "1,2",
            "--latency-events",
            "100",
            "--limit-secs",
            "1",
            "--signers",
            "2",
            "--concurrency",
            "8",
            "--window",
            "64",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run kyso-bench");
    let table = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kyso-bench failed:\n{table}\n{log}");
    for row in [
        "signatures verified, first time",
        "signatures verified, signer known (cached)",
        "bare axum GET /",
        "mock SmartCA alone",
        "SQLite, 1 SmartCA instance",
        "SQLite, 2 SmartCA instances",
        "PostgreSQL, 1 SmartCA instance",
        "callback → WebSocket",
        "create → phone prompt",
        "200 pending: gateway peak RSS",
        "200 pending: provider calls, busiest 1 s",
        "SQLite, 300 due: sessions signed",
        "SQLite, 300 due: gateway CPU",
        "PostgreSQL, 300 due: sessions signed",
        "alone: 8 CAs, one key (raw)",
        "/healthz, under attack",
        "another tenant's create, under attack",
    ] {
        assert!(
            table.lines().any(|l| l.starts_with('|') && l.contains(row)),
            "no `{row}` row in:\n{table}"
        );
    }
    assert!(!table.contains("ERROR"), "a phase failed:\n{table}");
    let postgres = table
        .lines()
        .find(|l| l.contains("PostgreSQL, 1 SmartCA instance"))
        .unwrap_or_default();
    if postgres.contains("skipped") {
        assert!(
            std::env::var("KYSO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "PostgreSQL is required (KYSO_REQUIRE_POSTGRES=1) but the bench skipped it: {postgres}"
        );
        eprintln!("notice: the PostgreSQL row was skipped: {postgres}");
    }
}
