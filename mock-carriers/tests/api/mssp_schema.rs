//! An outside oracle for the mock MSSP's answers: every kind of part element it sends (async
//! ack, outstanding and final status, synch signature with certificate detail, receipt,
//! profile, notification) is validated against the ETSI schema `MSS-plus.xsd` (a copy in the
//! repository's tests/fixtures/etsi-xsd), with Python's `xmlschema`. Missing schemas fail;
//! missing xmlschema skips with a notice, and fails where `KYSO_REQUIRE_XMLSCHEMA` is set (CI).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::helpers::*;
use crate::mssp_client::*;

const VALIDATE: &str = r#"
import sys, xmlschema, xml.etree.ElementTree as ET
schema = xmlschema.XMLSchema10(sys.argv[1], validation='lax')
env = '{http://www.w3.org/2003/05/soap-envelope}'
for path in sys.argv[2:]:
    body = ET.parse(path).getroot().find(env + 'Body')
    part = list(list(body)[0])[0]
    errors = list(schema.iter_errors(part))
    if errors:
        print(path, errors[0])
        sys.exit(1)
print('valid', len(sys.argv) - 2)
"#;

/// The ETSI schemas, kept with the gateway's test fixtures in this repository.
fn schema_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/etsi-xsd");
    assert!(
        dir.join("MSS-plus.xsd").exists(),
        "{} is missing",
        dir.display()
    );
    dir
}

#[tokio::test]
async fn every_answer_the_mock_mssp_sends_validates_against_mss_plus_xsd() -> TestResult {
    let xsd = schema_dir();
    if !mock_carriers::prerequisites::xmlschema() {
        return Ok(());
    }
    let t = spawn_mock().await;
    let mut answers: Vec<String> = Vec::new();

    let ack = t
        .mss_sign(&SigReq::new(
            "viettel-sim",
            "84912345999",
            "Kx1",
            &digest_of("a"),
        ))
        .await;
    let id = ack.attr("MSS_SignatureResp", "MSSP_TransID").expect("id");
    answers.push(ack.body);
    answers.push(t.mss_status("viettel-sim", &id).await.body);
    t.post_ok(
        &format!("/admin/requests/{id}/approve"),
        &serde_json::json!({}),
    )
    .await;
    answers.push(t.mss_status("viettel-sim", &id).await.body);
    answers.push(
        t.soap(
            "viettel-sim",
            "MSS_ReceiptPort",
            &receipt_xml(&id, "84912345999"),
        )
        .await
        .body,
    );
    answers.push(
        t.soap(
            "viettel-sim",
            "MSS_ProfileQueryPort",
            &profile_xml("84912345678"),
        )
        .await
        .body,
    );

    let mut synch = SigReq::new("vnpt-sim", "84912345678", "Kx2", &digest_of("b")).mode("synch");
    synch.services = vec![SIGNING_CERT, VALIDATION];
    answers.push(t.mss_sign(&synch).await.body);

    let (tx, mut rx) = mpsc::channel::<String>(4);
    let app = axum::Router::new().route(
        "/n",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body).await;
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut push = SigReq::new("mobifone-sim", "84912345678", "Kx3", &digest_of("c"))
        .mode("asynchServerServer");
    push.ap_url = Some(format!("http://{addr}/n"));
    push.services = vec![SIGNING_CERT];
    assert_eq!(t.mss_sign(&push).await.status_code(), Some(100));
    let note = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await?
        .expect("notification");
    answers.push(note);

    let dir = tempfile::tempdir()?;
    let mut args = vec![
        "-c".to_owned(),
        VALIDATE.to_owned(),
        xsd.join("MSS-plus.xsd").display().to_string(),
    ];
    for (i, xml) in answers.iter().enumerate() {
        let path = dir.path().join(format!("answer{i}.xml"));
        std::fs::write(&path, xml)?;
        args.push(path.display().to_string());
    }
    let out = tokio::process::Command::new("python3")
        .args(&args)
        .output()
        .await?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schema validation: {said}\n{answers:#?}"
    );
    assert!(said.contains(&format!("valid {}", answers.len())), "{said}");
    Ok(())
}
