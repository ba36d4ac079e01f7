//! A SmartCA signature end to end: identity extracted, signature independently verifiable.

use base64::prelude::{Engine as _, BASE64_STANDARD};
use der::{Decode, Encode};
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{digest_of, spawn_app};

fn b64(v: &serde_json::Value) -> Vec<u8> {
    BASE64_STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("base64")
}

#[tokio::test]
async fn a_citizen_signs_and_the_session_carries_identity_and_a_verifiable_signature() {
    let app = spawn_app().await;
    let s = app
        .start("001099012345", json!({"reference": "reg-1"}))
        .await;
    assert_eq!(s["status"], "pending");
    assert_eq!(s["verification_code"].as_str().map(str::len), Some(4));
    assert!(s["display_text"]
        .as_str()
        .is_some_and(|t| t.contains(s["verification_code"].as_str().unwrap_or("????"))));

    let done = app.finish(s["id"].as_str().expect("id"), 20).await;
    assert_eq!(done["status"], "signed", "{done}");
    let r = &done["result"];
    assert_eq!(r["identity"]["kind"], "individual");
    assert_eq!(r["identity"]["citizen_id"], "001099012345");
    assert_eq!(r["verification"]["signature"], "valid");
    assert_eq!(r["verification"]["chain"], "trusted");
    assert!(done["completed_at"].is_string());

    // Check the signature outside the gateway: RSA PKCS#1 v1.5 / SHA-256 over the digest.
    let cert = x509_cert::Certificate::from_der(&b64(&r["certificate"])).expect("cert");
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .expect("spki");
    let key = RsaPublicKey::from_public_key_der(&spki).expect("rsa key");
    let digest = b64(&done["digest"]);
    assert_eq!(
        done["digest"].as_str(),
        Some(digest_of(b"001099012345").as_str())
    );
    key.verify(
        Pkcs1v15Sign::new::<Sha256>(),
        &digest,
        &b64(&r["signature"]),
    )
    .expect("signature verifies over the session digest");
}

#[tokio::test]
async fn a_business_signs_and_its_tax_code_is_extracted() {
    let app = spawn_app().await;
    let s = app.start("0101234567", json!({})).await;
    let done = app.finish(s["id"].as_str().expect("id"), 20).await;
    assert_eq!(done["status"], "signed", "{done}");
    assert_eq!(done["result"]["identity"]["kind"], "organization");
    assert_eq!(done["result"]["identity"]["tax_code"], "0101234567");
}

#[tokio::test]
async fn data_is_hashed_and_signed() {
    let app = spawn_app().await;
    let data = BASE64_STANDARD.encode(b"to kyso with love");
    let s = app
        .start("001099012346", json!({"digest": null, "data": data}))
        .await;
    assert_eq!(
        s["digest"].as_str(),
        Some(digest_of(b"to kyso with love").as_str())
    );
    let done = app.finish(s["id"].as_str().expect("id"), 20).await;
    assert_eq!(done["status"], "signed", "{done}");
}

#[tokio::test]
async fn a_person_approves_on_the_virtual_phone() {
    let app = spawn_app().await;
    let s = app.start("001099012999", json!({})).await;
    let id = s["id"].as_str().expect("id");
    let pending = app.phone_requests("001099012999").await;
    assert_eq!(pending.len(), 1, "one prompt on the phone");
    let text = pending[0].to_string();
    assert!(
        text.contains(s["verification_code"].as_str().expect("code")),
        "the phone shows the verification code: {text}"
    );
    // The prompt can reach the phone a moment before the gateway records it.
    let mut status = Value::Null;
    for _ in 0..100 {
        status = app.get(id, 0).await["status"].clone();
        if status != "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "awaiting_user");
    let rid = pending[0]["id"].as_str().expect("request id");
    app.approve(rid).await;
    let done = app.finish(id, 20).await;
    assert_eq!(done["status"], "signed", "{done}");
}
