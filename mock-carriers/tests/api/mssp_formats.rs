//! The mock MSSP's answer formats and dialects: PKCS7 (CMS SignedData, detached over a
//! DigestInfo's digest or attached over text), checked with `openssl cms -verify`, and the
//! strict-VN switch (VN wrapper namespace, unqualified part mirrored in the answer).

use std::process::Command;

use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::mssp_client::*;

#[tokio::test]
async fn the_pkcs7_format_answers_with_cms_that_openssl_verifies() -> TestResult {
    let t = spawn_mock().await;
    let data = b"ho so dang ky doanh nghiep";
    let digest: [u8; 32] = Sha256::digest(data).into();
    let mut req = SigReq::new("mobifone-sim", "84912345678", "Kcms1", &digest).mode("synch");
    req.format = Some(PKCS7);
    let answer = t.mss_sign(&req).await;
    assert_eq!(answer.status_code(), Some(500), "{}", answer.body);
    let cms = answer.signature();
    assert_eq!(cms.first(), Some(&0x30), "a DER ContentInfo");

    let mut text = SigReq::new("mobifone-sim", "84912345678", "Kcms2", &digest).mode("synch");
    text.format = Some(PKCS7);
    text.dtbs = (
        "MimeType=\"text/plain\" Encoding=\"UTF-8\"".to_owned(),
        "Toi dong y".to_owned(),
    );
    let attached = t.mss_sign(&text).await;
    assert_eq!(attached.status_code(), Some(500), "{}", attached.body);

    if !mock_carriers::prerequisites::openssl() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let (sig, content, root) = (
        dir.path().join("sig.der"),
        dir.path().join("data.bin"),
        dir.path().join("root.pem"),
    );
    std::fs::write(&sig, &cms)?;
    std::fs::write(&content, data)?;
    std::fs::write(
        &root,
        mock_carriers::pki::pem("CERTIFICATE", &t.mock.root_der()),
    )?;
    let out = Command::new("openssl")
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any", "-in",
        ])
        .arg(&sig)
        .arg("-content")
        .arg(&content)
        .arg("-CAfile")
        .arg(&root)
        .args(["-out", "/dev/null"])
        .output()?;
    assert!(
        out.status.success(),
        "openssl cms -verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    std::fs::write(&sig, attached.signature())?;
    let out = Command::new("openssl")
        .args(["cms", "-verify", "-inform", "DER", "-purpose", "any", "-in"])
        .arg(&sig)
        .arg("-CAfile")
        .arg(&root)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"Toi dong y");
    Ok(())
}

#[tokio::test]
async fn strict_vn_mode_wants_the_vn_wrapper_namespace_and_mirrors_the_unqualified_part() {
    let t = spawn_mock_with(|c| c.mssp_strict_vn = true).await;
    let digest = digest_of("vn");
    let plain = SigReq::new("viettel-sim", "84912345678", "Kvn1", &digest).mode("synch");
    let refused = t.mss_sign(&plain).await;
    assert_eq!(refused.http, 500);
    assert!(
        refused.body.contains("Cannot find dispatch method"),
        "{}",
        refused.body
    );

    let mut vn = SigReq::new("viettel-sim", "84912345678", "Kvn2", &digest).mode("synch");
    vn.wrapper_ns = Some("http://ae.mobile-id.vn/TS102204/etsi204");
    vn.qualified = false;
    let answer = t.mss_sign(&vn).await;
    assert_eq!(answer.status_code(), Some(500), "{}", answer.body);
    assert!(answer
        .body
        .contains("xmlns:w=\"http://ae.mobile-id.vn/TS102204/etsi204\""));
    assert!(
        answer.body.contains("<MSS_SignatureResp "),
        "unqualified part: {}",
        answer.body
    );

    let mut server = vn.clone().mode("asynchServerServer");
    server.ap_trans_id = "Kvn3".to_owned();
    server.ap_url = Some("http://127.0.0.1:9/callbacks/viettel-sim".to_owned());
    assert_eq!(
        t.mss_sign(&server).await.fault().map(|f| f.1).as_deref(),
        Some("mss:_101")
    );
}
