//! New signers draw their keys from the pool: a thousand distinct signers cost no key beyond
//! the pool's, yet every one gets a certificate of its own, issued by the provider's CA.

use std::collections::HashSet;

use futures_util::stream::{self, StreamExt};
use mock_carriers::{MockCarriers, MockConfig};
use x509_cert::der::Encode;

use crate::helpers::*;

const SIGNERS: usize = 1_000;

#[tokio::test]
async fn a_thousand_new_signers_generate_no_key_beyond_the_pool_and_get_distinct_certificates(
) -> TestResult {
    let t = spawn_mock_with(|c| c.key_pool_size = 4).await;
    assert_eq!(t.get_json("/admin/stats").await["keys_generated"], 0);
    // Ordinary signers: the `…000` tail carries no scripted behaviour.
    let ids: Vec<String> = (0..SIGNERS).map(|n| format!("001{n:06}000")).collect();
    let listed: Vec<serde_json::Value> = stream::iter(&ids)
        .map(|id| t.certificates(id))
        .buffer_unordered(8)
        .collect()
        .await;

    let stats = t.get_json("/admin/stats").await;
    assert_eq!(stats["key_pool_size"], 4);
    assert!(
        stats["keys_generated"].as_u64().is_some_and(|n| n <= 4),
        "keys generated: {}",
        stats["keys_generated"]
    );

    let (ca_der, _) = t.mock.pki().chain(mock_carriers::pki::Provider::SmartCa);
    let ca = parse_cert(&ca_der);
    let (mut serials, mut ders, mut uids, mut keys) = (
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
    );
    for body in &listed {
        let cert = parse_cert(&b64(&body["data"]["user_certificates"][0]["cert_data"]));
        assert!(issued_by(&cert, &ca), "every certificate is the CA's");
        serials.insert(cert.tbs_certificate.serial_number.as_bytes().to_vec());
        ders.insert(cert.to_der()?);
        uids.extend(subject_values(&cert, "0.9.2342.19200300.100.1.1"));
        keys.insert(
            cert.tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes()
                .to_vec(),
        );
    }
    assert_eq!(serials.len(), SIGNERS, "a fresh serial per signer");
    assert_eq!(ders.len(), SIGNERS, "a certificate per signer");
    assert_eq!(uids.len(), SIGNERS, "a subject per signer");
    assert!(
        keys.len() <= 4,
        "{} distinct keys for a pool of 4",
        keys.len()
    );
    Ok(())
}

#[test]
fn a_restart_reuses_the_pool_on_disk_and_a_bad_size_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = || MockConfig {
        state_dir: dir.path().to_path_buf(),
        key_pool_size: 3,
        ..MockConfig::default()
    };
    let first = MockCarriers::new(config())?;
    first.pki().key_pool().fill()?;
    assert_eq!(first.pki().key_pool().generated(), 3);
    drop(first);
    let again = MockCarriers::new(config())?;
    again.pki().key_pool().fill()?;
    assert_eq!(again.pki().key_pool().generated(), 0, "the pool persisted");

    let refused = MockCarriers::new(MockConfig {
        key_pool_size: 0,
        ..config()
    });
    let message = format!("{:#}", refused.err().ok_or("size 0 accepted")?);
    assert!(message.contains("key pool size 0"), "{message}");
    Ok(())
}
