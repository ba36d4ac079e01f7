//! kyso's messages against the ETSI schemas: an outside oracle for mistakes that the adapter
//! and the mock MSSP, both written from the same notes, could share.

use super::*;

/// Validates the part element of each document against `MSS-plus.xsd` (tests/fixtures/
/// etsi-xsd) with Python's `xmlschema`, as the schemas' README says. `None`: the validator is
/// not on this machine, which fails the run where `KYSO_REQUIRE_XMLSCHEMA` is set (CI).
fn validate_against_etsi_schema(documents: &[String]) -> Option<Result<(), String>> {
    const SCRIPT: &str = "import sys, xmlschema, xml.etree.ElementTree as ET\n\
        s = xmlschema.XMLSchema10(sys.argv[1], validation='lax')\n\
        for path in sys.argv[2:]:\n\
        \x20   body = ET.parse(path).getroot().find('{http://www.w3.org/2003/05/soap-envelope}Body')\n\
        \x20   s.validate(list(list(body)[0])[0])\n";
    let xsd = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/etsi-xsd/MSS-plus.xsd");
    assert!(xsd.exists(), "{} is missing", xsd.display());
    if !mock_carriers::prerequisites::xmlschema() {
        return None;
    }
    let dir = tempfile::tempdir().ok()?;
    let mut args = vec![xsd.display().to_string()];
    for (i, doc) in documents.iter().enumerate() {
        let path = dir.path().join(format!("{i}.xml"));
        std::fs::write(&path, doc).ok()?;
        args.push(path.display().to_string());
    }
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .args(&args)
        .output()
        .ok()?;
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

#[tokio::test]
async fn every_message_kyso_sends_validates_against_the_etsi_schema() {
    let (m, script) = mssp(
        "asynch_server_server",
        vec![
            resp("MSS_SignatureResp", 100, ""),
            resp("MSS_StatusResp", 500, &signature("AQID")),
            // The receipt (on its own task) and the profile query may come in either order.
            resp("MSS_ProfileResp", 100, ""),
            resp("MSS_ProfileResp", 100, ""),
        ],
    )
    .await;
    let m = Mssp {
        receipt_message: Some("Đã nhận chữ ký".into()),
        ..m
    };
    let started = m.start(&sign_request()).await.expect("started");
    status(&m, &started.state).await.expect("status");
    m.certificates(MSISDN).await.expect("profile");
    let note = resp("MSS_StatusResp", 500, &signature("AQID")).1;
    let reply = m.handle_callback(note.as_bytes()).expect("notification");
    // The receipt goes out on its own task.
    for _ in 0..50 {
        if script.seen().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut documents: Vec<String> = script.seen().into_iter().map(|(_, body)| body).collect();
    assert_eq!(documents.len(), 4, "signature, status, receipt, profile");
    documents.extend(
        reply
            .reply
            .map(|r| String::from_utf8_lossy(&r.body).into_owned()),
    );
    if let Some(verdict) = validate_against_etsi_schema(&documents) {
        verdict.expect("every message validates");
        // The oracle does catch a mistake: a part without its required MajorVersion.
        let broken = documents[0].replacen(r#"MajorVersion="1" "#, "", 1);
        assert!(matches!(
            validate_against_etsi_schema(&[broken]),
            Some(Err(_))
        ));
    }
}
