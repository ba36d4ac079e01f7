//! The last-three-digits convention (SPEC §7), row by row, over HTTP.

use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::*;

const SIGN: &str = "/sca/sp769/v1/signatures/sign";
const CERTS: &str = "/sca/sp769/v1/credentials/get_certificate";

#[tokio::test]
async fn a_signer_ending_401_refuses_with_code_4002() {
    let t = spawn_mock().await;
    let accepted = t.sign("001099012401", "ref-1", &digest_of("a")).await;
    assert_eq!(accepted["status_code"], 200);
    let done = t.wait_final("ref-1").await;
    assert_eq!(done["status_code"], 4002);
    assert_eq!(done["message"], "signer_rejected");
    assert_eq!(done["data"]["transaction_id"], "ref-1");
    assert!(done["data"]["signatures"].is_null());
}

#[tokio::test]
async fn a_signer_ending_402_is_listed_locked_and_cannot_sign() {
    let t = spawn_mock().await;
    let certs = t.certificates("001099012402").await;
    assert_eq!(
        certs["data"]["user_certificates"][0]["cert_status"],
        "Đã bị khóa"
    );
    let resp = t.sign("001099012402", "pin-1", &digest_of("a")).await;
    assert_eq!(resp["status_code"], 403);
    assert_eq!(resp["message"], "credential status invalid");
    assert_eq!(t.get_json("/admin/stats").await["prompts"], 0);
}

#[tokio::test]
async fn a_signer_ending_404_has_no_certificate() {
    let t = spawn_mock().await;
    let certs = t.certificates("001099012404").await;
    assert_eq!(certs["status_code"], 200);
    assert_eq!(certs["data"]["user_certificates"], json!([]));
    let resp = t.sign("001099012404", "nocert-1", &digest_of("a")).await;
    assert_eq!(resp["status_code"], 404);
    assert_eq!(resp["message"], "credential not found");
}

#[tokio::test]
async fn a_signer_ending_208_never_answers() {
    let t = spawn_mock().await;
    t.sign("001099012208", "silent-1", &digest_of("a")).await;
    // A control signed at the same time with the same delay: once it is answered, the silent
    // one has had its chance to answer too.
    t.sign("001099012345", "control-1", &digest_of("a")).await;
    assert!(!t.wait_final("control-1").await["data"]["signatures"].is_null());
    let s = t.status("silent-1").await;
    assert_eq!(s["status_code"], 200);
    assert_eq!(s["message"], "sig_wait_for_user_confirm");
    assert!(s["data"]["signatures"].is_null());
}

#[tokio::test]
async fn a_signer_ending_900_gets_http_500_on_every_call() {
    let t = spawn_mock().await;
    for _ in 0..3 {
        let resp = t
            .post(SIGN, &sign_body("001099012900", "down-1", &digest_of("a")))
            .await
            .expect("sent");
        assert_eq!(resp.status(), 500);
        let body = json!({"sp_id": SP_ID, "sp_password": SP_PASSWORD, "user_id": "001099012900"});
        assert_eq!(t.post(CERTS, &body).await.expect("sent").status(), 500);
    }
    assert_eq!(t.get_json("/admin/stats").await["prompts"], 0);
}

#[tokio::test]
async fn a_signer_ending_901_fails_with_503_then_a_dropped_connection_then_works() {
    let t = spawn_mock().await;
    let body = sign_body("001099012901", "flaky-1", &digest_of("a"));
    let first = t.post(SIGN, &body).await.expect("first call answered");
    assert_eq!(first.status(), 503);
    let second = t.post(SIGN, &body).await;
    let err = second.expect_err("second call has its connection dropped");
    assert!(!err.is_timeout(), "dropped, not slow: {err}");
    assert!(err.status().is_none(), "no HTTP status at all: {err}");
    let third = t.sign("001099012901", "flaky-1", &digest_of("a")).await;
    assert_eq!(third["status_code"], 200);

    // Status calls are a separate kind with their own two failures.
    let path = "/sca/sp769/v1/signatures/sign/flaky-1/status";
    assert_eq!(
        t.post(path, &json!({})).await.expect("answered").status(),
        503
    );
    assert!(t.post(path, &json!({})).await.is_err());
    assert_eq!(t.wait_final("flaky-1").await["status_code"], 200);
    assert_eq!(
        t.get_json("/admin/stats").await["sign_requests"]["flaky-1"],
        1
    );
}

#[tokio::test]
async fn a_signer_ending_902_answers_after_five_seconds() {
    let t = spawn_mock().await;
    let started = Instant::now();
    let resp = t.sign("001099012902", "slow-1", &digest_of("a")).await;
    assert_eq!(resp["status_code"], 200);
    assert!(started.elapsed() >= Duration::from_secs(5));
}

async fn signed_with_cert(
    t: &TestMock,
    signer: &str,
    tid: &str,
    digest: &[u8; 32],
) -> (Vec<u8>, x509_cert::Certificate) {
    t.sign(signer, tid, digest).await;
    let done = t.wait_final(tid).await;
    assert_eq!(done["status_code"], 200, "{signer} signs");
    let sig = b64(&done["data"]["signatures"][0]["signature_value"]);
    let certs = t.certificates(signer).await;
    (
        sig,
        parse_cert(&b64(&certs["data"]["user_certificates"][0]["cert_data"])),
    )
}

#[tokio::test]
async fn a_signer_ending_503_returns_a_corrupted_signature() {
    let t = spawn_mock().await;
    let digest = digest_of("a");
    let (sig, cert) = signed_with_cert(&t, "001099012503", "bad-sig", &digest).await;
    assert_eq!(sig.len(), 256);
    assert!(!verifies(&cert, &digest, &sig));
}

#[tokio::test]
async fn a_signer_ending_505_signs_a_different_digest() {
    let t = spawn_mock().await;
    let digest = digest_of("a");
    let (sig, cert) = signed_with_cert(&t, "001099012505", "wrong-digest", &digest).await;
    assert!(!verifies(&cert, &digest, &sig));
    assert!(
        verifies(&cert, &Sha256::digest(digest), &sig),
        "it signed SHA-256(digest)"
    );
}

#[tokio::test]
async fn a_signer_ending_422_signs_with_an_expired_certificate() {
    let t = spawn_mock().await;
    let digest = digest_of("a");
    let (sig, cert) = signed_with_cert(&t, "001099012422", "expired", &digest).await;
    assert!(verifies(&cert, &digest, &sig));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    assert!(cert.tbs_certificate.validity.not_after.to_unix_duration() < now);
}

#[tokio::test]
async fn a_signer_ending_501_still_signs_validly_with_its_revoked_certificate() {
    let t = spawn_mock().await;
    let digest = digest_of("a");
    let (sig, cert) = signed_with_cert(&t, "001099012501", "revoked", &digest).await;
    assert!(verifies(&cert, &digest, &sig));
    let serial = cert.tbs_certificate.serial_number.as_bytes().to_vec();
    let state = t.mock.pki().cert_state(
        mock_carriers::pki::CaRef::Issuing(mock_carriers::pki::Provider::SmartCa),
        &serial,
    );
    assert!(matches!(
        state,
        mock_carriers::pki::issued::CertState::Revoked { .. }
    ));
}

#[tokio::test]
async fn a_signer_ending_999_waits_for_the_phone() {
    let t = spawn_mock().await;
    t.sign("001099012999", "manual-1", &digest_of("a")).await;
    t.sign("001099012999", "manual-2", &digest_of("b")).await;
    // A control with the approve delay: once it is answered, the delay has passed.
    t.sign("001099012345", "control-2", &digest_of("c")).await;
    assert!(!t.wait_final("control-2").await["data"]["signatures"].is_null());
    assert!(t.status("manual-1").await["data"]["signatures"].is_null());

    let list = t
        .get_json("/admin/requests?signer=001099012999&status=pending")
        .await;
    let rows = list["requests"].as_array().expect("requests");
    assert_eq!(rows.len(), 2);
    let id = rows
        .iter()
        .find(|r| r["transaction_id"] == "manual-1")
        .expect("manual-1")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let bad_pin = t
        .post(
            &format!("/admin/requests/{id}/approve"),
            &json!({"pin": "12"}),
        )
        .await
        .expect("sent");
    assert_eq!(bad_pin.status(), 400);
    let ok = t
        .post(
            &format!("/admin/requests/{id}/approve"),
            &json!({"pin": "123456"}),
        )
        .await
        .expect("sent");
    assert_eq!(ok.status(), 200);
    assert_eq!(t.status("manual-1").await["status_code"], 200);
    assert!(t.status("manual-1").await["data"]["signatures"].is_array());
    let again = t
        .post(&format!("/admin/requests/{id}/reject"), &json!({}))
        .await
        .expect("sent");
    assert_eq!(again.status(), 409, "a finished request stays finished");

    let reject = t
        .post("/admin/requests/manual-2/reject", &json!({}))
        .await
        .expect("sent");
    assert_eq!(reject.status(), 200);
    assert_eq!(t.status("manual-2").await["status_code"], 4002);
    let missing = t
        .post("/admin/requests/nope/approve", &json!({}))
        .await
        .expect("sent");
    assert_eq!(missing.status(), 404);
}
