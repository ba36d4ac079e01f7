//! Path building against chains an attacker makes with fresh keys (`mock_carriers::pki::hostile`)
//! and against the OpenSSL fixtures: bounded cost, and the real path still found among decoys.

use chrono::Utc;
use der::Decode;
use mock_carriers::pki::hostile::{self_issued_chain, Shape};
use x509_cert::Certificate;

use super::*;

fn fixture(file: &str) -> Certificate {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    let der = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Certificate::from_der(&der).expect("fixture certificate")
}

fn parse(der: &[Vec<u8>]) -> Vec<Certificate> {
    der.iter()
        .map(|d| Certificate::from_der(d).expect("certificate"))
        .collect()
}

fn run(leaf: &Certificate, chain: &[Certificate]) -> (Result<Found, VerifyError>, usize) {
    let mut checks = 0;
    let anchors = [fixture("root-ca.der")];
    let found = search(leaf, chain, &anchors, Utc::now(), &mut checks);
    (found, checks)
}

#[test]
fn self_issued_cas_sharing_one_key_cost_one_signature_check_each_not_an_ordering_search() {
    let hostile = self_issued_chain(12, Shape::SharedKey, b"x").expect("hostile chain");
    let leaf = Certificate::from_der(&hostile.certificate).expect("leaf");
    let (found, checks) = run(&leaf, &parse(&hostile.chain));
    assert!(
        matches!(found, Err(VerifyError::UntrustedCertificate(_))),
        "{found:?}"
    );
    // The leaf against the one key group, and each CA certificate against it once.
    assert!(checks <= 13, "{checks} signature checks");
}

#[test]
fn cas_cross_signed_by_two_keys_cost_two_checks_each_at_most() {
    let hostile = self_issued_chain(16, Shape::TwoKeysCrossSigned, b"x").expect("hostile chain");
    let leaf = Certificate::from_der(&hostile.certificate).expect("leaf");
    let (found, checks) = run(&leaf, &parse(&hostile.chain));
    assert!(found.is_err(), "{found:?}");
    assert!(checks <= 2 * 17, "{checks} signature checks");
}

#[test]
fn distinct_keyed_decoys_are_refused_as_too_complex_once_the_budget_is_spent() {
    let hostile = self_issued_chain(16, Shape::DistinctKeys, b"x").expect("hostile chain");
    let leaf = Certificate::from_der(&hostile.certificate).expect("leaf");
    let (found, checks) = run(&leaf, &parse(&hostile.chain));
    let Err(VerifyError::UntrustedCertificate(why)) = found else {
        panic!("{found:?}")
    };
    assert!(why.contains("too complex"), "{why}");
    assert_eq!(checks, MAX_SIGNATURE_CHECKS);
}

#[test]
fn more_certificates_than_any_real_chain_are_refused_before_any_signature_check() {
    let chain = vec![fixture("issuing-ca.der"); MAX_SUPPLIED + 1];
    let (found, checks) = run(&fixture("person.der"), &chain);
    let Err(VerifyError::UntrustedCertificate(why)) = found else {
        panic!("{found:?}")
    };
    assert!(why.contains("too complex"), "{why}");
    assert_eq!(checks, 0);
}

#[test]
fn the_real_path_is_found_among_decoys_and_the_root_sent_along() {
    let hostile = self_issued_chain(12, Shape::SharedKey, b"x").expect("hostile chain");
    let mut chain = parse(&hostile.chain);
    chain.insert(5, fixture("issuing-ca.der"));
    chain.push(fixture("root-ca.der"));
    let (found, checks) = run(&fixture("person.der"), &chain);
    let found = found.expect("path through the issuing CA");
    assert_eq!(found.issuer, fixture("issuing-ca.der"));
    assert_eq!(checks, 2, "person ← issuing CA ← root");
}

#[test]
fn a_signer_issued_by_the_anchor_itself_needs_one_check() {
    let (found, checks) = run(&fixture("issuing-ca.der"), &[]);
    assert_eq!(
        found.expect("anchor signed it").issuer,
        fixture("root-ca.der")
    );
    assert_eq!(checks, 1);
}
