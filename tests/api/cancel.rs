//! Cancelling a session while its start races: a start not yet sent is withheld (no prompt
//! reaches the phone), one in flight is waited for and the session says the prompt stays
//! (neither SmartCA SP769 nor the ETSI MSSPs can withdraw one), and certificate listings go
//! through the provider's circuit breaker.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{digest_of, spawn_app_overriding, TestApp, KEY};

async fn delete(app: &TestApp, id: &str) -> Value {
    let resp = app
        .http
        .delete(app.url(&format!("/v1/signatures/{id}")))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("cancel");
    assert_eq!(resp.status(), 200, "cancel {id}");
    resp.json().await.expect("session json")
}

/// Waits (at most 20 s) until the mock has seen `n` sign calls for `signer`.
async fn sign_calls_reach(app: &TestApp, signer: &str, n: u64) {
    for _ in 0..1000 {
        if app.mock_calls(signer).await["sign"].as_u64() >= Some(n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the mock never saw {n} sign calls for {signer}");
}

/// Waits (at most 10 s) until `series` exceeds `above`.
async fn metric_exceeds(app: &TestApp, series: &str, above: f64) -> f64 {
    for _ in 0..200 {
        let v = app.metric(series).await;
        if v > above {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} stayed at {above}");
}

#[tokio::test]
async fn a_cancel_between_start_attempts_withholds_the_next_and_no_prompt_reaches_the_phone() {
    // A flaky signer: the first two calls of each kind fail, so the start is retried (with a
    // budget long enough to reach the third sign call, which would prompt).
    let app = spawn_app_overriding(
        500,
        vec![(
            "providers.vnpt-smartca.retry_budget_ms".into(),
            json!(10_000),
        )],
    )
    .await;
    let signer = "001099041901";
    let withheld = r#"kyso_starts_withheld_total{provider="vnpt-smartca"}"#;
    let before = app.metric(withheld).await;
    let s = app.start(signer, json!({})).await;
    let id = s["id"].as_str().expect("id");
    // The first sign call failed (503); the step backs off before the next attempt.
    sign_calls_reach(&app, signer, 1).await;
    let cancelled = delete(&app, id).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    // The step's next attempt is withheld: its retries end there.
    metric_exceeds(&app, withheld, before).await;
    let sign_calls = app.mock_calls(signer).await["sign"].as_u64();
    assert!(sign_calls <= Some(2), "{sign_calls:?} sign calls");
    assert_eq!(app.all_prompts(signer).await, Vec::<Value>::new());
    assert_eq!(app.get(id, 0).await["status"], "cancelled");
}

#[tokio::test]
async fn a_cancel_during_an_in_flight_start_waits_for_it_and_says_the_prompt_stays() {
    let app = spawn_app_overriding(500, Vec::new()).await;
    // A slow signer: the MSSP answers every call after 5 s, so the start is in flight a while.
    let body = json!({
        "provider": "viettel-sim", "signer": "0912342902", "purpose": "register",
        "digest": digest_of(b"in flight"),
    });
    let signer = "84912342902";
    let after_cancel = r#"kyso_prompts_after_cancel_total{provider="viettel-sim"}"#;
    let before = app.metric(after_cancel).await;
    let resp = app.post_signature(&body, KEY).await;
    assert_eq!(resp.status(), 201);
    let s: Value = resp.json().await.expect("json");
    let id = s["id"].as_str().expect("id");
    sign_calls_reach(&app, signer, 1).await;
    assert_eq!(
        app.get(id, 0).await["status"],
        "pending",
        "the start is in flight"
    );
    let cancelled = delete(&app, id).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(
        cancelled["error"]["code"], "prompt_not_withdrawn",
        "{cancelled}"
    );
    // The cancel answered after the start did: the prompt is on the phone, exactly once.
    assert_eq!(app.all_prompts(signer).await.len(), 1);
    assert!(app.metric(after_cancel).await > before);
    let read = app.get(id, 0).await;
    assert_eq!(read["status"], "cancelled");
    assert_eq!(read["error"]["code"], "prompt_not_withdrawn", "{read}");
}

#[tokio::test]
async fn cancelling_a_session_on_the_phone_says_the_prompt_stays_where_the_protocol_cannot_withdraw_it(
) {
    let app = spawn_app_overriding(500, Vec::new()).await;
    let sim = json!({
        "provider": "viettel-sim", "signer": "0912343999", "purpose": "register",
        "digest": digest_of(b"on the phone"),
    });
    let resp = app.post_signature(&sim, KEY).await;
    assert_eq!(resp.status(), 201);
    let sim: Value = resp.json().await.expect("json");
    let smartca = app.start("001099043999", json!({})).await;
    for (s, signer) in [(&smartca, "001099043999"), (&sim, "84912343999")] {
        app.first_prompt(signer).await;
        let id = s["id"].as_str().expect("id");
        let cancelled = delete(&app, id).await;
        assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
        assert_eq!(
            cancelled["error"]["code"], "prompt_not_withdrawn",
            "{cancelled}"
        );
        assert!(
            cancelled["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("cannot withdraw")),
            "{cancelled}"
        );
    }
}

#[tokio::test]
async fn certificates_go_through_the_breaker_and_an_open_circuit_calls_no_provider() {
    let app = spawn_app_overriding(
        500,
        vec![("providers.vnpt-smartca.circuit_failures".into(), json!(1))],
    )
    .await;
    let list = |signer: &'static str| {
        app.http
            .get(app.url(&format!(
                "/v1/certificates?provider=vnpt-smartca&signer={signer}"
            )))
            .bearer_auth(KEY)
            .send()
    };
    let good = "001099044345";
    let resp = list(good).await.expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(app.mock_calls(good).await["certificates"], 1);
    // Every call for this signer fails: one failure opens the circuit.
    let resp = list("001099044900").await.expect("send");
    assert_eq!(resp.status(), 503);
    let resp = list(good).await.expect("send");
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.expect("json");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("circuit")),
        "{v}"
    );
    assert_eq!(
        app.mock_calls(good).await["certificates"],
        1,
        "the open circuit called no provider"
    );
}
