//! CMS: the manifest's verdicts, a missing intermediate given beside, garbage, the CMS kyso
//! assembles, and a CMS through revocation like a raw signature.

use std::process::{Command, Stdio};

use chrono::Utc;
use kyso::verify::{cms_build, verify_cms, CmsCheck, RevocationPolicy, Scheme, Verifier};

use crate::{digest_of, dir, evidence, manifest, read, root};

#[test]
fn every_cms_case_of_the_manifest_gets_its_verdict() {
    for case in manifest().cms {
        let result = verify_cms(
            &read(&case.file),
            &digest_of(&case.content),
            &root(),
            Utc::now(),
            // The manifest's intermediate, which cms-person-noattr does not carry.
            &[read("issuing-ca.der")],
        );
        match (result, case.verdict.as_str()) {
            (Ok(v), "valid") => assert_eq!(v.verification.signature, "valid", "{}", case.name),
            (Ok(_), expected) => panic!("{}: valid, manifest says {expected}", case.name),
            (Err(e), expected) => assert_eq!(e.code(), expected, "{}: {e}", case.name),
        }
    }
}

#[test]
fn a_cms_without_its_intermediate_verifies_when_the_intermediate_is_given() {
    let without = verify_cms(
        &read("cms-person-noattr.der"),
        &digest_of("data.txt"),
        &root(),
        Utc::now(),
        &[],
    )
    .expect_err("no path without the issuing CA");
    assert_eq!(without.code(), "untrusted_certificate");
    let verdict = verify_cms(
        &read("cms-person-noattr.der"),
        &digest_of("data.txt"),
        &root(),
        Utc::now(),
        &[read("issuing-ca.der")],
    )
    .expect("valid with the intermediate given");
    assert_eq!(verdict.identity.citizen_id.as_deref(), Some("001099012345"));
}

#[test]
fn garbage_is_an_invalid_signature_not_a_crash() {
    let err =
        verify_cms(b"\x30\x03\x02\x01", &[0; 32], &root(), Utc::now(), &[]).expect_err("garbage");
    assert_eq!(err.code(), "invalid_signature", "{err}");
}

#[test]
fn a_cms_that_kyso_assembles_verifies_and_binds_its_content() {
    let certificate = read("org.der");
    let digest = digest_of("data.txt");
    let attrs = cms_build::signed_attributes(&digest, Utc::now(), &certificate).expect("attrs");
    let to_sign = cms_build::signed_attributes_digest(&attrs);
    let out = Command::new("openssl")
        .args(["pkeyutl", "-sign", "-pkeyopt", "digest:sha256", "-inkey"])
        .arg(dir().join("org.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(&to_sign)?;
            child.wait_with_output()
        })
        .expect("openssl signs");
    assert!(out.status.success());
    let cms = cms_build::assemble(
        &attrs,
        &out.stdout,
        Scheme::Pkcs1v15,
        &certificate,
        &[read("issuing-ca.der")],
    )
    .expect("assembles");
    let verdict = verify_cms(&cms, &digest, &root(), Utc::now(), &[]).expect("kyso accepts it");
    assert_eq!(verdict.identity.tax_code.as_deref(), Some("0100686209-199"));
    let err = verify_cms(&cms, &digest_of("other.txt"), &root(), Utc::now(), &[])
        .expect_err("other content");
    assert_eq!(err.code(), "invalid_signature");
}

#[tokio::test]
async fn a_cms_goes_through_revocation_like_a_raw_signature() {
    let verifier = Verifier::offline(evidence(&[], &["issuing-ca.crl"]));
    let content = digest_of("data.txt");
    let check = CmsCheck {
        cms: &read("cms-org.der"),
        content_digest: &content,
        extra_certificates: &[],
        at: Utc::now(),
    };
    let verdict = verifier
        .verify_cms(&check, &root(), RevocationPolicy::Require)
        .await
        .expect("org is not on the CRL");
    assert_eq!(verdict.verification.revocation, "good");
}
