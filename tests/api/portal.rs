//! The portal API's contract: validation, authentication, idempotency, tenant isolation,
//! signer_busy, long polling, listing and cancelling.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{digest_of, spawn_app, KEY, OTHER_KEY};

fn body(signer: &str) -> Value {
    json!({"provider": "vnpt-smartca", "signer": signer, "purpose": "login", "digest": digest_of(b"x")})
}

async fn error_of(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.expect("error body is JSON");
    (
        status,
        v["error"]["code"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn every_bad_input_gets_a_clear_json_error() {
    let app = spawn_app().await;
    let mut cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"provider": "nope", "signer": "001099012345", "purpose": "login", "digest": digest_of(b"x")}),
            400,
            "unknown_provider",
        ),
        (
            json!({"provider": "vnpt-smartca", "signer": "001099012345", "purpose": "login", "digest": digest_of(b"x"), "color": "red"}),
            400,
            "invalid_request",
        ),
        (
            json!({"provider": "vnpt-smartca", "signer": "001099012345", "purpose": "login", "digest": "AAAA"}),
            400,
            "invalid_request",
        ),
        (
            json!({"provider": "vnpt-smartca", "signer": "001099012345", "purpose": "login", "digest": "%%%not base64"}),
            400,
            "invalid_request",
        ),
        (
            json!({"provider": "vnpt-smartca", "signer": "00109901234x", "purpose": "login", "digest": digest_of(b"x")}),
            400,
            "invalid_request",
        ),
        (
            json!({"provider": "vnpt-smartca", "signer": "001099012345", "purpose": "login", "digest": digest_of(b"x"), "timeout_s": 601}),
            400,
            "invalid_request",
        ),
        (
            json!({"provider": "vnpt-smartca", "signer": "001099012345", "purpose": "dance", "digest": digest_of(b"x")}),
            400,
            "invalid_request",
        ),
        (
            json!({"provider": "vnpt-smartca", "signer": "001099012345", "purpose": "login"}),
            400,
            "invalid_request",
        ),
    ];
    cases.push((body("001099012345"), 201, ""));
    for (b, status, code) in cases {
        let resp = app.post_signature(&b, KEY).await;
        if status == 201 {
            assert_eq!(resp.status(), 201);
            continue;
        }
        assert_eq!(error_of(resp).await, (status, code.to_owned()), "{b}");
    }
    let malformed = app
        .http
        .post(app.url("/v1/signatures"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{\"provider\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(error_of(malformed).await, (400, "malformed_json".into()));
    let huge = app
        .http
        .post(app.url("/v1/signatures"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(vec![b' '; 3_000_000])
        .send()
        .await
        .expect("send");
    assert_eq!(error_of(huge).await, (413, "payload_too_large".into()));
}

#[tokio::test]
async fn callers_without_a_valid_key_are_refused() {
    let app = spawn_app().await;
    let none = app
        .http
        .post(app.url("/v1/signatures"))
        .json(&body("001099012345"))
        .send()
        .await
        .expect("send");
    assert_eq!(error_of(none).await, (401, "unauthorized".into()));
    let wrong = app.post_signature(&body("001099012345"), "guess").await;
    assert_eq!(error_of(wrong).await, (401, "unauthorized".into()));
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_session_and_a_changed_body_is_refused() {
    let app = spawn_app().await;
    let send = |b: Value| {
        app.http
            .post(app.url("/v1/signatures"))
            .bearer_auth(KEY)
            .header("Idempotency-Key", "order-77")
            .json(&b)
            .send()
    };
    let first = send(body("001099012999")).await.expect("send");
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    let again = send(body("001099012999")).await.expect("send");
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.expect("json");
    assert_eq!(first["id"], again["id"]);
    let changed = send(body("001099012998")).await.expect("send");
    assert_eq!(
        error_of(changed).await,
        (422, "idempotency_mismatch".into())
    );
}

#[tokio::test]
async fn idempotent_replays_do_not_spend_the_signers_quota() {
    // The test tenant allows 12 requests per signer per minute; 20 replays are all answered.
    let app = spawn_app().await;
    let send = |key: &'static str, api_key: &'static str| {
        app.http
            .post(app.url("/v1/signatures"))
            .bearer_auth(api_key)
            .header("Idempotency-Key", key)
            .json(&body("001099014999"))
            .send()
    };
    let first = send("order-90", KEY).await.expect("send");
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    for n in 0..20 {
        let again = send("order-90", KEY).await.expect("send");
        assert_eq!(again.status(), 200, "replay {n}");
        let again: Value = again.json().await.expect("json");
        assert_eq!(again["id"], first["id"]);
    }
    // A replay is still authenticated.
    let stranger = send("order-90", "guess").await.expect("send");
    assert_eq!(error_of(stranger).await, (401, "unauthorized".into()));
    // The signer's quota is untouched: after a cancel, a new request for them is accepted.
    let id = first["id"].as_str().expect("id");
    let cancel = app
        .http
        .delete(app.url(&format!("/v1/signatures/{id}")))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("cancel");
    assert_eq!(cancel.status(), 200);
    let fresh = send("order-91", KEY).await.expect("send");
    assert_eq!(fresh.status(), 201);
}

#[tokio::test]
async fn a_signer_with_a_pending_request_is_busy() {
    let app = spawn_app().await;
    app.start("001099012999", json!({})).await;
    let again = app.post_signature(&body("001099012999"), KEY).await;
    assert_eq!(error_of(again).await, (409, "signer_busy".into()));
}

#[tokio::test]
async fn another_tenants_session_is_not_found() {
    let app = spawn_app().await;
    let s = app.start("001099012999", json!({})).await;
    let id = s["id"].as_str().expect("id");
    for req in [
        app.http.get(app.url(&format!("/v1/signatures/{id}"))),
        app.http.delete(app.url(&format!("/v1/signatures/{id}"))),
    ] {
        let resp = req.bearer_auth(OTHER_KEY).send().await.expect("send");
        assert_eq!(error_of(resp).await, (404, "not_found".into()));
    }
    let list: Value = app
        .http
        .get(app.url("/v1/signatures"))
        .bearer_auth(OTHER_KEY)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn a_long_poll_answers_as_soon_as_the_session_is_terminal() {
    let app = spawn_app().await;
    let s = app.start("001099012999", json!({})).await;
    let id = s["id"].as_str().expect("id").to_owned();
    let rid = app.first_prompt("001099012999").await;
    let started = Instant::now();
    let approve = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        app.approve(&rid).await;
    };
    let (done, _) = tokio::join!(app.get(&id, 30), approve);
    assert_eq!(done["status"], "signed", "{done}");
    assert!(started.elapsed() < Duration::from_secs(15));

    // Without an answer it returns the current state after the wait.
    let s2 = app.start("001099013999", json!({})).await;
    let started = Instant::now();
    let still = app.get(s2["id"].as_str().expect("id"), 1).await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(["pending", "awaiting_user"].contains(&still["status"].as_str().unwrap_or_default()));
}

#[tokio::test]
async fn a_portal_cancels_a_pending_session_and_cannot_cancel_twice() {
    let app = spawn_app().await;
    let s = app.start("001099012999", json!({})).await;
    let id = s["id"].as_str().expect("id");
    // Cancel once the prompt is on the phone, so the phone can still answer afterwards.
    let pending = app.phone_requests("001099012999").await;
    let rid = pending[0]["id"]
        .as_str()
        .expect("the prompt reached the phone");
    let url = app.url(&format!("/v1/signatures/{id}"));
    let resp = app
        .http
        .delete(&url)
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["status"], "cancelled");
    let again = app
        .http
        .delete(&url)
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(error_of(again).await, (409, "already_terminal".into()));
    // A terminal state never changes, even when the phone answers later: the provider's push
    // for the approval reaches kyso and is answered (kyso decides on a push before answering
    // it), and the session is still cancelled.
    let (sent, _) = app.pushes_settled().await;
    app.approve(rid).await;
    let (sent_after, answered) = app.pushes_settled().await;
    assert!(
        sent_after > sent && answered == sent_after,
        "the approval's push was handled"
    );
    assert_eq!(app.get(id, 0).await["status"], "cancelled");
}

#[tokio::test]
async fn the_list_is_newest_first_filtered_and_paginated() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let s = app
            .start(&format!("00109901300{i}"), json!({"reference": "batch-a"}))
            .await;
        ids.push(s["id"].as_str().expect("id").to_owned());
    }
    app.start("001099013010", json!({"reference": "batch-b"}))
        .await;
    let page: Value = app
        .http
        .get(app.url("/v1/signatures?reference=batch-a&limit=2"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let got: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[1].as_str()]);
    let next = page["next_before"].as_str().expect("cursor");
    let page2: Value = app
        .http
        .get(app.url(&format!(
            "/v1/signatures?reference=batch-a&limit=2&before={next}"
        )))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(page2["items"][0]["id"].as_str(), Some(ids[0].as_str()));
    assert_eq!(page2["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn cancelling_and_asking_again_cannot_bomb_a_signers_phone() {
    let app = spawn_app().await;
    // The test tenant allows 12 requests per signer per minute.
    for n in 0..12 {
        let resp = app.post_signature(&body("001099015999"), KEY).await;
        assert_eq!(resp.status(), 201, "request {n}");
        let s: Value = resp.json().await.expect("json");
        let id = s["id"].as_str().expect("id");
        let cancel = app
            .http
            .delete(app.url(&format!("/v1/signatures/{id}")))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("send");
        assert_eq!(cancel.status(), 200);
    }
    let more = app.post_signature(&body("001099015999"), KEY).await;
    assert_eq!(error_of(more).await, (429, "rate_limited".into()));
    // Another signer is not affected.
    let other = app.post_signature(&body("001099016999"), KEY).await;
    assert_eq!(other.status(), 201);
}
