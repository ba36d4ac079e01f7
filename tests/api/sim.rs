//! SIM signing (ETSI TS 102 204) end to end: the portal API and WebSocket, the gateway's MSSP
//! adapter and the mock MSSP of each carrier, one messaging mode per carrier in the test config
//! (viettel-sim polls, vnpt-sim is notified, mobifone-sim holds the call open, in the VN
//! dialect). Signers are MSISDNs whose last three digits pick the mock's behaviour (SPEC §7).

use serde_json::{json, Value};

use crate::helpers::{digest_of, spawn_app, spawn_app_overriding, TestApp, KEY};

const CARRIERS: [&str; 3] = ["viettel-sim", "vnpt-sim", "mobifone-sim"];
const MODES: [&str; 3] = ["asynch_client_server", "asynch_server_server", "synch"];

async fn create(app: &TestApp, provider: &str, signer: &str, extra: Value) -> reqwest::Response {
    let mut body = json!({
        "provider": provider, "signer": signer, "purpose": "register",
        "digest": digest_of(signer.as_bytes()),
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    app.post_signature(&body, KEY).await
}

async fn start(app: &TestApp, provider: &str, signer: &str, extra: Value) -> Value {
    let resp = create(app, provider, signer, extra).await;
    assert_eq!(resp.status(), 201, "create {provider} {signer}");
    resp.json().await.expect("session json")
}

async fn outcome(app: &TestApp, provider: &str, signer: &str, extra: Value) -> Value {
    let s = start(app, provider, signer, extra).await;
    app.finish(s["id"].as_str().expect("id"), 60).await
}

fn assert_failed(s: &Value, code: &str, provider_code: Option<&str>) {
    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["error"]["code"], code, "{s}");
    if let Some(p) = provider_code {
        assert_eq!(s["error"]["provider_code"], p, "{s}");
    }
}

/// The AP_TransID kyso sends for a session (`K` + the session's ULID).
fn ap_trans_id(session: &Value) -> String {
    let id = session["id"].as_str().unwrap_or_default();
    format!("K{}", id.trim_start_matches("ses_"))
}

#[tokio::test]
async fn each_carrier_signs_in_its_messaging_mode_with_the_sim_certificates_identity() {
    let app = spawn_app().await;
    let mut ws = app.ws("", Some(KEY)).await;
    for provider in CARRIERS {
        let s = start(&app, provider, "0912345678", json!({})).await;
        let id = s["id"].as_str().expect("id");
        assert_eq!(s["signer"], "84912345678");
        let events = ws.until_terminal(id, 30).await;
        let statuses: Vec<&str> = events
            .iter()
            .filter(|e| e["session"]["id"] == id)
            .filter_map(|e| e["session"]["status"].as_str())
            .collect();
        assert_eq!(statuses.last(), Some(&"signed"), "{provider}: {events:?}");
        let done = &events[events.len() - 1]["session"];
        let result = &done["result"];
        assert_eq!(
            result["identity"]["phone"], "84912345678",
            "{provider}: {done}"
        );
        assert_eq!(result["verification"]["signature"], "valid");
        assert_eq!(result["verification"]["chain"], "trusted");
        assert!(
            result["chain"].as_array().is_some_and(|c| !c.is_empty()),
            "{done}"
        );
    }
}

#[tokio::test]
async fn a_cms_session_signs_on_the_sim_in_every_mode() {
    // kyso asks MSS_ProfileQuery for the SIM certificate, builds the signed attributes, and the
    // SIM signs their hash as an ordinary PKCS#1 request.
    let app = spawn_app().await;
    for (i, provider) in CARRIERS.iter().enumerate() {
        let signer = format!("09123{i}5678");
        let s = outcome(&app, provider, &signer, json!({"format": "cms"})).await;
        assert_eq!(s["status"], "signed", "{provider}: {s}");
        assert_eq!(s["result"]["format"], "cms");
        assert_eq!(s["result"]["identity"]["phone"], format!("849123{i}5678"));
    }
}

#[tokio::test]
async fn a_user_who_refuses_ends_rejected_in_every_mode() {
    let app = spawn_app().await;
    for (i, provider) in CARRIERS.iter().enumerate() {
        let s = outcome(&app, provider, &format!("09123{i}0401"), json!({})).await;
        assert_eq!(s["status"], "rejected", "{provider}: {s}");
    }
}

#[tokio::test]
async fn a_blocked_pin_ends_failed_pin_blocked_with_the_carriers_code() {
    let app = spawn_app().await;
    for (i, provider) in CARRIERS.iter().enumerate() {
        let s = outcome(&app, provider, &format!("09123{i}0402"), json!({})).await;
        assert_failed(&s, "pin_blocked", Some("402"));
    }
}

#[tokio::test]
async fn a_subscriber_without_a_key_ends_failed_no_certificate() {
    let app = spawn_app().await;
    let s = outcome(&app, "viettel-sim", "0912340404", json!({})).await;
    assert_failed(&s, "no_certificate", Some("404"));
}

#[tokio::test]
async fn a_user_who_never_answers_expires_in_every_mode() {
    let app = spawn_app().await;
    for (i, provider) in CARRIERS.iter().enumerate() {
        let signer = format!("09123{i}0208");
        let s = outcome(&app, provider, &signer, json!({"timeout_s": 3})).await;
        assert_eq!(s["status"], "expired", "{provider}: {s}");
    }
}

#[tokio::test]
async fn corrupted_or_foreign_signatures_and_expired_certificates_are_refused() {
    let app = spawn_app().await;
    for (signer, code) in [
        ("0912340503", "invalid_signature"),
        ("0912340505", "invalid_signature"),
        ("0912340422", "certificate_expired"),
    ] {
        let s = outcome(&app, "viettel-sim", signer, json!({})).await;
        assert_failed(&s, code, None);
    }
}

/// The SIM CAs' OCSP answers end to end: a revoked signer is refused with the responder's
/// reason, a good one is reported `good` (not `unknown`, not skipped), on every carrier.
#[tokio::test]
async fn sim_certificates_are_checked_against_their_carriers_ocsp() {
    let app = spawn_app().await;
    for (i, provider) in CARRIERS.iter().enumerate() {
        let s = outcome(&app, provider, &format!("09123{i}0501"), json!({})).await;
        assert_failed(&s, "revoked_certificate", None);
        let s = outcome(&app, provider, &format!("09123{i}0001"), json!({})).await;
        assert_eq!(s["status"], "signed", "{provider}: {s}");
        assert_eq!(
            s["result"]["verification"]["revocation"], "good",
            "{provider}: {s}"
        );
    }
}

#[tokio::test]
async fn an_mssp_that_always_fails_ends_provider_unavailable() {
    let app = spawn_app().await;
    for (i, provider) in CARRIERS.iter().enumerate() {
        let signer = format!("09123{i}0900");
        let s = outcome(&app, provider, &signer, json!({"timeout_s": 4})).await;
        assert_failed(&s, "provider_unavailable", None);
    }
}

#[tokio::test]
async fn two_failed_calls_are_retried_and_the_phone_is_prompted_once() {
    let app = spawn_app().await;
    for (i, provider) in CARRIERS.iter().enumerate() {
        let s = outcome(&app, provider, &format!("09123{i}0901"), json!({})).await;
        assert_eq!(s["status"], "signed", "{provider}: {s}");
        let stats = app.mock_json(reqwest::Method::GET, "/admin/stats").await;
        assert_eq!(
            stats["sign_requests"][ap_trans_id(&s)],
            1,
            "{provider}: {stats}"
        );
    }
}

#[tokio::test]
async fn a_slow_mssp_still_completes_in_every_mode() {
    let app = spawn_app().await;
    for (i, provider) in CARRIERS.iter().enumerate() {
        let s = outcome(&app, provider, &format!("09123{i}0902"), json!({})).await;
        assert_eq!(s["status"], "signed", "{provider}: {s}");
    }
}

#[tokio::test]
async fn a_person_approves_on_the_virtual_phone() {
    let app = spawn_app().await;
    for (i, provider) in CARRIERS.iter().enumerate() {
        let signer = format!("849123{i}0999");
        let s = start(&app, provider, &signer, json!({})).await;
        let pending = app.phone_requests(&signer).await;
        let request = pending.first().expect("a prompt on the phone");
        let code = s["verification_code"].as_str().expect("code");
        let shown = request["display_text"].as_str().unwrap_or_default();
        assert!(
            shown.contains(code),
            "{provider}: the phone shows {shown:?}"
        );
        let rid = request["id"].as_str().expect("request id");
        let path = format!("/admin/requests/{rid}/approve");
        app.mock_json(reqwest::Method::POST, &path).await;
        let done = app.finish(s["id"].as_str().expect("id"), 30).await;
        assert_eq!(done["status"], "signed", "{provider}: {done}");
    }
}

#[tokio::test]
async fn a_long_vietnamese_text_reaches_the_phone_fitted_with_its_code() {
    let app = spawn_app().await;
    let text = "Xác nhận đăng ký tài khoản doanh nghiệp trên Cổng Dịch vụ công quốc gia cho \
                Công ty TNHH Thương mại và Dịch vụ Ánh Dương, chi nhánh Cầu Giấy, Hà Nội";
    let s = start(
        &app,
        "viettel-sim",
        "0912340999",
        json!({"display_text": text}),
    )
    .await;
    let pending = app.phone_requests("84912340999").await;
    let shown = pending[0]["display_text"].as_str().unwrap_or_default();
    let code = s["verification_code"].as_str().expect("code");
    assert!(shown.ends_with(&format!("Mã xác nhận {code}")), "{shown}");
    assert!(shown.starts_with("Xác nhận đăng ký") && shown.encode_utf16().count() <= 70);
}

#[tokio::test]
async fn msisdns_are_accepted_in_national_and_international_form_and_others_refused() {
    let app = spawn_app().await;
    for (signer, stored) in [
        ("0912345601", "84912345601"),
        ("+84912345602", "84912345602"),
    ] {
        let s = start(&app, "viettel-sim", signer, json!({})).await;
        assert_eq!(s["signer"], stored);
    }
    for bad in ["0212345678", "912345678", "abc", "0123456789"] {
        let resp = create(&app, "viettel-sim", bad, json!({})).await;
        assert_eq!(resp.status(), 400, "{bad}");
    }
}

/// Creates one approving and one refusing session and reports what the portal saw.
async fn portal_view(app: &TestApp) -> Vec<(Vec<String>, Vec<String>, Value)> {
    let mut ws = app.ws("", Some(KEY)).await;
    let mut seen = Vec::new();
    for signer in ["0912347678", "0912347401"] {
        let s = start(app, "viettel-sim", signer, json!({})).await;
        let id = s["id"].as_str().expect("id");
        let events = ws.until_terminal(id, 30).await;
        let statuses = events
            .iter()
            .filter(|e| e["session"]["id"] == id)
            .filter_map(|e| e["session"]["status"].as_str().map(str::to_owned))
            .collect();
        let done = app.get(id, 0).await;
        let mut keys: Vec<String> = done
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(r) = done["result"].as_object() {
            keys.extend(r.keys().map(|k| format!("result.{k}")));
        }
        let verdict = json!({"status": done["status"], "error": done["error"], "phone": done["result"]["identity"]["phone"]});
        seen.push((statuses, keys, verdict));
    }
    seen
}

#[tokio::test]
async fn switching_an_instance_between_the_three_modes_changes_nothing_the_portal_sees() {
    let mut views = Vec::new();
    for mode in MODES {
        let key = "providers.viettel-sim.mssp.messaging_mode".to_owned();
        let app = spawn_app_overriding(500, vec![(key, json!(mode))]).await;
        views.push((mode, portal_view(&app).await));
    }
    let (first_mode, first) = &views[0];
    assert_eq!(first[0].2["status"], "signed", "{first:?}");
    assert_eq!(first[1].2["status"], "rejected", "{first:?}");
    for (mode, view) in &views[1..] {
        assert_eq!(view, first, "{mode} differs from {first_mode}");
    }
}

#[tokio::test]
async fn a_notification_that_arrives_before_the_signature_answer_is_handled() {
    // Every answer to a …902 signer takes 5 s, so a notification posted a second after the
    // request reaches kyso while MSS_Signature still waits for its acknowledgement. It is
    // answered with a receipt, claims a result kyso never takes from it, and the session still
    // ends with the signature kyso verified itself.
    let app = spawn_app().await;
    let s = start(&app, "vnpt-sim", "0912348902", json!({})).await;
    // MSS_Signature has reached the MSSP, whose answer takes 5 s.
    app.wait_calls("84912348902", "sign", 1).await;
    let id = s["id"].as_str().expect("id");
    assert_eq!(app.get(id, 0).await["status"], "pending");
    let (code, receipt) = notify(&app, forged_notification(&ap_trans_id(&s), "early1")).await;
    assert_eq!(code, 200);
    assert!(receipt.contains("MSS_ReceiptReq"), "{receipt}");
    let done = app.finish(id, 40).await;
    assert_eq!(done["status"], "signed", "{done}");
    assert_eq!(done["result"]["verification"]["signature"], "valid");
    assert_ne!(done["result"]["signature"], "AQIDBA==");
}

fn forged_notification(ap_tx: &str, mssp_tx: &str) -> String {
    format!(
        r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
             xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#"><env:Body><MSS_Notification>
           <mss:MSS_StatusResp MajorVersion="1" MinorVersion="1" MSSP_TransID="{mssp_tx}">
            <mss:AP_Info AP_ID="kyso-dev-ap" AP_PWD="" AP_TransID="{ap_tx}" Instant="2026-01-01T00:00:00Z"/>
            <mss:MSSP_Info><mss:MSSP_ID><mss:URI>http://forged</mss:URI></mss:MSSP_ID></mss:MSSP_Info>
            <mss:MobileUser><mss:MSISDN>84912349999</mss:MSISDN></mss:MobileUser>
            <mss:MSS_Signature><mss:Base64Signature>AQIDBA==</mss:Base64Signature></mss:MSS_Signature>
            <mss:Status><mss:StatusCode Value="500"/><mss:StatusMessage>SIGNATURE</mss:StatusMessage></mss:Status>
           </mss:MSS_StatusResp></MSS_Notification></env:Body></env:Envelope>"#
    )
}

async fn notify(app: &TestApp, body: String) -> (u16, String) {
    let resp = app
        .http
        .post(app.url("/callbacks/vnpt-sim"))
        .header("content-type", "application/soap+xml; charset=utf-8")
        .body(body)
        .send()
        .await
        .expect("callback");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test]
async fn forged_and_duplicate_notifications_change_nothing() {
    let app = spawn_app().await;
    let s = start(&app, "vnpt-sim", "0912349999", json!({})).await;
    let id = s["id"].as_str().expect("id");
    let pending = app.phone_requests("84912349999").await;
    assert_eq!(pending.len(), 1);
    // A forged "signed" for the pending session is answered, and only makes kyso ask the MSSP:
    // once kyso has asked (the mock counts the status request), the session still waits.
    let asked = app.mock_calls("84912349999").await["status"]
        .as_u64()
        .unwrap_or(0);
    let (code, receipt) = notify(&app, forged_notification(&ap_trans_id(&s), "forged1")).await;
    assert_eq!(code, 200);
    assert!(receipt.contains("MSS_ReceiptReq") && !receipt.contains("kyso-dev-ap-secret"));
    app.wait_calls("84912349999", "status", asked + 1).await;
    assert_eq!(app.get(id, 0).await["status"], "awaiting_user");
    // Unknown sessions and junk: 200 and 400, nothing else.
    let unknown = forged_notification("K01JH8Q2X7ABCDEFGHJKMNPQRST", "forged2");
    assert_eq!(notify(&app, unknown).await.0, 200);
    assert_eq!(notify(&app, "<not-soap/>".into()).await.0, 400);
    let rid = pending[0]["id"].as_str().expect("request id");
    app.mock_json(
        reqwest::Method::POST,
        &format!("/admin/requests/{rid}/approve"),
    )
    .await;
    let done = app.finish(id, 30).await;
    assert_eq!(done["status"], "signed", "{done}");
    let asked_at_end = app.mock_calls("84912349999").await["status"]
        .as_u64()
        .unwrap_or(0);
    // Replays after the end change nothing.
    for _ in 0..2 {
        assert_eq!(
            notify(&app, forged_notification(&ap_trans_id(&s), "forged1"))
                .await
                .0,
            200
        );
    }
    // kyso decides on a push before answering it; for a finished session it neither writes
    // nor asks the MSSP.
    assert_eq!(app.get(id, 0).await, done);
    let calls = app.mock_calls("84912349999").await;
    assert_eq!(calls["status"].as_u64(), Some(asked_at_end), "{calls}");
}

#[tokio::test]
async fn a_carrier_that_answers_with_a_cms_over_signed_attributes_is_verified_as_a_cms() {
    let app = spawn_app_overriding(
        300,
        vec![(
            "providers.viettel-sim.mssp.mss_format".into(),
            Value::String("cms".into()),
        )],
    )
    .await;
    let signer = "0912345671";
    let s = outcome(&app, "viettel-sim", signer, json!({})).await;
    assert_eq!(s["status"], "signed", "{s}");
    assert_eq!(
        s["result"]["format"], "cms",
        "the carrier's CMS is what the portal gets"
    );
    assert_eq!(s["result"]["identity"]["phone"], "84912345671");

    // OpenSSL agrees: a detached CMS over the session's content with the mock root as anchor.
    use base64::prelude::{Engine as _, BASE64_STANDARD};
    let dir = tempfile::tempdir().expect("tempdir");
    let cms = BASE64_STANDARD
        .decode(s["result"]["signature"].as_str().expect("cms"))
        .expect("base64");
    std::fs::write(dir.path().join("sig.der"), cms).expect("write");
    std::fs::write(dir.path().join("content"), signer.as_bytes()).expect("write");
    let root = app.mock.carriers.root_pem_path();
    let verify = |content: &str| {
        std::process::Command::new("openssl")
            .args([
                "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any",
            ])
            .arg("-in")
            .arg(dir.path().join("sig.der"))
            .arg("-content")
            .arg(dir.path().join(content))
            .arg("-CAfile")
            .arg(&root)
            .args(["-out", "/dev/null"])
            .output()
            .expect("openssl")
            .status
            .success()
    };
    assert!(
        verify("content"),
        "openssl cms -verify accepts the carrier's CMS"
    );
    std::fs::write(dir.path().join("other"), b"something else").expect("write");
    assert!(!verify("other"), "and refuses it over other content");

    // A CMS over another digest is refused like a raw signature would be.
    let bad = outcome(&app, "viettel-sim", "0912345505", json!({})).await;
    assert_failed(&bad, "invalid_signature", None);
}
