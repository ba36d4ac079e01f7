//! Every SmartCA-relevant row of the mock's behaviour table (SPEC §7) ends in the state it
//! implies.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

async fn outcome(app: &TestApp, signer: &str, extra: Value) -> Value {
    let s = app.start(signer, extra).await;
    app.finish(s["id"].as_str().expect("id"), 40).await
}

fn assert_failed(s: &Value, code: &str) {
    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["error"]["code"], code, "{s}");
}

#[tokio::test]
async fn a_user_who_refuses_ends_rejected() {
    let app = spawn_app().await;
    let s = outcome(&app, "001099012401", json!({})).await;
    assert_eq!(s["status"], "rejected", "{s}");
}

#[tokio::test]
async fn a_blocked_pin_ends_failed_pin_blocked_with_the_provider_code() {
    let app = spawn_app().await;
    let s = outcome(&app, "001099012402", json!({})).await;
    assert_failed(&s, "pin_blocked");
    assert!(s["error"]["provider_code"].is_string(), "{s}");
}

#[tokio::test]
async fn a_signer_without_certificate_ends_failed_no_certificate() {
    let app = spawn_app().await;
    let s = outcome(&app, "001099012404", json!({})).await;
    assert_failed(&s, "no_certificate");
}

#[tokio::test]
async fn a_signer_who_never_answers_expires() {
    let app = spawn_app().await;
    let s = outcome(&app, "001099012208", json!({"timeout_s": 2})).await;
    assert_eq!(s["status"], "expired", "{s}");
}

#[tokio::test]
async fn a_corrupted_signature_is_refused() {
    let app = spawn_app().await;
    let s = outcome(&app, "001099012503", json!({})).await;
    assert_failed(&s, "invalid_signature");
}

#[tokio::test]
async fn a_signature_over_another_digest_is_refused() {
    let app = spawn_app().await;
    let s = outcome(&app, "001099012505", json!({})).await;
    assert_failed(&s, "invalid_signature");
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let app = spawn_app().await;
    let s = outcome(&app, "001099012422", json!({})).await;
    assert_failed(&s, "certificate_expired");
}

#[tokio::test]
async fn a_provider_that_always_fails_ends_provider_unavailable() {
    let app = spawn_app().await;
    let s = outcome(&app, "001099012900", json!({"timeout_s": 4})).await;
    assert_failed(&s, "provider_unavailable");
}

#[tokio::test]
async fn two_transient_failures_are_retried_and_the_signature_completes_with_one_prompt() {
    let app = spawn_app().await;
    let s = outcome(&app, "001099012901", json!({})).await;
    assert_eq!(s["status"], "signed", "{s}");
    let stats = app.mock_json(reqwest::Method::GET, "/admin/stats").await;
    let tx = format!("kyso-{}", s["id"].as_str().expect("id"));
    assert_eq!(stats["sign_requests"][&tx], 1, "{stats}");
}

#[tokio::test]
async fn a_slow_provider_still_completes() {
    let app = spawn_app().await;
    let s = outcome(&app, "001099012902", json!({})).await;
    assert_eq!(s["status"], "signed", "{s}");
}

#[tokio::test]
async fn a_revoked_signer_ends_failed_revoked_certificate() {
    // The mock revokes every `…501` certificate; its OCSP responder says so.
    let app = spawn_app().await;
    let s = outcome(&app, "001099012501", json!({})).await;
    assert_failed(&s, "revoked_certificate");
}
