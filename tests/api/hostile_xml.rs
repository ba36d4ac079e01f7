//! Hostile XML posted to the unauthenticated MSS_Notification endpoint of a running gateway:
//! a start tag with thousands of attributes (RUSTSEC-2026-0194) and one with thousands of
//! namespace declarations (RUSTSEC-2026-0195) are refused with a JSON error in milliseconds,
//! and the gateway goes on reading notifications.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{spawn_app, TestApp};

/// A notification is read in well under a millisecond. The documents stay under the callback
/// body limit (64 KiB), so they reach the parser.
const QUICK: Duration = Duration::from_millis(250);

/// A notification for a session kyso never issued, with `extra` on its MSS_StatusResp.
fn notification(extra: &str) -> String {
    format!(
        r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
             xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#"><env:Body><MSS_Notification>
           <mss:MSS_StatusResp{extra} MajorVersion="1" MinorVersion="1" MSSP_TransID="h0st1">
            <mss:AP_Info AP_ID="kyso-dev-ap" AP_PWD="" AP_TransID="K01JH8Q2X7ABCDEFGHJKMNPQRST" Instant="2026-01-01T00:00:00Z"/>
            <mss:MSSP_Info><mss:MSSP_ID><mss:URI>http://forged</mss:URI></mss:MSSP_ID></mss:MSSP_Info>
            <mss:Status><mss:StatusCode Value="500"/></mss:Status>
           </mss:MSS_StatusResp></MSS_Notification></env:Body></env:Envelope>"#
    )
}

async fn post(app: &TestApp, body: String) -> (u16, String, Duration) {
    let started = Instant::now();
    let resp = app
        .http
        .post(app.url("/callbacks/vnpt-sim"))
        .header("content-type", "application/soap+xml; charset=utf-8")
        .body(body)
        .send()
        .await
        .expect("callback answered");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, text, started.elapsed())
}

#[tokio::test]
async fn notifications_with_thousands_of_attributes_or_namespaces_are_refused_in_milliseconds() {
    let app = spawn_app().await;
    let attributes: String = (0..5_000).map(|i| format!(" a{i}=\"\"")).collect();
    let namespaces: String = (0..2_500)
        .map(|i| format!(" xmlns:n{i}=\"urn:x\""))
        .collect();
    for (shape, extra) in [("attributes", attributes), ("namespace", namespaces)] {
        let (status, text, took) = post(&app, notification(&extra)).await;
        assert_eq!(status, 400, "{shape}: {text}");
        let body: Value = serde_json::from_str(&text).expect("a JSON error");
        assert_eq!(body["error"]["code"], "invalid_callback", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(shape), "{shape}: {message}");
        assert!(took < QUICK, "{shape}: took {took:?}");
    }
    let (status, text, _) = post(&app, notification("")).await;
    assert_eq!(status, 200, "a plain notification is still read: {text}");
}
