//! Every row of the behaviour table at the mock MSSP, and what it does with requests it must
//! refuse: wrong AP credentials, malformed XML, DTDs, oversized bodies, wrong content types,
//! bad fields.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::mssp_client::*;

/// The top code and `mss:_NNN` subcode of a fault answer.
fn fault_of(answer: &Answer) -> (String, String) {
    answer
        .fault()
        .unwrap_or_else(|| panic!("a fault: {}", answer.body))
}

async fn async_final(t: &TestMock, msisdn: &str, tid: &str, digest: &[u8; 32]) -> Answer {
    let ack = t
        .mss_sign(&SigReq::new("viettel-sim", msisdn, tid, digest))
        .await;
    assert_eq!(ack.status_code(), Some(100), "{}", ack.body);
    let id = ack
        .attr("MSS_SignatureResp", "MSSP_TransID")
        .expect("MSSP_TransID");
    t.mss_final("viettel-sim", &id).await
}

#[tokio::test]
async fn a_401_user_cancels_in_every_mode() {
    let t = spawn_mock().await;
    let refused = async_final(&t, "84912345401", "Kc1", &digest_of("a")).await;
    assert_eq!(refused.http, 500);
    assert_eq!(
        fault_of(&refused),
        ("env:Receiver".into(), "mss:_401".into())
    );
    assert!(refused.body.contains("USER_CANCEL"));
    let synch = t
        .mss_sign(&SigReq::new("viettel-sim", "84912346401", "Kc2", &digest_of("a")).mode("synch"))
        .await;
    assert_eq!(fault_of(&synch).1, "mss:_401");
}

#[tokio::test]
async fn a_402_pin_block_and_a_404_missing_key_fault_at_once() {
    let t = spawn_mock().await;
    for (msisdn, code) in [("84912345402", "mss:_402"), ("84912345404", "mss:_404")] {
        let answer = t
            .mss_sign(&SigReq::new("vnpt-sim", msisdn, "Kf1", &digest_of("a")))
            .await;
        assert_eq!(answer.http, 500);
        assert_eq!(
            fault_of(&answer),
            ("env:Receiver".into(), code.into()),
            "{msisdn}"
        );
    }
    assert_eq!(
        t.get_json("/admin/stats").await["prompts"],
        0,
        "no prompt reached a phone"
    );
}

#[tokio::test]
async fn a_208_never_answers_and_expires_at_the_timeout() {
    let t = spawn_mock().await;
    let mut synch =
        SigReq::new("mobifone-sim", "84912345208", "Kx1", &digest_of("a")).mode("synch");
    synch.timeout = Some(1);
    let started = Instant::now();
    let answer = t.mss_sign(&synch).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        fault_of(&answer),
        ("env:Receiver".into(), "mss:_208".into())
    );
    assert!(answer.body.contains("EXPIRED_TRANSACTION"));

    let mut asynch = SigReq::new("mobifone-sim", "84912346208", "Kx2", &digest_of("a"));
    asynch.timeout = Some(1);
    let id = t
        .mss_sign(&asynch)
        .await
        .attr("MSS_SignatureResp", "MSSP_TransID")
        .expect("id");
    assert_eq!(
        t.mss_status("mobifone-sim", &id).await.status_code(),
        Some(504)
    );
    let done = t.mss_final("mobifone-sim", &id).await;
    assert_eq!(fault_of(&done).1, "mss:_208");
}

#[tokio::test]
async fn a_501_signs_validly_and_a_validating_mssp_says_revoked() {
    let t = spawn_mock().await;
    let digest = digest_of("a");
    let done = async_final(&t, "84912345501", "Kr1", &digest).await;
    assert_eq!(done.status_code(), Some(500));
    let cert = parse_cert(&t.sim_certificate("viettel-sim", "84912345501").await);
    assert!(verifies(&cert, &digest, &done.signature()));
    let mut validated = SigReq::new("viettel-sim", "84912346501", "Kr2", &digest).mode("synch");
    validated.services = vec![VALIDATION];
    let answer = t.mss_sign(&validated).await;
    assert_eq!(answer.status_code(), Some(501), "{}", answer.body);
    assert_eq!(
        answer.text("StatusMessage").as_deref(),
        Some("REVOKED_CERTIFICATE")
    );
}

#[tokio::test]
async fn a_503_corrupts_a_505_signs_another_digest_and_a_422_uses_an_expired_certificate() {
    let t = spawn_mock().await;
    let digest = digest_of("a");
    let corrupt = async_final(&t, "84912345503", "Kb1", &digest).await;
    let cert = parse_cert(&t.sim_certificate("viettel-sim", "84912345503").await);
    assert!(!verifies(&cert, &digest, &corrupt.signature()));

    let other = async_final(&t, "84912345505", "Kb2", &digest).await;
    let cert = parse_cert(&t.sim_certificate("viettel-sim", "84912345505").await);
    assert!(!verifies(&cert, &digest, &other.signature()));
    let rehashed: [u8; 32] = Sha256::digest(digest).into();
    assert!(verifies(&cert, &rehashed, &other.signature()));

    let expired = async_final(&t, "84912345422", "Kb3", &digest).await;
    let cert = parse_cert(&t.sim_certificate("viettel-sim", "84912345422").await);
    assert!(verifies(&cert, &digest, &expired.signature()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("now");
    assert!(cert.tbs_certificate.validity.not_after.to_unix_duration() < now);
}

#[tokio::test]
async fn a_900_fails_every_call_with_http_500_and_fault_900() {
    let t = spawn_mock().await;
    let sign = t
        .mss_sign(&SigReq::new(
            "vnpt-sim",
            "84912345900",
            "Ke1",
            &digest_of("a"),
        ))
        .await;
    assert_eq!(sign.http, 500);
    assert_eq!(fault_of(&sign), ("env:Receiver".into(), "mss:_900".into()));
    let profile = t
        .soap(
            "vnpt-sim",
            "MSS_ProfileQueryPort",
            &profile_xml("84912345900"),
        )
        .await;
    assert_eq!(profile.http, 500);
    assert_eq!(fault_of(&profile).1, "mss:_900");
}

#[tokio::test]
async fn a_901_fails_the_first_two_calls_then_works() {
    let t = spawn_mock().await;
    let req = SigReq::new("vnpt-sim", "84912345901", "Kfl1", &digest_of("a"));
    let first = t.mss_sign(&req).await;
    assert_eq!(first.http, 503);
    assert_eq!(fault_of(&first).1, "mss:_900");
    let second = t
        .soap_raw(
            "vnpt-sim",
            "MSS_SignaturePort",
            "application/soap+xml",
            req.xml().into_bytes(),
        )
        .await;
    assert!(second.is_err(), "the connection is dropped");
    let third = t.mss_sign(&req).await;
    assert_eq!(third.status_code(), Some(100), "{}", third.body);
}

#[tokio::test]
async fn a_902_takes_five_seconds_per_answer() {
    let t = spawn_mock().await;
    let started = Instant::now();
    let answer = t
        .mss_sign(&SigReq::new(
            "vnpt-sim",
            "84912345902",
            "Ks1",
            &digest_of("a"),
        ))
        .await;
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_eq!(answer.status_code(), Some(100));
}

#[tokio::test]
async fn a_999_waits_for_the_virtual_phone() {
    let t = spawn_mock().await;
    let digest = digest_of("a");
    let ack = t
        .mss_sign(&SigReq::new("mobifone-sim", "84912345999", "Km1", &digest))
        .await;
    let id = ack.attr("MSS_SignatureResp", "MSSP_TransID").expect("id");
    // A control with the approve delay: once it is signed, the delay has passed.
    let control = t
        .mss_sign(&SigReq::new("mobifone-sim", "84912345345", "Km2", &digest))
        .await;
    let control = control
        .attr("MSS_SignatureResp", "MSSP_TransID")
        .expect("id");
    assert_eq!(
        t.mss_final("mobifone-sim", &control).await.status_code(),
        Some(500)
    );
    assert_eq!(
        t.mss_status("mobifone-sim", &id).await.status_code(),
        Some(504)
    );
    t.post_ok(
        &format!("/admin/requests/{id}/approve"),
        &serde_json::json!({"pin": "1234"}),
    )
    .await;
    let done = t.mss_status("mobifone-sim", &id).await;
    assert_eq!(done.status_code(), Some(500));
    let cert = parse_cert(&t.sim_certificate("mobifone-sim", "84912345999").await);
    assert!(verifies(&cert, &digest, &done.signature()));
}

#[tokio::test]
async fn a_wrong_ap_password_is_unauthorized_access() {
    let t = spawn_mock().await;
    let mut req = SigReq::new("viettel-sim", "84912345678", "Ka1", &digest_of("a"));
    req.ap_pwd = "guess".to_owned();
    let answer = t.mss_sign(&req).await;
    assert_eq!(fault_of(&answer), ("env:Sender".into(), "mss:_104".into()));
    assert!(
        !answer.body.contains("guess"),
        "the fault does not echo the password"
    );
}

#[tokio::test]
async fn malformed_xml_dtds_and_oversized_bodies_are_refused_with_clear_faults() {
    let t = spawn_mock().await;
    let port = "MSS_SignaturePort";
    let broken = t.soap("viettel-sim", port, "<env:Envelope").await;
    assert_eq!(broken.http, 500);
    assert_eq!(fault_of(&broken), ("env:Sender".into(), "mss:_101".into()));

    let dtd = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><x>&a;</x>";
    let refused = t.soap("viettel-sim", port, dtd).await;
    assert_eq!(fault_of(&refused).1, "mss:_101");
    assert!(refused.body.contains("DTD"), "{}", refused.body);

    let huge = vec![b' '; 300 * 1024];
    let too_big = t
        .soap_raw("viettel-sim", port, "application/soap+xml", huge)
        .await
        .expect("answered");
    assert_eq!(too_big.http, 413);

    let json = t
        .soap_raw("viettel-sim", port, "application/json", b"{}".to_vec())
        .await
        .expect("answered");
    assert_eq!(json.http, 415);

    let soap11 =
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>";
    let v11 = t.soap("viettel-sim", port, soap11).await;
    assert_eq!(fault_of(&v11).0, "env:VersionMismatch");

    let wrong_port = t
        .soap(
            "viettel-sim",
            "MSS_StatusQueryPort",
            &SigReq::new("viettel-sim", "84912345678", "Kw1", &digest_of("a")).xml(),
        )
        .await;
    assert_eq!(fault_of(&wrong_port).1, "mss:_101");
    let text_xml = t
        .soap_raw(
            "viettel-sim",
            "MSS_ProfilePort",
            "text/xml; charset=utf-8",
            profile_xml("84912345678").into_bytes(),
        )
        .await
        .expect("answered");
    assert_eq!(text_xml.http, 200, "text/xml is accepted too");
    assert!(text_xml.content_type.starts_with("text/xml"));
}

#[tokio::test]
async fn bad_fields_get_the_status_code_the_notes_give() {
    let t = spawn_mock().await;
    let base = SigReq::new("viettel-sim", "84912345678", "Kv1", &digest_of("a"));
    let cases: Vec<(SigReq, &str)> = vec![
        (
            SigReq {
                msisdn: "84212345678".into(),
                ..base.clone()
            },
            "mss:_101",
        ),
        (
            SigReq {
                msisdn: String::new(),
                ..base.clone()
            },
            "mss:_102",
        ),
        (
            SigReq {
                ap_trans_id: "7abc".into(),
                ..base.clone()
            },
            "mss:_101",
        ),
        (
            SigReq {
                timeout: Some(0),
                ..base.clone()
            },
            "mss:_101",
        ),
        (
            SigReq {
                mode: "carrierPigeon",
                ..base.clone()
            },
            "mss:_101",
        ),
        (
            SigReq {
                dtbs: (
                    "MimeType=\"application/octet-stream\" Encoding=\"base64\"".into(),
                    "AAEC".into(),
                ),
                ..base.clone()
            },
            "mss:_101",
        ),
        (
            SigReq {
                dtbs: ("MimeType=\"text/plain\"".into(), "hello".into()),
                ..base.clone()
            },
            "mss:_107",
        ),
        (
            SigReq {
                display: "Xác nhận đăng ký ".repeat(8),
                ..base.clone()
            },
            "mss:_103",
        ),
    ];
    for (req, code) in cases {
        let answer = t.mss_sign(&req).await;
        assert_eq!(fault_of(&answer).1, code, "{}", req.xml());
    }
    let accented = SigReq {
        display: "Xác nhận đăng ký tài khoản - mã 4821".into(),
        ..base.clone()
    };
    assert_eq!(t.mss_sign(&accented).await.status_code(), Some(100));
}
