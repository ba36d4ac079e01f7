//! What kyso knows about its providers stays in kyso: a provider it cannot reach is reported
//! to portals as a code and a sentence, never with the provider's internal address, and an
//! unauthenticated MSSP notification is answered without the configured AP_ID or MSSP URL.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_overriding, TestApp, KEY};

const CLOSED: &str = "http://127.0.0.1:1/internal/sca/sp769";

fn assert_no_address(text: &str) {
    for part in ["127.0.0.1", "internal", "sca/sp769", ":1/", "http"] {
        assert!(!text.contains(part), "`{part}` in {text}");
    }
}

async fn app_with_smartca_at_a_closed_port() -> TestApp {
    spawn_app_overriding(
        500,
        vec![(
            "providers.vnpt-smartca.smartca.base_url".into(),
            Value::String(CLOSED.into()),
        )],
    )
    .await
}

#[tokio::test]
async fn certificates_at_a_closed_port_are_unavailable_without_the_providers_address() {
    let app = app_with_smartca_at_a_closed_port().await;
    let resp = app
        .http
        .get(app.url("/v1/certificates?provider=vnpt-smartca&signer=001099018001"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("certificates");
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["code"], "unavailable", "{v}");
    assert_no_address(&v.to_string());
}

#[tokio::test]
async fn a_session_whose_provider_never_answers_fails_without_the_providers_address() {
    let app = app_with_smartca_at_a_closed_port().await;
    let s = app.start("001099018002", json!({"timeout_s": 2})).await;
    let id = s["id"].as_str().expect("id");
    let done = app.finish(id, 20).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "provider_unavailable", "{done}");
    let message = done["error"]["message"].as_str().expect("message");
    assert!(!message.is_empty());
    assert_no_address(&done["error"].to_string());
}

#[tokio::test]
async fn an_unauthenticated_notification_is_answered_without_the_ap_id_or_the_mssp_url() {
    let app = spawn_app().await;
    // A stranger's notification: no AP_ID, an MSSP_ID of its own.
    let note = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
         xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#"><env:Body><MSS_Notification>
       <mss:MSS_StatusResp MajorVersion="1" MinorVersion="1" MSSP_TransID="probe1">
        <mss:AP_Info AP_TransID="K01JH8Q2X7ABCDEFGHJKMNPQRST" Instant="2026-01-01T00:00:00Z"/>
        <mss:MSSP_Info><mss:MSSP_ID><mss:URI>http://stranger</mss:URI></mss:MSSP_ID></mss:MSSP_Info>
        <mss:Status><mss:StatusCode Value="500"/></mss:Status>
       </mss:MSS_StatusResp></MSS_Notification></env:Body></env:Envelope>"#;
    let resp = app
        .http
        .post(app.url("/callbacks/vnpt-sim"))
        .header("content-type", "application/soap+xml; charset=utf-8")
        .body(note)
        .send()
        .await
        .expect("callback");
    assert_eq!(resp.status(), 200);
    let receipt = resp.text().await.expect("body");
    assert!(receipt.contains("MSS_ReceiptReq"), "{receipt}");
    let mssp = app.mock.addr.to_string();
    for secret in ["kyso-dev-ap", mssp.as_str(), "mssp/vnpt-sim"] {
        assert!(!receipt.contains(secret), "`{secret}` in {receipt}");
    }
}
