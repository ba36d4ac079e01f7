//! `kyso verify`, the built binary, against every case of the OpenSSL fixture manifest (the
//! revoked one once with its CRL and once with its OCSP response, the CMS ones with their
//! content): the verdict it prints and its exit status are what the manifest says.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
struct Manifest {
    cases: Vec<Case>,
    cms: Vec<CmsCase>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    cert: String,
    sig: String,
    scheme: String,
    verdict: String,
    #[serde(default)]
    identity: Option<Map<String, Value>>,
    #[serde(default)]
    crl: Option<String>,
    #[serde(default)]
    ocsp: Option<String>,
}

#[derive(Deserialize)]
struct CmsCase {
    name: String,
    file: String,
    content: String,
    verdict: String,
}

fn fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file)
}

fn manifest() -> Manifest {
    let bytes = std::fs::read(fixture("manifest.json")).expect("manifest.json");
    serde_json::from_slice(&bytes).expect("manifest.json parses")
}

fn kyso_verify(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kyso"))
        .arg("verify")
        .args(["--anchor", &fixture("root-ca.pem").display().to_string()])
        .args([
            "--intermediate",
            &fixture("issuing-ca.pem").display().to_string(),
        ])
        .args(args)
        .output()
        .expect("kyso runs")
}

/// The printed JSON, after checking the exit status agrees with its verdict.
fn answer(out: &Output, what: &str) -> Value {
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let valid = json["verdict"] == "valid";
    assert_eq!(
        out.status.code(),
        Some(if valid { 0 } else { 1 }),
        "{what}: {json}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(json["verdict"].as_str().unwrap_or("?")),
        "{what}: stderr names the verdict: {stderr}"
    );
    json
}

fn arg(flag: &str, file: &str) -> [String; 2] {
    [flag.to_owned(), fixture(file).display().to_string()]
}

#[test]
fn every_signature_case_of_the_manifest_gets_its_verdict() {
    for case in manifest().cases {
        let scheme = match case.scheme.as_str() {
            "pss-sha256-salt32" => "pss",
            other => other,
        };
        let mut base: Vec<String> = [
            arg("--cert", &case.cert),
            arg("--sig", &case.sig),
            arg("--digest", "data.sha256"),
        ]
        .concat();
        base.extend(["--scheme".into(), scheme.into()]);
        let mut runs = Vec::new();
        if let Some(crl) = &case.crl {
            runs.push(("crl", [base.clone(), arg("--crl", crl).to_vec()].concat()));
        }
        if let Some(ocsp) = &case.ocsp {
            runs.push((
                "ocsp",
                [base.clone(), arg("--ocsp-response", ocsp).to_vec()].concat(),
            ));
        }
        if runs.is_empty() {
            runs.push(("files", base));
        }
        for (how, args) in runs {
            let what = format!("{} ({how})", case.name);
            let json = answer(&kyso_verify(&args), &what);
            assert_eq!(json["verdict"], case.verdict.as_str(), "{what}: {json}");
            for (field, expected) in case.identity.iter().flatten() {
                assert_eq!(
                    &json["identity"][field], expected,
                    "{what}: identity.{field}"
                );
            }
        }
    }
}

#[test]
fn every_cms_case_of_the_manifest_gets_its_verdict() {
    for case in manifest().cms {
        let args = [arg("--cms", &case.file), arg("--content", &case.content)].concat();
        let json = answer(&kyso_verify(&args), &case.name);
        assert_eq!(
            json["verdict"],
            case.verdict.as_str(),
            "{}: {json}",
            case.name
        );
    }
}

#[test]
fn the_revoked_signer_is_refused_by_its_crl_and_says_so() {
    let args = [
        arg("--cert", "revoked.der"),
        arg("--sig", "sig-revoked.pkcs1"),
        arg("--digest", "data.sha256"),
        arg("--crl", "issuing-ca.crl"),
    ]
    .concat();
    let json = answer(&kyso_verify(&args), "revoked");
    assert_eq!(json["verification"]["revocation"], "revoked");
    assert_eq!(json["verification"]["signature"], "valid");
    assert!(json["message"]
        .as_str()
        .unwrap_or_default()
        .contains("revoked"));
}

#[test]
fn without_revocation_files_the_answer_says_not_checked() {
    let args = [
        arg("--cert", "person.pem"),
        arg("--sig", "sig-person.pkcs1"),
        arg("--digest", "data.sha256"),
    ]
    .concat();
    let json = answer(&kyso_verify(&args), "person");
    assert_eq!(json["verdict"], "valid");
    assert_eq!(json["verification"]["revocation"], "not_checked");
    assert_eq!(json["identity"]["citizen_id"], "001099012345");
}

#[test]
fn validity_is_judged_at_the_given_time() {
    let args = [
        arg("--cert", "person.der"),
        arg("--sig", "sig-person.pkcs1"),
        arg("--digest", "data.sha256"),
        ["--at".into(), "2040-01-01T00:00:00Z".into()],
    ]
    .concat();
    let json = answer(&kyso_verify(&args), "person in 2040");
    assert_eq!(json["verdict"], "certificate_expired");
    assert_eq!(json["verification"]["chain"], "expired");
}

#[test]
fn a_signer_the_certificate_does_not_name_is_a_mismatch() {
    let args = [
        arg("--cert", "person.der"),
        arg("--sig", "sig-person.pkcs1"),
        arg("--digest", "data.sha256"),
        ["--signer".into(), "0100686209".into()],
    ]
    .concat();
    let json = answer(&kyso_verify(&args), "person as a company");
    assert_eq!(json["verdict"], "signer_mismatch");
}

#[test]
fn unreadable_input_exits_2_without_a_verdict() {
    let args = [
        arg("--cert", "person.der"),
        arg("--sig", "sig-person.pkcs1"),
        arg("--digest", "data.txt"),
    ]
    .concat();
    let out = kyso_verify(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("digest"));
    let missing = kyso_verify(&arg("--cert", "person.der"));
    assert_eq!(missing.status.code(), Some(2), "neither --sig nor --cms");
}
