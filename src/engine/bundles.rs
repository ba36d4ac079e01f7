//! Certificate bundles stored once. `start` hands back the signer's certificate and chain
//! (~4 KB of base64), which the session's check needs when the signature comes. Kept inside
//! `work`, they were written with every status change and claim of the row (SQLite rewrites
//! the whole row; PostgreSQL wrote them to TOAST again and read them back with each claim),
//! while many sessions share one signer's bundle. So `work` names a bundle by its digest and
//! the store keeps each bundle once (`cert_bundles`); this instance remembers the bundles it
//! has stored or read, so a known signer costs no database call — except that a bundle still
//! in use is stored again every [`RESTORE_EVERY`], which marks it recent for retention.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::providers::CertBundle;
use crate::store::{Store, StoreError};

/// Bundles remembered (a bundle is ~4 KB); past this one is forgotten for each new one.
const KEPT: usize = 4_096;

/// How often a bundle in use is stored again: retention prunes bundles not stored for days
/// (at least two), so one an unfinished session names is always recent.
pub const RESTORE_EVERY: Duration = Duration::from_secs(3600);

/// A bundle known to be in the store, and when this instance last stored it (`None`: read).
type Known = (Arc<CertBundle>, Option<Instant>);

#[derive(Default)]
pub struct Bundles {
    /// By digest: bundles known to be in the store.
    known: Mutex<HashMap<String, Known>>,
}

/// The name of `bundle`: hex SHA-256 over each certificate's DER, each preceded by its length,
/// the signer's first. Computed from the DER, so the JSON's spelling cannot change it.
pub fn digest(bundle: &CertBundle) -> String {
    let mut hash = Sha256::new();
    for der in std::iter::once(&bundle.certificate).chain(&bundle.chain) {
        hash.update((der.len() as u64).to_be_bytes());
        hash.update(der);
    }
    hex::encode(hash.finalize())
}

impl Bundles {
    /// Stores `bundle` unless this instance knows it is stored; returns its digest.
    pub async fn store(
        &self,
        store: &dyn Store,
        bundle: &CertBundle,
    ) -> Result<String, StoreError> {
        let digest = digest(bundle);
        let recent = |k: &Known| k.1.is_some_and(|at| at.elapsed() < RESTORE_EVERY);
        if self.lock().get(&digest).is_some_and(recent) {
            return Ok(digest);
        }
        let json = serde_json::to_string(bundle)
            .map_err(|e| StoreError::Corrupt(format!("a certificate bundle: {e}")))?;
        store.put_bundle(&digest, &json).await?;
        self.remember(&digest, (Arc::new(bundle.clone()), Some(Instant::now())));
        Ok(digest)
    }

    /// The bundle named `digest`, from memory or the store; `Ok(None)` when the store has none.
    /// A stored bundle that does not decode, or does not match its name, is an error.
    pub async fn get(
        &self,
        store: &dyn Store,
        digest: &str,
    ) -> Result<Option<Arc<CertBundle>>, StoreError> {
        if let Some((bundle, _)) = self.lock().get(digest) {
            return Ok(Some(Arc::clone(bundle)));
        }
        let Some(json) = store.bundle(digest).await? else {
            return Ok(None);
        };
        let bundle: CertBundle = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("certificate bundle {digest}: {e}")))?;
        if self::digest(&bundle) != digest {
            return Err(StoreError::Corrupt(format!(
                "certificate bundle {digest} does not match its digest"
            )));
        }
        let bundle = Arc::new(bundle);
        self.remember(digest, (Arc::clone(&bundle), None));
        Ok(Some(bundle))
    }

    fn remember(&self, digest: &str, bundle: Known) {
        let mut known = self.lock();
        if known.len() >= KEPT {
            // Any one makes room: a bundle forgotten is read again (or stored again, a no-op).
            if let Some(old) = known.keys().next().cloned() {
                known.remove(&old);
            }
        }
        known.insert(digest.to_owned(), bundle);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open, StoreOptions};

    fn bundle(certificate: &[u8], chain: &[&[u8]]) -> CertBundle {
        CertBundle {
            certificate: certificate.to_vec(),
            chain: chain.iter().map(|c| c.to_vec()).collect(),
        }
    }

    #[test]
    fn the_digest_names_the_certificates_and_their_order() {
        let a = digest(&bundle(b"signer", &[b"ca"]));
        assert_eq!(a.len(), 64);
        assert_eq!(a, digest(&bundle(b"signer", &[b"ca"])));
        assert_ne!(a, digest(&bundle(b"signer", &[])));
        assert_ne!(a, digest(&bundle(b"signerca", &[])));
        assert_ne!(a, digest(&bundle(b"sign", &[b"erca"])));
        assert_ne!(a, digest(&bundle(b"ca", &[b"signer"])));
    }

    #[tokio::test]
    async fn a_bundle_is_stored_once_and_read_back_by_another_instance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        let store = open(&url, &StoreOptions::default()).await.expect("store");
        let b = bundle(b"signer", &[b"ca"]);
        let name = Bundles::default().store(&*store, &b).await.expect("store");
        // Another instance (nothing in memory) reads it from the store.
        let fresh = Bundles::default();
        let got = fresh.get(&*store, &name).await.expect("get");
        assert_eq!(got.as_deref(), Some(&b));
        assert_eq!(
            fresh.get(&*store, &"0".repeat(64)).await.expect("get"),
            None
        );
        // A stored bundle that is not what its name says is refused.
        let other = serde_json::to_string(&bundle(b"someone else", &[])).expect("json");
        store
            .put_bundle(&"1".repeat(64), &other)
            .await
            .expect("put");
        let refused = Bundles::default().get(&*store, &"1".repeat(64)).await;
        assert!(
            matches!(refused, Err(StoreError::Corrupt(_))),
            "{refused:?}"
        );
    }
}
