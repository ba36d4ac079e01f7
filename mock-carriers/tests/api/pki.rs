//! Provisioning rules and persistence of the mock PKI.

use mock_carriers::pki::Provider;
use mock_carriers::{MockCarriers, MockConfig};
use x509_cert::der::Decode;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};

use crate::helpers::*;

const UID: &str = "0.9.2342.19200300.100.1.1";
const CN: &str = "2.5.4.3";
const O: &str = "2.5.4.10";

fn config(dir: &std::path::Path) -> MockConfig {
    MockConfig {
        state_dir: dir.to_path_buf(),
        ..MockConfig::default()
    }
}

#[test]
fn signer_certificates_carry_the_uid_their_id_implies() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mock = MockCarriers::new(config(dir.path()))?;
    let cases = [
        ("0101234567", "MST:0101234567", true),
        ("0101234567-001", "MST:0101234567-001", true),
        ("0101234567001", "MST:0101234567-001", true),
        ("001099012345", "CCCD:001099012345", false),
        ("012345678", "CMND:012345678", false),
    ];
    for (signer, uid, organisation) in cases {
        let cred = mock.pki().signer(Provider::SmartCa, signer)?;
        let cert = parse_cert(&cred.cert_der);
        assert_eq!(subject_values(&cert, UID), vec![uid.to_owned()], "{signer}");
        let orgs = subject_values(&cert, O);
        let cn = subject_values(&cert, CN);
        if organisation {
            assert_eq!(orgs, vec![format!("Công ty TNHH Mock {signer}")]);
            assert_eq!(cn, orgs);
        } else {
            assert!(orgs.is_empty(), "{signer} has no O");
            assert!(
                cn.iter().all(|n| !n.is_ascii()),
                "{signer}: CN {cn:?} has diacritics"
            );
        }
    }
    Ok(())
}

#[test]
fn signer_certificates_are_rsa_2048_for_signing_and_chain_to_the_root() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mock = MockCarriers::new(config(dir.path()))?;
    let cred = mock.pki().signer(Provider::SmartCa, "001099012345")?;
    let cert = parse_cert(&cred.cert_der);
    let (ca_der, root_der) = mock.pki().chain(Provider::SmartCa);
    let (ca, root) = (parse_cert(&ca_der), parse_cert(&root_der));
    assert_eq!(root_der, mock.root_der());
    assert!(
        issued_by(&cert, &ca),
        "signer cert signed by the issuing CA"
    );
    assert!(issued_by(&ca, &root), "issuing CA signed by the root");
    assert!(issued_by(&root, &root), "root is self-signed");
    assert_eq!(
        subject_values(&ca, CN),
        vec!["Mock VNPT SmartCA RS".to_owned()]
    );
    assert_eq!(
        subject_values(&root, CN),
        vec!["Mock Vietnam National Root CA".to_owned()]
    );
    assert_eq!(cert.tbs_certificate.issuer, ca.tbs_certificate.subject);

    let key = rsa::traits::PublicKeyParts::size(&public_key(&cert));
    assert_eq!(key * 8, 2048);
    let exts = cert.tbs_certificate.extensions.clone().unwrap_or_default();
    let ku = exts
        .iter()
        .find(|e| e.extn_id.to_string() == "2.5.29.15")
        .expect("keyUsage present");
    assert!(ku.critical, "keyUsage is critical");
    let ku = KeyUsage::from_der(ku.extn_value.as_bytes())?;
    assert!(ku.digital_signature() && ku.non_repudiation());
    assert!(!ku.key_cert_sign());
    let bc = exts
        .iter()
        .find(|e| e.extn_id.to_string() == "2.5.29.19")
        .expect("basicConstraints present");
    assert!(!BasicConstraints::from_der(bc.extn_value.as_bytes())?.ca);
    Ok(())
}

#[test]
fn a_signer_ending_422_gets_an_already_expired_certificate() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mock = MockCarriers::new(config(dir.path()))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let expired = parse_cert(
        &mock
            .pki()
            .signer(Provider::SmartCa, "001099012422")?
            .cert_der,
    );
    let not_after = expired
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration();
    assert!(not_after < now, "notAfter is in the past");
    let fresh = parse_cert(
        &mock
            .pki()
            .signer(Provider::SmartCa, "001099012345")?
            .cert_der,
    );
    let validity = &fresh.tbs_certificate.validity;
    assert!(validity.not_before.to_unix_duration() < now);
    assert!(
        validity.not_after.to_unix_duration() > now + std::time::Duration::from_secs(700 * 86_400)
    );
    Ok(())
}

#[test]
fn keys_and_certificates_survive_a_restart_on_the_same_state_dir() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (root, cert) = {
        let mock = MockCarriers::new(config(dir.path()))?;
        let cred = mock.pki().signer(Provider::SmartCa, "0101234567")?;
        (mock.root_der(), cred.cert_der.clone())
    };
    let again = MockCarriers::new(config(dir.path()))?;
    assert_eq!(again.root_der(), root);
    let cred = again.pki().signer(Provider::SmartCa, "0101234567")?;
    assert_eq!(cred.cert_der, cert);
    let digest = digest_of("after restart");
    assert!(verifies(
        &parse_cert(&cred.cert_der),
        &digest,
        &cred.sign_digest(&digest)?
    ));
    assert!(again.root_pem_path().exists());

    let elsewhere = tempfile::tempdir()?;
    let other = MockCarriers::new(config(elsewhere.path()))?;
    assert_ne!(other.root_der(), root, "a new state dir gets a new root");
    Ok(())
}

#[test]
fn signer_ids_that_could_escape_the_state_dir_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mock = MockCarriers::new(config(dir.path()))?;
    assert!(mock.pki().signer(Provider::SmartCa, "../../etc").is_err());
    Ok(())
}

#[test]
fn openssl_accepts_the_chain_when_it_is_installed() -> TestResult {
    if !mock_carriers::prerequisites::openssl() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let mock = MockCarriers::new(config(dir.path()))?;
    let cred = mock.pki().signer(Provider::SmartCa, "001099012345")?;
    let (ca, _) = mock.pki().chain(Provider::SmartCa);
    let work = tempfile::tempdir()?;
    let write_pem = |name: &str, der: &[u8]| -> std::io::Result<std::path::PathBuf> {
        let path = work.path().join(name);
        std::fs::write(&path, der)?;
        let pem = work.path().join(format!("{name}.pem"));
        let ok = std::process::Command::new("openssl")
            .args(["x509", "-inform", "DER", "-in"])
            .arg(&path)
            .arg("-out")
            .arg(&pem)
            .status()?
            .success();
        assert!(ok, "openssl reads {name}");
        Ok(pem)
    };
    let leaf = write_pem("leaf.der", &cred.cert_der)?;
    let ca = write_pem("ca.der", &ca)?;
    let out = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(mock.root_pem_path())
        .arg("-untrusted")
        .arg(&ca)
        .arg(&leaf)
        .output()?;
    assert!(
        out.status.success(),
        "openssl verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(())
}
