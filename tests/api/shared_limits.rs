//! Three instances on one PostgreSQL database, as behind a load balancer: the portal meets one
//! gateway. One tenant rate and one prompt limit per signer, not three; a USB challenge made
//! on one instance is good once on another; a browser ticket too.

use std::time::Instant;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_overriding, TestApp, KEY, OTHER_KEY};
use crate::pg::{fresh_db, TestDb};
use crate::verifications::{b64, challenge, fixture, free_port, plugin_signs, post};

async fn three(test: &str) -> Option<(TestDb, Vec<TestApp>)> {
    let db = fresh_db(test).await?;
    let rewrites = json!([
        {"from": "http://127.0.0.1:18888/ocsp", "to": format!("http://127.0.0.1:{}/ocsp", free_port())},
        {"from": "http://127.0.0.1:18888/issuing-ca.crl",
         "to": format!("http://127.0.0.1:{}/issuing-ca.crl", free_port())},
    ]);
    let mut apps = Vec::new();
    for _ in 0..3 {
        let overrides = vec![
            ("database.url".into(), json!(db.url)),
            (
                "usb.trust_anchors".into(),
                json!([fixture("root-ca.pem").display().to_string()]),
            ),
            ("revocation.rewrites".into(), rewrites.clone()),
        ];
        apps.push(spawn_app_overriding(500, overrides).await);
    }
    Some((db, apps))
}

/// The other tenant's rate is 50/s with a burst of 100. 300 requests spread over the three
/// instances get at most the burst plus what refilled meanwhile; each instance counting on
/// its own would have let ~300 through.
#[tokio::test]
async fn three_instances_allow_one_tenant_rate() {
    let Some((_db, apps)) = three("three_instances_allow_one_tenant_rate").await else {
        return;
    };
    let started = Instant::now();
    let mut allowed = 0;
    let mut limited = 0;
    for i in 0..300 {
        let (status, body) = post(&apps[i % 3], "/v1/events/tickets", &json!({}), OTHER_KEY).await;
        match status {
            200 => allowed += 1,
            429 => {
                assert_eq!(body["error"]["code"], "rate_limited", "{body}");
                limited += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    let most = 100.0 + 50.0 * started.elapsed().as_secs_f64() + 1.0;
    assert!(
        f64::from(allowed) <= most,
        "{allowed} allowed (at most {most:.0} for one rate), {limited} limited"
    );
    assert!(allowed >= 100, "the burst itself: {allowed}");
}

/// The tenant allows 12 prompts per signer per minute: 20 requests for one signer across
/// the three instances get 12 through (the first creates, the rest meet signer_busy) and 8
/// refused with rate_limited.
#[tokio::test]
async fn three_instances_allow_one_prompt_limit_per_signer() {
    let Some((_db, apps)) = three("three_instances_allow_one_prompt_limit_per_signer").await else {
        return;
    };
    let mut limited = 0;
    for i in 0..20 {
        let body = json!({
            "provider": "vnpt-smartca",
            "signer": "001099555208",
            "purpose": "register",
            "digest": BASE64_STANDARD.encode([i as u8; 32]),
        });
        let resp = apps[i % 3].post_signature(&body, KEY).await;
        match resp.status().as_u16() {
            201 | 409 => {}
            429 => limited += 1,
            other => panic!("{other}: {}", resp.text().await.unwrap_or_default()),
        }
    }
    assert_eq!(limited, 8, "one limit of 12 across the three instances");
}

/// A challenge made on the first instance verifies on the second, and is used up there: the
/// third knows it no more. Another tenant cannot burn it meanwhile.
#[tokio::test]
async fn a_challenge_made_on_one_instance_verifies_once_on_another() {
    let Some((_db, apps)) =
        three("a_challenge_made_on_one_instance_verifies_once_on_another").await
    else {
        return;
    };
    let (id, nonce) = challenge(&apps[0], KEY).await;
    let body = json!({
        "challenge_id": id,
        "signature": BASE64_STANDARD.encode(plugin_signs(&nonce, apps[0].dir.path())),
        "certificate": std::fs::read_to_string(fixture("person.pem")).expect("pem"),
        "chain": [b64("issuing-ca.pem")],
        "format": "pkcs1",
        "signer": "001099012345",
    });
    let (status, _) = post(&apps[2], "/v1/verifications", &body, OTHER_KEY).await;
    assert_eq!(status, 404, "another tenant's challenge is unknown to it");
    let (status, answer) = post(&apps[1], "/v1/verifications", &body, KEY).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["verdict"], "valid", "{answer}");
    let (status, again): (u16, Value) = post(&apps[2], "/v1/verifications", &body, KEY).await;
    assert_eq!(status, 404, "{again}");
    assert_eq!(again["error"]["code"], "challenge_not_found");
}

/// A browser ticket issued by one instance opens the stream on another, once.
#[tokio::test]
async fn a_ticket_issued_on_one_instance_opens_the_stream_on_another_once() {
    let Some((_db, apps)) =
        three("a_ticket_issued_on_one_instance_opens_the_stream_on_another_once").await
    else {
        return;
    };
    let (status, t) = post(&apps[0], "/v1/events/tickets", &json!({}), KEY).await;
    assert_eq!(status, 200, "{t}");
    let ticket = t["ticket"].as_str().expect("ticket");
    let url = |app: &TestApp| format!("ws://{}/v1/events?ticket={ticket}", app.addr);
    let opened = tokio_tungstenite::connect_async(url(&apps[1])).await;
    assert!(
        opened.is_ok(),
        "the ticket opens the stream on another instance: {opened:?}"
    );
    let again = tokio_tungstenite::connect_async(url(&apps[2])).await;
    match again {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 401, "a used ticket")
        }
        other => panic!("a used ticket opened a stream: {other:?}"),
    }
}
