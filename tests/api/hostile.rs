//! Hostile certificate chains through the USB-token path, made with fresh keys and names on
//! every run (`mock_carriers::pki::hostile`): self-issued "CA" certificates built to turn path
//! building into a search over orderings are refused as untrusted, raw and inside a CMS that
//! OpenSSL assembled. That they cost little, and nothing of other tenants' time, is measured by
//! `kyso-bench --only hostile` and pinned by the path's signature-check counts
//! (`verify::path::tests`) and the verification pool's tests (`verify::pool::tests`).

use std::path::Path;
use std::process::Command;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use mock_carriers::pki::hostile::{self_issued_chain, HostileSignature, Shape};
use mock_carriers::pki::pem;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{spawn_app_overriding, TestApp, KEY};
use crate::verifications::post;

async fn app() -> TestApp {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/root-ca.pem");
    let anchors = json!([root.display().to_string()]);
    spawn_app_overriding(500, vec![("usb.trust_anchors".into(), anchors)]).await
}

async fn verify(app: &TestApp, body: &Value) -> (u16, Value) {
    post(app, "/v1/verifications", body, KEY).await
}

fn raw_body(hostile: &HostileSignature) -> Value {
    json!({
        "digest": BASE64_STANDARD.encode(Sha256::digest(&hostile.data)),
        "signature": BASE64_STANDARD.encode(&hostile.signature),
        "certificate": BASE64_STANDARD.encode(&hostile.certificate),
        "chain": hostile.chain.iter().map(|c| BASE64_STANDARD.encode(c)).collect::<Vec<_>>(),
        "format": "pkcs1",
    })
}

fn assert_untrusted(status: u16, answer: &Value) {
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "untrusted_certificate", "{answer}");
    assert_eq!(answer["verification"]["signature"], "valid", "{answer}");
    assert_eq!(answer["verification"]["chain"], "untrusted", "{answer}");
}

/// What a USB-token plugin built on OpenSSL hands over: `openssl cms -sign` with the hostile
/// chain as extra certificates.
fn cms_body(app: &TestApp, hostile: &HostileSignature) -> Value {
    let dir = app.dir.path();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    };
    let data = write("data.bin", &hostile.data);
    let signer = write(
        "signer.pem",
        pem("CERTIFICATE", &hostile.certificate).as_bytes(),
    );
    let key = write(
        "signer.key",
        pem("PRIVATE KEY", &hostile.key_pkcs8).as_bytes(),
    );
    let chain: String = hostile
        .chain
        .iter()
        .map(|c| pem("CERTIFICATE", c))
        .collect();
    let chain = write("chain.pem", chain.as_bytes());
    let out = Command::new("openssl")
        .args([
            "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER",
        ])
        .arg("-in")
        .arg(&data)
        .arg("-signer")
        .arg(&signer)
        .arg("-inkey")
        .arg(&key)
        .arg("-certfile")
        .arg(&chain)
        .output()
        .expect("openssl cms");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json!({
        "digest": BASE64_STANDARD.encode(Sha256::digest(&hostile.data)),
        "signature": BASE64_STANDARD.encode(out.stdout),
        "format": "cms",
    })
}

#[tokio::test]
async fn self_issued_cas_sharing_one_key_are_refused_as_untrusted() {
    let app = app().await;
    let hostile = self_issued_chain(8, Shape::SharedKey, b"dang ky").expect("chain");
    let (status, answer) = verify(&app, &raw_body(&hostile)).await;
    assert_untrusted(status, &answer);
}

#[tokio::test]
async fn a_cms_carrying_ten_cas_under_one_key_is_refused_as_untrusted() {
    let app = app().await;
    let hostile = self_issued_chain(10, Shape::SharedKey, b"ho so").expect("chain");
    let (status, answer) = verify(&app, &cms_body(&app, &hostile)).await;
    assert_untrusted(status, &answer);
}

#[tokio::test]
async fn a_cms_carrying_distinct_keyed_decoys_is_refused_as_a_path_too_complex() {
    let app = app().await;
    let hostile = self_issued_chain(15, Shape::DistinctKeys, b"ho so").expect("chain");
    let (status, answer) = verify(&app, &cms_body(&app, &hostile)).await;
    assert_untrusted(status, &answer);
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("too complex"), "{answer}");
}
