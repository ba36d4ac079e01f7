//! The mock MSSP over real HTTP: the three messaging modes, the SIM certificate, idempotent
//! AP_TransIDs, one prompt at a time per MSISDN, and receipts.

use std::time::Duration;

use mock_carriers::pki::Provider;
use tokio::sync::mpsc;

use crate::helpers::*;
use crate::mssp_client::*;

const CARRIERS: [&str; 3] = ["viettel-sim", "vnpt-sim", "mobifone-sim"];

#[tokio::test]
async fn synch_mode_holds_the_call_and_answers_with_a_signature_from_each_carrier() {
    let t = spawn_mock().await;
    for (i, carrier) in CARRIERS.into_iter().enumerate() {
        let digest = digest_of(carrier);
        let req = SigReq::new(carrier, "0912345678", &format!("Ksynch{i}"), &digest).mode("synch");
        let started = std::time::Instant::now();
        let answer = t.mss_sign(&req).await;
        assert_eq!(answer.http, 200, "{}", answer.body);
        assert!(
            started.elapsed() >= Duration::from_millis(DELAY_MS),
            "held until the user answered"
        );
        assert!(answer.content_type.starts_with("application/soap+xml"));
        assert_eq!(answer.status_code(), Some(500), "{}", answer.body);
        assert_eq!(answer.text("StatusMessage").as_deref(), Some("SIGNATURE"));
        assert_eq!(answer.text("MSISDN").as_deref(), Some("84912345678"));
        assert_eq!(
            answer.attr("AP_Info", "AP_TransID"),
            Some(format!("Ksynch{i}"))
        );
        assert!(answer.attr("MSS_SignatureResp", "MSSP_TransID").is_some());
        let cert = parse_cert(&t.sim_certificate(carrier, "84912345678").await);
        assert!(verifies(&cert, &digest, &answer.signature()), "{carrier}");
    }
}

#[tokio::test]
async fn asynch_client_server_acknowledges_then_polls_from_outstanding_to_signature() {
    let t = spawn_mock().await;
    let digest = digest_of("async");
    let req = SigReq::new("vnpt-sim", "84912345678", "Kasync1", &digest);
    let ack = t.mss_sign(&req).await;
    assert_eq!(ack.http, 200, "{}", ack.body);
    assert_eq!(ack.status_code(), Some(100));
    assert_eq!(ack.text("StatusMessage").as_deref(), Some("REQUEST_OK"));
    assert!(
        ack.text("Base64Signature").is_none(),
        "an ack carries no signature"
    );
    let id = ack
        .attr("MSS_SignatureResp", "MSSP_TransID")
        .expect("MSSP_TransID");

    let first = t.mss_status("vnpt-sim", &id).await;
    assert_eq!(first.status_code(), Some(504), "{}", first.body);
    assert_eq!(
        first.text("StatusMessage").as_deref(),
        Some("OUTSTANDING_TRANSACTION")
    );
    let done = t.mss_final("vnpt-sim", &id).await;
    assert_eq!(done.status_code(), Some(500), "{}", done.body);
    let cert = parse_cert(&t.sim_certificate("vnpt-sim", "84912345678").await);
    assert!(verifies(&cert, &digest, &done.signature()));

    let receipt = t
        .soap(
            "vnpt-sim",
            "MSS_ReceiptPort",
            &receipt_xml(&id, "84912345678"),
        )
        .await;
    assert_eq!(receipt.http, 200, "{}", receipt.body);
    assert_eq!(receipt.status_code(), Some(100));
    let unknown = t
        .soap(
            "vnpt-sim",
            "MSS_ReceiptPort",
            &receipt_xml("MTnothing", "84912345678"),
        )
        .await;
    assert_eq!(unknown.fault().map(|f| f.1).as_deref(), Some("mss:_101"));
    let elsewhere = t.mss_status("viettel-sim", &id).await;
    assert_eq!(
        elsewhere.fault().map(|f| f.1).as_deref(),
        Some("mss:_101"),
        "another carrier's id"
    );
}

/// A receiver for notifications on port 0: every POST's content type and body.
async fn notification_sink() -> (String, mpsc::Receiver<(String, String)>) {
    let (tx, rx) = mpsc::channel(16);
    let app = axum::Router::new().route(
        "/callbacks/{provider}",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let _ = tx.send((ct, body)).await;
                "<ok/>"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind sink");
    let addr = listener.local_addr().expect("sink addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), rx)
}

#[tokio::test]
async fn asynch_server_server_acknowledges_then_posts_the_result_to_ap_url() {
    let t = spawn_mock().await;
    let (sink, mut received) = notification_sink().await;
    let digest = digest_of("push");
    let mut req =
        SigReq::new("mobifone-sim", "84912345678", "Kpush1", &digest).mode("asynchServerServer");
    req.ap_url = Some(format!("{sink}/callbacks/mobifone-sim"));
    let ack = t.mss_sign(&req).await;
    assert_eq!(ack.status_code(), Some(100), "{}", ack.body);
    let id = ack
        .attr("MSS_SignatureResp", "MSSP_TransID")
        .expect("MSSP_TransID");

    let (content_type, body) = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .expect("notification within 5 s")
        .expect("notification");
    assert!(content_type.starts_with("application/soap+xml"));
    let note = Answer {
        http: 200,
        content_type,
        body,
    };
    assert!(note.body.contains("MSS_Notification"), "{}", note.body);
    assert_eq!(
        note.attr("MSS_StatusResp", "MSSP_TransID"),
        Some(id.clone())
    );
    assert_eq!(
        note.attr("AP_Info", "AP_TransID").as_deref(),
        Some("Kpush1")
    );
    assert_eq!(note.status_code(), Some(500));
    let cert = parse_cert(&t.sim_certificate("mobifone-sim", "84912345678").await);
    assert!(verifies(&cert, &digest, &note.signature()));
    // The AP may still confirm by status query.
    assert_eq!(
        t.mss_status("mobifone-sim", &id).await.status_code(),
        Some(500)
    );
}

#[tokio::test]
async fn without_ap_url_notifications_go_to_the_configured_template_and_carry_refusals() {
    let t = spawn_mock().await;
    let (sink, mut received) = notification_sink().await;
    t.mock
        .set_mssp_notification_url(Some(format!("{sink}/callbacks/{{carrier}}")));
    let req = SigReq::new("viettel-sim", "84912345401", "Kpush2", &digest_of("x"))
        .mode("asynchServerServer");
    assert_eq!(t.mss_sign(&req).await.status_code(), Some(100));
    let (_, body) = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .expect("notification within 5 s")
        .expect("notification");
    let note = Answer {
        http: 200,
        content_type: String::new(),
        body,
    };
    assert_eq!(note.status_code(), Some(401), "{}", note.body);
    assert!(note.text("Base64Signature").is_none());

    t.mock.set_mssp_notification_url(None);
    let req = SigReq::new("viettel-sim", "84912345678", "Kpush3", &digest_of("x"))
        .mode("asynchServerServer");
    assert_eq!(
        t.mss_sign(&req).await.fault().map(|f| f.1).as_deref(),
        Some("mss:_102")
    );
}

#[tokio::test]
async fn the_sim_certificate_names_the_msisdn_and_chains_to_the_root_through_the_carrier_ca() {
    let t = spawn_mock().await;
    for (carrier, ca_name) in [
        ("viettel-sim", "Mock Viettel-CA SIM"),
        ("vnpt-sim", "Mock VNPT-CA SIM"),
        ("mobifone-sim", "Mock MobiFone-CA SIM"),
    ] {
        let cert = parse_cert(&t.sim_certificate(carrier, "0912345678").await);
        assert_eq!(
            subject_values(&cert, "2.5.4.20"),
            vec!["84912345678".to_owned()]
        );
        assert_eq!(
            subject_values(&cert, "0.9.2342.19200300.100.1.1"),
            vec!["CCCD:001012345678".to_owned()]
        );
        assert!(subject_values(&cert, "2.5.4.3")
            .iter()
            .all(|cn| !cn.is_ascii()));
        let provider = Provider::from_id(carrier).expect("carrier");
        let (ca, root) = t.mock.pki().chain(provider);
        let (ca, root) = (parse_cert(&ca), parse_cert(&root));
        assert!(issued_by(&cert, &ca) && issued_by(&ca, &root), "{carrier}");
        assert_eq!(subject_values(&ca, "2.5.4.3"), vec![ca_name.to_owned()]);
        let key = rsa::traits::PublicKeyParts::size(&public_key(&cert));
        assert_eq!(key * 8, 2048);
    }
    let unknown = t
        .soap("vnpt-sim", "MSS_ProfilePort", &profile_xml("84912345404"))
        .await;
    assert_eq!(unknown.fault().map(|f| f.1).as_deref(), Some("mss:_105"));
}

#[tokio::test]
async fn the_signing_certificate_service_returns_the_sim_certificate_with_the_signature() {
    let t = spawn_mock().await;
    let mut req =
        SigReq::new("viettel-sim", "84912345678", "Kcert1", &digest_of("c")).mode("synch");
    req.services = vec![SIGNING_CERT, VALIDATION];
    let answer = t.mss_sign(&req).await;
    assert_eq!(
        answer.status_code(),
        Some(502),
        "validation asked: {}",
        answer.body
    );
    let certs = answer.texts("X509Certificate");
    assert_eq!(certs.len(), 2, "SIM certificate and issuing CA");
    let sim = t.sim_certificate("viettel-sim", "84912345678").await;
    let b64 = |der: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
    assert_eq!(certs[0].trim(), b64(&sim));
    assert_eq!(
        certs[1].trim(),
        b64(&t.mock.pki().chain(Provider::ViettelSim).0)
    );
}

#[tokio::test]
async fn a_repeated_ap_trans_id_returns_the_same_transaction_and_prompts_once() {
    let t = spawn_mock().await;
    let req = SigReq::new("viettel-sim", "84912345999", "Kidem1", &digest_of("i"));
    let first = t.mss_sign(&req).await;
    let again = t.mss_sign(&req).await;
    let id = first.attr("MSS_SignatureResp", "MSSP_TransID");
    assert!(id.is_some(), "{}", first.body);
    assert_eq!(again.attr("MSS_SignatureResp", "MSSP_TransID"), id);
    let stats = t.get_json("/admin/stats").await;
    assert_eq!(stats["sign_requests"]["Kidem1"], 2);
    assert_eq!(stats["prompts"], 1);

    let other_data = SigReq::new("viettel-sim", "84912345999", "Kidem1", &digest_of("other"));
    assert_eq!(
        t.mss_sign(&other_data)
            .await
            .fault()
            .map(|f| f.1)
            .as_deref(),
        Some("mss:_101")
    );
    let other_user = SigReq::new("viettel-sim", "84912346999", "Kidem1", &digest_of("i"));
    assert_eq!(
        t.mss_sign(&other_user)
            .await
            .fault()
            .map(|f| f.1)
            .as_deref(),
        Some("mss:_101")
    );
}

#[tokio::test]
async fn a_second_concurrent_request_for_the_same_msisdn_is_refused_until_the_first_ends() {
    let t = spawn_mock().await;
    let first = t
        .mss_sign(&SigReq::new(
            "vnpt-sim",
            "84912345999",
            "Kbusy1",
            &digest_of("1"),
        ))
        .await;
    assert_eq!(first.status_code(), Some(100));
    let second = t
        .mss_sign(&SigReq::new(
            "vnpt-sim",
            "84912345999",
            "Kbusy2",
            &digest_of("2"),
        ))
        .await;
    let (top, sub) = second.fault().expect("fault");
    assert_eq!(
        (top.as_str(), sub.as_str()),
        ("env:Receiver", "mss:_406"),
        "{}",
        second.body
    );
    // Another carrier's MSSP does not know about it.
    let elsewhere = SigReq::new("viettel-sim", "84912345999", "Kbusy3", &digest_of("3"));
    assert_eq!(t.mss_sign(&elsewhere).await.status_code(), Some(100));

    let rows = t
        .get_json("/admin/requests?signer=84912345999&status=pending")
        .await;
    let row = rows["requests"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["provider"] == "vnpt-sim")
        .expect("vnpt-sim prompt")
        .clone();
    assert_eq!(row["display_text"], "DVC: xac nhan dang ky - ma 4821");
    let phone = t
        .http
        .get(format!("{}/phone/84912345999", t.base))
        .send()
        .await
        .expect("phone page")
        .text()
        .await
        .expect("page");
    assert!(phone.contains("vnpt-sim") && phone.contains("ma 4821"));
    let id = row["id"].as_str().expect("id");
    t.post_ok(
        &format!("/admin/requests/{id}/reject"),
        &serde_json::json!({}),
    )
    .await;
    let third = t
        .mss_sign(&SigReq::new(
            "vnpt-sim",
            "84912345999",
            "Kbusy4",
            &digest_of("4"),
        ))
        .await;
    assert_eq!(third.status_code(), Some(100), "{}", third.body);
}
