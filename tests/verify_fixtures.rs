//! Runs `kyso::verify` against the interop fixture set made by OpenSSL (tests/fixtures, see
//! make.sh and manifest.json): an implementation nobody on the project wrote decides what a
//! valid signature, a trusted path and the identity fields look like.

use std::path::Path;

use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use kyso::verify::{
    parse_identity, signer_matches, verify, Evidence, IdentityKind, RevocationPolicy, Scheme,
    SignatureCheck, TrustAnchors, Verdict, Verifier, VerifyError,
};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
struct Manifest {
    digest_b64: String,
    tax_code: String,
    citizen_id: String,
    msisdn: String,
    cases: Vec<Case>,
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

fn read(file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn manifest() -> Manifest {
    serde_json::from_slice(&read("manifest.json")).expect("manifest.json parses")
}

fn root() -> TrustAnchors {
    TrustAnchors::from_der(vec![read("root-ca.der")]).expect("root-ca.der loads")
}

fn anchors(files: &[&str]) -> TrustAnchors {
    TrustAnchors::from_der(files.iter().map(|f| read(f)).collect()).expect("anchors load")
}

/// A signing time at which every fixture certificate except `expired` is valid, taken from the
/// fixtures themselves so that regenerating them (make.sh) does not break the test.
fn signing_time() -> DateTime<Utc> {
    let latest_start = manifest()
        .cases
        .iter()
        .map(|case| {
            parse_identity(&read(&case.cert))
                .expect("fixture parses")
                .not_before
        })
        .max()
        .expect("manifest has cases");
    latest_start + Duration::hours(1)
}

/// One fixture signature with everything `verify` needs; tests change a field to make a case.
struct Signed {
    digest: [u8; 32],
    signature: Vec<u8>,
    scheme: Scheme,
    certificate: Vec<u8>,
    chain: Vec<Vec<u8>>,
    at: DateTime<Utc>,
}

impl Signed {
    /// A PKCS#1 v1.5 signature over data.sha256, sent with the issuing CA as its chain.
    fn new(certificate: &str, signature: &str) -> Self {
        let digest: [u8; 32] = read("data.sha256")
            .try_into()
            .expect("data.sha256 is 32 bytes");
        Self {
            digest,
            signature: read(signature),
            scheme: Scheme::Pkcs1v15,
            certificate: read(certificate),
            chain: vec![read("issuing-ca.der")],
            at: signing_time(),
        }
    }

    fn check(&self) -> SignatureCheck<'_> {
        SignatureCheck {
            digest: &self.digest,
            signature: &self.signature,
            scheme: self.scheme,
            certificate: &self.certificate,
            chain: &self.chain,
            at: self.at,
        }
    }

    fn verify_with(&self, anchors: &TrustAnchors) -> Result<Verdict, VerifyError> {
        verify(&self.check(), anchors)
    }

    /// With revocation judged from files only, as `kyso verify` does.
    async fn verify_offline(&self, evidence: Evidence) -> Result<Verdict, VerifyError> {
        Verifier::offline(evidence)
            .verify(&self.check(), &root(), RevocationPolicy::Prefer)
            .await
            .map_err(|refusal| refusal.error)
    }
}

fn scheme(name: &str) -> Scheme {
    match name {
        "pkcs1v15" => Scheme::Pkcs1v15,
        "pss-sha256-salt32" => Scheme::PssSha256,
        other => panic!("manifest scheme {other} is unknown to this test"),
    }
}

#[test]
fn the_manifest_digest_is_the_digest_of_data_txt() {
    let from_manifest = base64::engine::general_purpose::STANDARD
        .decode(manifest().digest_b64)
        .expect("digest_b64 is base64");
    assert_eq!(
        from_manifest,
        Signed::new("org.der", "sig-org.pkcs1").digest
    );
}

#[tokio::test]
async fn every_manifest_case_gets_its_verdict() {
    let manifest = manifest();
    let mut failures = Vec::new();
    for case in &manifest.cases {
        let mut signed = Signed::new(&case.cert, &case.sig);
        signed.scheme = scheme(&case.scheme);
        // Revocation cases are judged once with each piece of evidence the manifest names;
        // the others need none.
        let mut runs = Vec::new();
        if let Some(crl) = &case.crl {
            let evidence = Evidence {
                crls: vec![read(crl)],
                ..Evidence::default()
            };
            runs.push(("crl", signed.verify_offline(evidence).await));
        }
        if let Some(ocsp) = &case.ocsp {
            let evidence = Evidence {
                ocsp_responses: vec![read(ocsp)],
                ..Evidence::default()
            };
            runs.push(("ocsp", signed.verify_offline(evidence).await));
        }
        if runs.is_empty() {
            runs.push(("no revocation", signed.verify_with(&root())));
        }
        for (how, result) in runs {
            match (result, case.verdict.as_str()) {
                (Ok(verdict), "valid") => {
                    let actual =
                        serde_json::to_value(&verdict.identity).expect("identity serialises");
                    for (field, expected) in case.identity.iter().flatten() {
                        if actual.get(field) != Some(expected) {
                            failures.push(format!(
                                "{}: identity.{field} is {:?}, manifest says {expected}",
                                case.name,
                                actual.get(field)
                            ));
                        }
                    }
                }
                (Ok(_), expected) => failures.push(format!(
                    "{} ({how}): valid, manifest says {expected}",
                    case.name
                )),
                (Err(err), expected) if err.code() != expected => failures.push(format!(
                    "{} ({how}): {} ({err}), manifest says {expected}",
                    case.name,
                    err.code()
                )),
                (Err(_), _) => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_valid_verdict_says_signature_valid_chain_trusted_revocation_not_checked() {
    let before = Utc::now();
    let verdict = Signed::new("org.der", "sig-org.pkcs1")
        .verify_with(&root())
        .expect("org signature is valid");
    assert!(verdict.verification.checked_at >= before);
    let json = serde_json::to_value(&verdict).expect("verdict serialises");
    assert_eq!(json["verification"]["signature"], "valid");
    assert_eq!(json["verification"]["chain"], "trusted");
    assert_eq!(json["verification"]["revocation"], "not_checked");
    assert_eq!(json["identity"]["kind"], "organization");
    assert_eq!(json["identity"]["issuer"], "Interop Issuing CA");
    assert_eq!(
        json["identity"]["name"],
        "CÔNG TY TNHH THƯƠNG MẠI ÁNH DƯƠNG"
    );
    assert_eq!(
        json["identity"]["uids"],
        serde_json::json!(["MST:0100686209-199"])
    );
}

#[test]
fn a_chain_in_any_order_that_includes_the_root_is_trusted() {
    let mut signed = Signed::new("person.der", "sig-person.pkcs1");
    signed.chain = vec![
        read("root-ca.der"),
        read("other-root.der"),
        read("issuing-ca.der"),
    ];
    assert!(signed.verify_with(&root()).is_ok());
}

#[test]
fn without_the_intermediate_there_is_no_path_to_the_root() {
    let mut signed = Signed::new("person.der", "sig-person.pkcs1");
    signed.chain.clear();
    let err = signed.verify_with(&root()).expect_err("no path");
    assert_eq!(err.code(), "untrusted_certificate");
    assert!(err.to_string().contains("Interop Issuing CA"), "{err}");
}

#[test]
fn an_issuing_ca_configured_as_anchor_is_trusted_as_is() {
    let mut signed = Signed::new("person.der", "sig-person.pkcs1");
    signed.chain.clear();
    assert!(signed.verify_with(&anchors(&["issuing-ca.der"])).is_ok());
}

#[test]
fn another_root_does_not_vouch_for_the_fixture_signers() {
    let err = Signed::new("person.der", "sig-person.pkcs1")
        .verify_with(&anchors(&["other-root.der"]))
        .expect_err("untrusted");
    assert_eq!(err.code(), "untrusted_certificate");
}

#[test]
fn no_trust_anchors_trust_nothing() {
    let none = anchors(&[]);
    assert!(none.is_empty());
    let err = Signed::new("person.der", "sig-person.pkcs1")
        .verify_with(&none)
        .expect_err("untrusted");
    assert_eq!(err.code(), "untrusted_certificate");
}

#[test]
fn validity_is_judged_at_the_signing_time() {
    let mut signed = Signed::new("person.der", "sig-person.pkcs1");
    for (year, what) in [(2020, "before issue"), (2060, "after expiry")] {
        signed.at = Utc
            .with_ymd_and_hms(year, 6, 1, 0, 0, 0)
            .single()
            .expect("valid date");
        let err = signed.verify_with(&root()).expect_err(what);
        assert_eq!(err.code(), "certificate_expired", "{what}: {err}");
    }
}

#[test]
fn a_signer_valid_at_a_time_its_issuing_ca_was_not_is_untrusted() {
    let mut signed = Signed::new("expired.der", "sig-expired.pkcs1");
    signed.at = parse_identity(&signed.certificate)
        .expect("parses")
        .not_before
        + Duration::days(1);
    let err = signed
        .verify_with(&root())
        .expect_err("CAs did not exist yet");
    assert_eq!(err.code(), "untrusted_certificate", "{err}");
}

#[test]
fn a_pss_signature_declared_as_pkcs1_is_invalid() {
    let err = Signed::new("person.der", "sig-person.pss")
        .verify_with(&root())
        .expect_err("wrong padding");
    assert_eq!(err.code(), "invalid_signature");
}

#[test]
fn an_unreadable_certificate_is_untrusted() {
    let mut signed = Signed::new("org.der", "sig-org.pkcs1");
    signed.certificate = b"not a certificate".to_vec();
    let err = signed.verify_with(&root()).expect_err("garbage");
    assert!(matches!(err, VerifyError::MalformedCertificate(_)));
    assert_eq!(err.code(), "untrusted_certificate");
}

#[test]
fn trust_anchors_load_from_a_pem_bundle_or_a_single_der() {
    let mut bundle = read("other-root.pem");
    bundle.extend(read("root-ca.key")); // a stray non-certificate block is skipped
    bundle.extend(read("root-ca.pem"));
    let signed = Signed::new("org.der", "sig-org.pkcs1");
    for anchors in [
        TrustAnchors::from_pem_or_der(&bundle).expect("PEM bundle loads"),
        TrustAnchors::from_pem_or_der(&read("root-ca.der")).expect("DER loads"),
    ] {
        assert!(!anchors.is_empty());
        assert!(signed.verify_with(&anchors).is_ok());
    }
    let err = TrustAnchors::from_pem_or_der(&read("root-ca.key")).expect_err("a key is no anchor");
    assert_eq!(err.code(), "untrusted_certificate");
}

#[test]
fn the_fixture_certificates_belong_to_the_manifest_signers() {
    let manifest = manifest();
    let identity = |file: &str| parse_identity(&read(file)).expect("fixture parses");
    let (org, person, director, sim) = (
        identity("org.der"),
        identity("person.der"),
        identity("director.der"),
        identity("sim.der"),
    );
    let parent_tax_code = manifest.tax_code.split('-').next().expect("tax code");

    assert!(signer_matches(&org, &manifest.tax_code));
    assert!(signer_matches(&org, &format!("MST_{}", manifest.tax_code)));
    assert!(
        !signer_matches(&org, parent_tax_code),
        "a branch is not its parent company"
    );
    assert!(signer_matches(
        &person,
        &format!("CMT_{}", manifest.citizen_id)
    ));
    assert!(!signer_matches(&person, &manifest.tax_code));
    assert!(signer_matches(&director, parent_tax_code));
    assert!(signer_matches(&director, &manifest.citizen_id));
    assert_eq!(director.kind, IdentityKind::Individual);
    let national = format!("0{}", &manifest.msisdn[2..]);
    assert!(
        !signer_matches(&sim, &national),
        "a bare 10-digit number is a tax code, never a phone number"
    );
    assert!(signer_matches(&sim, &format!("SDT:{national}")));
    assert!(signer_matches(&sim, &manifest.msisdn));
    assert!(signer_matches(&sim, &format!("+{}", manifest.msisdn)));
    let bhxh = identity("bhxh.der");
    assert!(
        !signer_matches(&bhxh, &format!("MST_{parent_tax_code}")),
        "a social insurance number is no tax code"
    );
    assert!(!signer_matches(&bhxh, parent_tax_code));
    assert!(signer_matches(&bhxh, &format!("BHXH_{parent_tax_code}")));
    assert!(
        !signer_matches(&person, &manifest.msisdn),
        "person.der names no phone"
    );
}

#[tokio::test]
async fn an_unknown_signer_is_judged_on_the_pool_and_a_known_one_inline() {
    let verifier = Verifier::offline(Evidence::default());
    let signed = Signed::new("person.der", "sig-person.pkcs1");
    let (check, anchors) = (signed.check(), root());
    let judge = || verifier.verify(&check, &anchors, RevocationPolicy::Off);
    judge().await.expect("valid");
    assert_eq!(
        verifier.pool_runs(),
        1,
        "the first path is built on the pool"
    );
    judge().await.expect("valid");
    assert_eq!(
        verifier.pool_runs(),
        1,
        "a proven signer costs one RSA check inline"
    );
    let mut forged = Signed::new("person.der", "sig-person.pkcs1");
    forged.signature[10] ^= 1;
    assert!(verifier
        .verify(&forged.check(), &anchors, RevocationPolicy::Off)
        .await
        .is_err());
    assert_eq!(verifier.pool_runs(), 1);
}
