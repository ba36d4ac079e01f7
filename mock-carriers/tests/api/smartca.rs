//! The SmartCA SP769 API: shapes, validation, idempotent sign, signatures, webhooks.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn get_certificate_lists_the_signer_certificate_with_its_chain() {
    let t = spawn_mock().await;
    let body = t.certificates("001099012345").await;
    assert_eq!(body["status_code"], 200);
    let certs = body["data"]["user_certificates"].as_array().expect("list");
    assert_eq!(certs.len(), 1);
    let c = &certs[0];
    assert_eq!(c["service_type"], "SMARTCA");
    assert_eq!(c["cert_status"], "Đang hoạt động");
    let cert = parse_cert(&b64(&c["cert_data"]));
    let ca = parse_cert(&b64(&c["chain_data"]["ca_cert"]));
    assert!(issued_by(&cert, &ca));
    assert_eq!(b64(&c["chain_data"]["root_cert"]), t.mock.root_der());
    let serial = hex::encode(cert.tbs_certificate.serial_number.as_bytes());
    assert_eq!(c["serial_number"].as_str().map(str::to_owned), Some(serial));
    assert!(c["cert_subject"]
        .as_str()
        .is_some_and(|s| s.contains("UID=CCCD:001099012345")));
    for key in [
        "cert_id",
        "service_name",
        "cert_valid_from",
        "cert_valid_to",
    ] {
        assert!(c[key].is_string(), "{key}");
    }
    let org = t.certificates("0101234567").await;
    assert_eq!(org["data"]["user_certificates"][0]["service_type"], "ESEAL");
}

#[tokio::test]
async fn a_signature_from_the_mock_verifies_against_its_certificate() {
    let t = spawn_mock().await;
    let cert_list = t.certificates("001099012345").await;
    let cert = parse_cert(&b64(&cert_list["data"]["user_certificates"][0]["cert_data"]));
    let digest = digest_of("register-4821");
    let accepted = t.sign("001099012345", "kyso-ses_1", &digest).await;
    assert_eq!(accepted["status_code"], 200);
    assert_eq!(accepted["message"], "sig_wait_for_user_confirm");
    assert_eq!(accepted["data"]["transaction_id"], "kyso-ses_1");
    assert!(accepted["data"]["tran_code"].is_string());

    let done = t.wait_final("kyso-ses_1").await;
    assert_eq!(done["status_code"], 200);
    assert_eq!(done["data"]["transaction_id"], "kyso-ses_1");
    let sigs = done["data"]["signatures"].as_array().expect("signatures");
    assert_eq!(sigs[0]["doc_id"], "register-4821");
    assert!(sigs[0].get("timestamp_signature").is_some());
    let sig = b64(&sigs[0]["signature_value"]);
    assert_eq!(sig.len(), 256);
    assert!(
        verifies(&cert, &digest, &sig),
        "PKCS#1 v1.5 over the digest"
    );
    assert!(!verifies(&cert, &digest_of("something else"), &sig));
}

#[tokio::test]
async fn status_answers_for_the_tran_code_as_well_as_the_transaction_id() {
    let t = spawn_mock().await;
    let accepted = t.sign("001099012345", "tx-code", &digest_of("a")).await;
    let code = accepted["data"]["tran_code"]
        .as_str()
        .expect("tran_code")
        .to_owned();
    let by_code = t.wait_final(&code).await;
    assert_eq!(by_code["status_code"], 200);
    assert_eq!(by_code["data"]["transaction_id"], "tx-code");
    assert_eq!(
        by_code["data"]["signatures"],
        t.status("tx-code").await["data"]["signatures"]
    );
}

#[tokio::test]
async fn the_same_transaction_id_twice_is_one_phone_prompt() {
    let t = spawn_mock_with(|c| c.approve_delay_ms = 60_000).await;
    let first = t
        .sign("001099012345", "kyso-ses_dup", &digest_of("x"))
        .await;
    let second = t
        .sign("001099012345", "kyso-ses_dup", &digest_of("x"))
        .await;
    assert_eq!(first["data"]["tran_code"], second["data"]["tran_code"]);
    let other = t
        .sign("001099012345", "kyso-ses_other", &digest_of("y"))
        .await;
    assert_ne!(other["data"]["tran_code"], first["data"]["tran_code"]);

    let stats = t.get_json("/admin/stats").await;
    assert_eq!(stats["sign_requests"]["kyso-ses_dup"], 2);
    assert_eq!(stats["sign_requests"]["kyso-ses_other"], 1);
    assert_eq!(stats["total"], 3);
    assert_eq!(stats["prompts"], 2);
    let list = t
        .get_json("/admin/requests?signer=001099012345&status=pending")
        .await;
    let dup: Vec<&Value> = list["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| r["transaction_id"] == "kyso-ses_dup")
        .collect();
    assert_eq!(dup.len(), 1);
}

#[tokio::test]
async fn reusing_a_transaction_id_for_another_user_is_refused() {
    let t = spawn_mock().await;
    t.sign("001099012345", "shared-id", &digest_of("x")).await;
    let clash = t.sign("001099012346", "shared-id", &digest_of("x")).await;
    assert_eq!(clash["status_code"], 400);
}

#[tokio::test]
async fn wrong_service_provider_credentials_get_401() {
    let t = spawn_mock().await;
    let mut body = sign_body("001099012345", "t-401", &digest_of("x"));
    body["sp_password"] = json!("wrong");
    let resp = t.post_ok("/sca/sp769/v1/signatures/sign", &body).await;
    assert_eq!(resp["status_code"], 401);
    assert!(resp["data"].is_null());
    let certs = json!({"sp_id": "nobody", "sp_password": SP_PASSWORD, "user_id": "001099012345"});
    let resp = t
        .post_ok("/sca/sp769/v1/credentials/get_certificate", &certs)
        .await;
    assert_eq!(resp["status_code"], 401);
}

#[tokio::test]
async fn malformed_sign_requests_get_400() {
    let t = spawn_mock().await;
    let base = sign_body("001099012345", "t-400", &digest_of("x"));
    let bad_digests = [
        json!(hex::encode(digest_of("x")).to_uppercase()),
        json!("abcd"),
        json!(format!("{}00", hex::encode(digest_of("x")))),
        json!(null),
    ];
    for bad in bad_digests {
        let mut body = base.clone();
        body["sign_files"][0]["data_to_be_signed"] = bad.clone();
        let resp = t.post_ok("/sca/sp769/v1/signatures/sign", &body).await;
        assert_eq!(resp["status_code"], 400, "digest {bad}");
    }
    let mut body = base.clone();
    body["sign_files"][0]["sign_type"] = json!("file");
    assert_eq!(
        t.post_ok("/sca/sp769/v1/signatures/sign", &body).await["status_code"],
        400
    );
    let mut body = base.clone();
    body["sign_files"] = json!([]);
    assert_eq!(
        t.post_ok("/sca/sp769/v1/signatures/sign", &body).await["status_code"],
        400
    );
    let mut body = base.clone();
    body["transaction_id"] = json!("");
    assert_eq!(
        t.post_ok("/sca/sp769/v1/signatures/sign", &body).await["status_code"],
        400
    );
    let mut body = base;
    body["user_id"] = json!("../../etc/passwd");
    assert_eq!(
        t.post_ok("/sca/sp769/v1/signatures/sign", &body).await["status_code"],
        400
    );

    let resp = t
        .http
        .post(format!("{}/sca/sp769/v1/signatures/sign", t.base))
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 400);
    let huge = "a".repeat(300 * 1024);
    let resp = t
        .http
        .post(format!("{}/sca/sp769/v1/signatures/sign", t.base))
        .body(huge)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn status_of_an_unknown_transaction_is_404_in_the_body() {
    let t = spawn_mock().await;
    let resp = t.status("never-sent").await;
    assert_eq!(resp["status_code"], 404);
    assert!(resp["message"].is_string());
}

#[tokio::test]
async fn a_batch_is_one_prompt_with_a_signature_per_file() {
    let t = spawn_mock().await;
    let digests = [digest_of("one"), digest_of("two"), digest_of("three")];
    let mut body = sign_body("0101234567", "batch-1", &digests[0]);
    body["sign_files"] = json!(digests
        .iter()
        .enumerate()
        .map(
            |(i, d)| json!({"data_to_be_signed": hex::encode(d), "doc_id": format!("doc-{i}"),
                             "file_type": "pdf", "sign_type": "hash"})
        )
        .collect::<Vec<_>>());
    t.post_ok("/sca/sp769/v1/signatures/sign", &body).await;
    let cert = parse_cert(&b64(
        &t.certificates("0101234567").await["data"]["user_certificates"][0]["cert_data"]
    ));
    let done = t.wait_final("batch-1").await;
    let sigs = done["data"]["signatures"].as_array().expect("signatures");
    assert_eq!(sigs.len(), 3);
    for (i, d) in digests.iter().enumerate() {
        assert_eq!(sigs[i]["doc_id"], format!("doc-{i}"));
        assert!(verifies(&cert, d, &b64(&sigs[i]["signature_value"])));
    }
    assert_eq!(t.get_json("/admin/stats").await["prompts"], 1);
}

#[tokio::test]
async fn webhooks_report_signed_and_refused_requests_without_polling() {
    let t = spawn_mock().await;
    let (hooks, seen) = webhook_listener().await;
    t.mock
        .set_smartca_webhook_url(Some(format!("{hooks}/hook")));
    t.sign("001099012345", "hook-signed", &digest_of("a")).await;
    t.sign("001099012401", "hook-refused", &digest_of("b"))
        .await;
    let mut hooks: Vec<Value> = received(&seen, 2).await.into_iter().map(|h| h.1).collect();
    hooks.sort_by_key(|h| h["transaction_id"].as_str().map(str::to_owned));
    let (refused, signed) = (&hooks[0], &hooks[1]);
    assert_eq!(signed["transaction_id"], "hook-signed");
    assert_eq!(signed["sp_id"], SP_ID);
    assert_eq!(signed["status_code"], 200);
    assert_eq!(signed["signed_files"][0]["doc_id"], "register-4821");
    assert!(signed["signed_files"][0]["signature_value"].is_string());
    assert_eq!(refused["transaction_id"], "hook-refused");
    assert_eq!(refused["status_code"], 4002);
    assert_eq!(refused["message"], "signer_rejected");
    assert!(refused["signed_files"].is_null());
}

#[tokio::test]
async fn a_webhook_follows_a_decision_on_the_phone() {
    let t = spawn_mock().await;
    let (hooks, seen) = webhook_listener().await;
    t.mock
        .set_smartca_webhook_url(Some(format!("{hooks}/hook")));
    t.sign("001099012999", "hook-manual", &digest_of("a")).await;
    let resp = t
        .post("/admin/requests/hook-manual/reject", &json!({}))
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let hooks: Vec<Value> = received(&seen, 1).await.into_iter().map(|h| h.1).collect();
    assert_eq!(hooks[0]["status_code"], 4002);
    // Every push the decision made has been answered by now: one was sent, one arrived.
    assert_eq!(t.pushes_settled().await, (1, 1), "exactly one push sent");
    assert_eq!(seen.lock().expect("lock").len(), 1, "exactly one webhook");
}
