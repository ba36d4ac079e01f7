//! The revocation PKI over real HTTP: AIA/CRL DP in signer certificates, the OCSP responder
//! (checked with `openssl ocsp` and by decoding responses with x509-ocsp) and the CRLs
//! (checked with `openssl crl` and `openssl verify -crl_check`). The openssl tests skip with a
//! notice where openssl is not installed (a failure under `KYSO_REQUIRE_OPENSSL`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mock_carriers::pki::{pem, Provider};
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityInfoAccessSyntax, CrlDistributionPoints};
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus};

use crate::helpers::*;

fn openssl_available() -> bool {
    mock_carriers::prerequisites::openssl()
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs")
}

/// For openssl calls that talk to the mock: run without blocking the test's runtime.
async fn openssl_net(args: &[&str]) -> Output {
    tokio::process::Command::new("openssl")
        .args(args)
        .output()
        .await
        .expect("openssl runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Leaf, issuing CA and root of one signer written as PEM files.
struct Files {
    leaf: PathBuf,
    ca: PathBuf,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

fn write_files(mock: &TestMock, provider: Provider, signer: &str) -> (Files, Vec<u8>) {
    let cred = mock.mock.pki().signer(provider, signer).expect("signer");
    let (ca, root) = mock.mock.pki().chain(provider);
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, der: &[u8]| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, pem("CERTIFICATE", der)).expect("write PEM");
        path
    };
    let files = Files {
        leaf: write("leaf.pem", &cred.cert_der),
        ca: write("ca.pem", &ca),
        root: write("root.pem", &root),
        _dir: dir,
    };
    (files, cred.cert_der.clone())
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[tokio::test]
async fn signer_certificates_point_their_aia_and_crl_dp_at_the_served_mock() -> TestResult {
    let mock = spawn_mock().await;
    let cert = parse_cert(
        &mock
            .mock
            .pki()
            .signer(Provider::SmartCa, "001099012345")?
            .cert_der,
    );
    let exts = cert.tbs_certificate.extensions.clone().unwrap_or_default();
    let aia = exts
        .iter()
        .find(|e| e.extn_id.to_string() == "1.3.6.1.5.5.7.1.1")
        .expect("AIA present");
    let aia = AuthorityInfoAccessSyntax::from_der(aia.extn_value.as_bytes())?;
    let urls: Vec<(String, String)> = aia
        .0
        .iter()
        .filter_map(|ad| match &ad.access_location {
            GeneralName::UniformResourceIdentifier(u) => {
                Some((ad.access_method.to_string(), u.to_string()))
            }
            _ => None,
        })
        .collect();
    assert!(urls.contains(&(
        "1.3.6.1.5.5.7.48.1".to_owned(),
        format!("{}/ocsp/vnpt-smartca", mock.base)
    )));
    assert!(urls.contains(&(
        "1.3.6.1.5.5.7.48.2".to_owned(),
        format!("{}/pki/vnpt-smartca.crt", mock.base)
    )));
    let cdp = exts
        .iter()
        .find(|e| e.extn_id.to_string() == "2.5.29.31")
        .expect("CRL DP present");
    let cdp = CrlDistributionPoints::from_der(cdp.extn_value.as_bytes())?;
    let Some(DistributionPointName::FullName(names)) = &cdp.0[0].distribution_point else {
        panic!("full-name distribution point");
    };
    assert_eq!(
        names[0],
        GeneralName::UniformResourceIdentifier(
            format!("{}/crl/vnpt-smartca.crl", mock.base).try_into()?
        )
    );

    let (ca, _) = mock.mock.pki().chain(Provider::SmartCa);
    let served = mock
        .http
        .get(format!("{}/pki/vnpt-smartca.crt", mock.base))
        .send()
        .await?;
    assert_eq!(served.headers()["content-type"], "application/pkix-cert");
    assert_eq!(served.bytes().await?.to_vec(), ca);
    Ok(())
}

#[tokio::test]
async fn a_certificate_naming_an_old_base_url_is_reissued_over_the_same_key() -> TestResult {
    let mock = spawn_mock().await;
    let before = mock
        .mock
        .pki()
        .signer(Provider::ViettelSim, "84912345678")?;
    mock.mock
        .set_public_url("http://mock.example:9999/".to_owned());
    let after = mock
        .mock
        .pki()
        .signer(Provider::ViettelSim, "84912345678")?;
    assert_ne!(before.cert_der, after.cert_der);
    assert_ne!(before.meta.serial_hex, after.meta.serial_hex);
    let (old, new) = (parse_cert(&before.cert_der), parse_cert(&after.cert_der));
    assert_eq!(
        old.tbs_certificate.subject_public_key_info,
        new.tbs_certificate.subject_public_key_info
    );
    assert!(String::from_utf8_lossy(&after.cert_der)
        .contains("http://mock.example:9999/ocsp/viettel-sim"));
    assert_eq!(mock.mock.public_url(), "http://mock.example:9999");
    Ok(())
}

#[tokio::test]
async fn openssl_ocsp_says_good_for_a_normal_signer_and_revoked_for_a_501_signer() -> TestResult {
    if !openssl_available() {
        return Ok(());
    }
    let mock = spawn_mock().await;
    for (provider, signer, expected) in [
        (Provider::SmartCa, "001099012345", ": good"),
        (Provider::SmartCa, "001099012501", ": revoked"),
        (Provider::VnptSim, "84912345501", ": revoked"),
    ] {
        let (files, _) = write_files(&mock, provider, signer);
        let url = format!("{}/ocsp/{}", mock.base, provider.id());
        let args = [
            "ocsp",
            "-issuer",
            p(&files.ca),
            "-cert",
            p(&files.leaf),
            "-url",
            &url,
            "-CAfile",
            p(&files.root),
            "-resp_text",
        ];
        let out = openssl_net(&args).await;
        let said = text(&out);
        assert!(out.status.success(), "openssl ocsp for {signer}: {said}");
        assert!(said.contains("Response verify OK"), "{said}");
        assert!(said.contains(expected), "{signer}: {said}");
        assert!(said.contains("OCSP Nonce"), "the nonce is echoed: {said}");
        if expected == ": revoked" {
            assert!(said.contains("keyCompromise"), "{said}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_get_form_answers_and_a_foreign_or_garbled_request_is_refused() -> TestResult {
    if !openssl_available() {
        return Ok(());
    }
    let mock = spawn_mock().await;
    let (files, _) = write_files(&mock, Provider::MobifoneSim, "84912345501");
    let req_path = files.leaf.with_file_name("req.der");
    let out = openssl(&[
        "ocsp",
        "-issuer",
        p(&files.ca),
        "-cert",
        p(&files.leaf),
        "-no_nonce",
        "-reqout",
        p(&req_path),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let request = std::fs::read(&req_path)?;
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &request);
    let url = format!(
        "{}/ocsp/mobifone-sim/{}",
        mock.base,
        encoded
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    );
    let resp = mock.http.get(url).send().await?;
    assert_eq!(resp.headers()["content-type"], "application/ocsp-response");
    let answer = OcspResponse::from_der(&resp.bytes().await?)?;
    assert_eq!(answer.response_status, OcspResponseStatus::Successful);
    let bytes = answer.response_bytes.expect("response bytes");
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())?;
    let single = &basic.tbs_response_data.responses[0];
    assert!(matches!(single.cert_status, CertStatus::Revoked(_)));
    let next = single.next_update.expect("nextUpdate").0.to_unix_duration();
    let this = single.this_update.0.to_unix_duration();
    assert_eq!(next - this, std::time::Duration::from_secs(3600));
    assert!(basic.tbs_response_data.response_extensions.is_none());

    // The same request at another CA's responder: that CA did not issue it.
    let resp = mock
        .http
        .post(format!("{}/ocsp/viettel-sim", mock.base))
        .header("content-type", "application/ocsp-request")
        .body(request.clone())
        .send()
        .await?;
    let answer = OcspResponse::from_der(&resp.bytes().await?)?;
    let bytes = answer.response_bytes.expect("response bytes");
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())?;
    assert!(matches!(
        basic.tbs_response_data.responses[0].cert_status,
        CertStatus::Unknown(_)
    ));

    let garbled = mock
        .http
        .post(format!("{}/ocsp/mobifone-sim", mock.base))
        .body(b"\x30\x03not DER".to_vec())
        .send()
        .await?;
    assert_eq!(garbled.status(), 200);
    let answer = OcspResponse::from_der(&garbled.bytes().await?)?;
    assert_eq!(answer.response_status, OcspResponseStatus::MalformedRequest);
    let unknown_ca = mock
        .http
        .post(format!("{}/ocsp/nobody", mock.base))
        .body(request)
        .send()
        .await?;
    let answer = OcspResponse::from_der(&unknown_ca.bytes().await?)?;
    assert_eq!(answer.response_status, OcspResponseStatus::Unauthorized);
    Ok(())
}

#[tokio::test]
async fn a_serial_the_ca_never_issued_is_unknown() -> TestResult {
    if !openssl_available() {
        return Ok(());
    }
    let mock = spawn_mock().await;
    let (files, _) = write_files(&mock, Provider::SmartCa, "001099012345");
    let url = format!("{}/ocsp/vnpt-smartca", mock.base);
    let out = openssl_net(&[
        "ocsp",
        "-issuer",
        p(&files.ca),
        "-serial",
        "0x1234567",
        "-url",
        &url,
        "-CAfile",
        p(&files.root),
    ])
    .await;
    assert!(text(&out).contains("0x1234567: unknown"), "{}", text(&out));
    Ok(())
}

#[tokio::test]
async fn the_crl_lists_the_501_serial_and_openssl_verify_refuses_that_certificate() -> TestResult {
    if !openssl_available() {
        return Ok(());
    }
    let mock = spawn_mock().await;
    let (good, _) = write_files(&mock, Provider::ViettelSim, "84912345678");
    let (revoked, revoked_der) = write_files(&mock, Provider::ViettelSim, "84912345501");
    let resp = mock
        .http
        .get(format!("{}/crl/viettel-sim.crl", mock.base))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pkix-crl");
    let crl_der = resp.bytes().await?;
    let crl_path = good.leaf.with_file_name("ca.crl");
    std::fs::write(&crl_path, &crl_der)?;

    let out = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&crl_path),
        "-text",
        "-noout",
    ]);
    let listing = text(&out);
    assert!(out.status.success(), "{listing}");
    let serial = parse_cert(&revoked_der)
        .tbs_certificate
        .serial_number
        .to_string()
        .replace(':', "")
        .to_ascii_uppercase();
    assert!(
        listing
            .replace(':', "")
            .to_ascii_uppercase()
            .contains(&serial),
        "serial {serial} listed: {listing}"
    );
    assert!(listing.contains("X509v3 CRL Number"), "{listing}");
    assert!(listing.contains("Next Update"), "{listing}");
    assert!(listing.contains("Key Compromise"), "{listing}");

    let crl_pem = good.leaf.with_file_name("ca.crl.pem");
    let out = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&crl_path),
        "-out",
        p(&crl_pem),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let verify = |files: &Files| {
        openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            p(&files.root),
            "-untrusted",
            p(&files.ca),
            "-CRLfile",
            p(&crl_pem),
            p(&files.leaf),
        ])
    };
    let ok = verify(&good);
    assert!(ok.status.success(), "good certificate: {}", text(&ok));
    let refused = verify(&revoked);
    assert!(!refused.status.success(), "revoked certificate accepted");
    assert!(
        text(&refused).contains("certificate revoked"),
        "{}",
        text(&refused)
    );

    let root_crl = mock
        .http
        .get(format!("{}/crl/root.crl", mock.base))
        .send()
        .await?;
    assert_eq!(root_crl.status(), 200);
    let missing = mock
        .http
        .get(format!("{}/crl/nobody.crl", mock.base))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    Ok(())
}
