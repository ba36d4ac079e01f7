//! `format: "cms"`: the detached CMS SignedData kyso assembles around the provider's signature
//! is accepted by `openssl cms -verify` with the mock root as the only trust, for exactly the
//! signed content, also when the gateway restarts while the user is deciding.

use std::path::Path;
use std::process::Command;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{spawn_app, TestApp};

const DATA: &[u8] = "Đăng ký tài khoản Cổng Dịch vụ công - hồ sơ 7781\n".as_bytes();

fn cms_session() -> Value {
    json!({"digest": null, "data": BASE64_STANDARD.encode(DATA), "format": "cms"})
}

/// Runs `openssl cms -verify` on the session's CMS over `content`; true when OpenSSL accepts.
fn openssl_accepts(app: &TestApp, session: &Value, content: &[u8]) -> bool {
    let dir = app.dir.path();
    let cms = BASE64_STANDARD
        .decode(session["result"]["signature"].as_str().expect("signature"))
        .expect("base64 CMS");
    let (cms_path, content_path) = (dir.join("sig.p7s"), dir.join("content.bin"));
    std::fs::write(&cms_path, cms).expect("write CMS");
    std::fs::write(&content_path, content).expect("write content");
    let root = app.mock.carriers.root_pem_path();
    let out = Command::new("openssl")
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any",
        ])
        .arg("-in")
        .arg(&cms_path)
        .arg("-content")
        .arg(&content_path)
        .arg("-CAfile")
        .arg(&root)
        .args(["-out", "/dev/null"])
        .output()
        .expect("openssl runs");
    if !out.status.success() {
        eprintln!("openssl: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(Path::new(&root).exists());
    out.status.success()
}

#[tokio::test]
async fn a_cms_session_passes_openssl_cms_verify_for_its_content_only() {
    let app = spawn_app().await;
    let s = app.start("001099012345", cms_session()).await;
    assert_eq!(s["format"], "cms");
    let done = app.finish(s["id"].as_str().expect("id"), 40).await;
    assert_eq!(done["status"], "signed", "{done}");
    let result = &done["result"];
    assert_eq!(result["format"], "cms");
    assert_eq!(result["verification"]["signature"], "valid");
    assert_eq!(result["identity"]["citizen_id"], "001099012345");
    assert!(result["chain"].as_array().is_some_and(|c| !c.is_empty()));
    assert!(
        openssl_accepts(&app, &done, DATA),
        "openssl accepts the CMS"
    );
    assert!(
        !openssl_accepts(&app, &done, b"another document"),
        "openssl refuses it for other content"
    );
}

#[tokio::test]
async fn kyso_reads_back_the_cms_it_assembled() {
    let app = spawn_app().await;
    let s = app.start("0101234567", cms_session()).await;
    let done = app.finish(s["id"].as_str().expect("id"), 40).await;
    assert_eq!(done["status"], "signed", "{done}");
    let cms = BASE64_STANDARD
        .decode(done["result"]["signature"].as_str().expect("signature"))
        .expect("base64");
    let root = kyso::verify::TrustAnchors::from_der(vec![app.mock.carriers.root_der()])
        .expect("mock root");
    let digest: [u8; 32] = Sha256::digest(DATA).into();
    let verdict = kyso::verify::verify_cms(&cms, &digest, &root, chrono::Utc::now(), &[])
        .expect("kyso accepts its own CMS");
    assert_eq!(verdict.identity.tax_code.as_deref(), Some("0101234567"));
}

#[tokio::test]
async fn the_signed_attributes_survive_a_restart_while_the_user_decides() {
    let mut app = spawn_app().await;
    let s = app.start("001099023999", cms_session()).await;
    let id = s["id"].as_str().expect("id").to_owned();
    let rid = app.first_prompt("001099023999").await;
    app.restart().await;
    app.approve(&rid).await;
    let done = app.finish(&id, 30).await;
    assert_eq!(done["status"], "signed", "{done}");
    assert!(openssl_accepts(&app, &done, DATA));
    let stats = app.mock_json(reqwest::Method::GET, "/admin/stats").await;
    assert_eq!(stats["sign_requests"][format!("kyso-{id}")], 1, "{stats}");
}
