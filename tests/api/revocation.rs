//! Revocation of signers' certificates through the mock carriers' PKI: the engine asks the
//! mock's OCSP responder named in each certificate's AIA, falls back to the mock's CRL when the
//! responder is unreachable, and applies the provider's policy (`require` | `prefer` | `off`)
//! when neither answers.

use std::net::TcpListener;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_overriding, TestApp};

const GOOD: &str = "001099012345";
const REVOKED: &str = "001099012501";

async fn outcome(app: &TestApp, signer: &str) -> Value {
    let s = app.start(signer, json!({})).await;
    app.finish(s["id"].as_str().expect("id"), 40).await
}

/// `(OCSP requests, CRL downloads)` the app's mock has served.
async fn fetches(app: &TestApp) -> (u64, u64) {
    let stats = app.mock_json(reqwest::Method::GET, "/admin/stats").await;
    let n = |k: &str| {
        stats[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no {k} in {stats}"))
    };
    (n("ocsp_requests"), n("crl_requests"))
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Restarts `app` with the mock's revocation URLs under `path` sent to a closed port.
async fn cut_off(app: &mut TestApp, path: &str) {
    let rewrite = json!([{
        "from": format!("http://{}{path}", app.mock.addr),
        "to": format!("http://127.0.0.1:{}{path}", closed_port()),
    }]);
    app.restart_with(vec![("revocation.rewrites".into(), rewrite)])
        .await;
}

fn policy(p: &str) -> Vec<(String, Value)> {
    vec![("providers.vnpt-smartca.revocation".into(), json!(p))]
}

#[tokio::test]
async fn a_good_certificate_is_signed_with_revocation_good_from_ocsp() {
    let app = spawn_app().await;
    let s = outcome(&app, GOOD).await;
    assert_eq!(s["status"], "signed", "{s}");
    let v = &s["result"]["verification"];
    assert_eq!(v["revocation"], "good", "{s}");
    assert!(
        v["revocation_detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("OCSP")),
        "{s}"
    );
}

#[tokio::test]
async fn a_revoked_signer_is_refused_by_ocsp() {
    let app = spawn_app().await;
    let s = outcome(&app, REVOKED).await;
    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["error"]["code"], "revoked_certificate", "{s}");
}

#[tokio::test]
async fn with_the_responder_unreachable_the_crl_refuses_a_revoked_signer() {
    let mut app = spawn_app().await;
    cut_off(&mut app, "/ocsp/").await;
    let s = outcome(&app, REVOKED).await;
    assert_eq!(s["error"]["code"], "revoked_certificate", "{s}");
    assert!(
        s["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("revoked")),
        "{s}"
    );
    let good = outcome(&app, GOOD).await;
    let v = &good["result"]["verification"];
    assert_eq!(v["revocation"], "good", "{good}");
    assert!(
        v["revocation_detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("CRL")),
        "{good}"
    );
}

#[tokio::test]
async fn prefer_signs_with_revocation_unknown_when_nothing_answers() {
    let mut app = spawn_app().await;
    cut_off(&mut app, "/").await;
    let s = outcome(&app, GOOD).await;
    assert_eq!(s["status"], "signed", "{s}");
    assert_eq!(s["result"]["verification"]["revocation"], "unknown", "{s}");
}

#[tokio::test]
async fn require_fails_the_session_when_nothing_answers() {
    let mut app = spawn_app_overriding(500, policy("require")).await;
    let ok = outcome(&app, GOOD).await;
    assert_eq!(
        ok["status"], "signed",
        "require is met while the responder answers: {ok}"
    );
    cut_off(&mut app, "/").await;
    let s = outcome(&app, "001099012346").await;
    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["error"]["code"], "untrusted_certificate", "{s}");
    let message = s["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("revocation status could not be established"),
        "{message}"
    );
}

#[tokio::test]
async fn off_asks_nobody_and_says_not_checked() {
    // Positive control: with the default policy the same flow does ask the responder.
    let asking = spawn_app().await;
    outcome(&asking, GOOD).await;
    assert!(
        fetches(&asking).await.0 >= 1,
        "the default policy asks OCSP"
    );

    let app = spawn_app_overriding(500, policy("off")).await;
    let s = outcome(&app, REVOKED).await;
    assert_eq!(fetches(&app).await, (0, 0), "nobody was asked");
    assert_eq!(s["status"], "signed", "{s}");
    assert_eq!(
        s["result"]["verification"]["revocation"], "not_checked",
        "{s}"
    );
}
