//! A provider limited below what the portals ask of it: tenants share it fairly, and sessions
//! still expire on time while it has no tokens or its circuit is open.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_overriding, TestApp, KEY, OTHER_KEY};

/// Signers ending in 7: no mock behaviour row ends so, each approves at once.
fn approving(i: usize) -> String {
    format!("00109960{i:03}7")
}

async fn signed_count(app: &TestApp, key: &str) -> usize {
    let resp = app
        .http
        .get(app.url("/v1/signatures?status=signed&limit=200"))
        .bearer_auth(key)
        .send()
        .await
        .expect("list");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("list json");
    body["items"].as_array().map_or(0, Vec::len)
}

/// Tenant A queues 60 sessions on a provider allowed 20 calls/s (about 7 sessions a second);
/// tenant B then asks for 5. Served in order of arrival B would wait for all of A's; served
/// fairly (each pass splits the provider's capacity among the tenants with work due) B's are
/// signed while most of A's still wait.
#[tokio::test]
async fn one_tenants_burst_does_not_starve_another_tenant() {
    let app = spawn_app_overriding(
        0,
        vec![("providers.vnpt-smartca.rate_per_s".into(), json!(20))],
    )
    .await;
    for i in 0..60 {
        app.start_as(KEY, &approving(i), json!({})).await;
    }
    let mut b = Vec::new();
    for i in 100..105 {
        let s = app.start_as(OTHER_KEY, &approving(i), json!({})).await;
        b.push(s["id"].as_str().expect("id").to_owned());
    }
    for id in &b {
        let s = app.finish_as(OTHER_KEY, id, 30).await;
        assert_eq!(s["status"], "signed", "{s}");
    }
    let a_done = signed_count(&app, KEY).await;
    assert!(
        a_done <= 40,
        "tenant B's five sessions finished only after {a_done} of tenant A's 60"
    );
    assert_eq!(signed_count(&app, OTHER_KEY).await, 5);
}

fn at(s: &Value, field: &str) -> DateTime<Utc> {
    s[field]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{field} in {s}"))
}

/// Sessions that never get a provider call (the provider allows 2 calls a second; 30 are
/// waiting) end `expired` at their deadline, not when tokens come.
#[tokio::test]
async fn sessions_expire_on_time_while_their_provider_has_no_tokens() {
    let app = spawn_app_overriding(
        0,
        vec![("providers.vnpt-smartca.rate_per_s".into(), json!(2))],
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let signer = format!("0010997{i:02}208");
        let s = app.start_as(KEY, &signer, json!({"timeout_s": 2})).await;
        ids.push(s["id"].as_str().expect("id").to_owned());
    }
    for id in &ids {
        let s = app.finish_as(KEY, id, 20).await;
        assert_eq!(s["status"], "expired", "{s}");
        let late = at(&s, "completed_at") - at(&s, "expires_at");
        assert!(
            late < chrono::Duration::milliseconds(1_500),
            "expired {late} after its deadline: {s}"
        );
    }
}
