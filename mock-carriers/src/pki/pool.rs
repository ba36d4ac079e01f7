//! The pool of RSA keys new signers are provisioned with. Generating an RSA-2048 key takes
//! tens of milliseconds; a load test with a million distinct signers must measure the gateway,
//! not key generation. So the mock keeps `size` keys under `<state dir>/key-pool/` (PKCS#8 DER,
//! one file per slot), made once — all at start with [`KeyPool::fill`] (the binary does), or
//! each on the first signer that draws its slot — and reused across restarts. A new signer
//! takes the key of the slot its id hashes to; its certificate (fresh serial, its own
//! subject, signed by the CA) is what stays unique per signer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::authority;
use super::files::{read_optional, write_atomic};
use super::PkiError;

/// The pool's size bounds: at least one key, at most what a state directory should hold.
pub const MIN_SIZE: usize = 1;
pub const MAX_SIZE: usize = 4096;

type KeySlot = Mutex<Option<Arc<Vec<u8>>>>;

/// `size` RSA keys, each made once and persisted.
pub struct KeyPool {
    dir: PathBuf,
    slots: Vec<KeySlot>,
    /// RSA keys this process generated for the pool (a restart over a full pool makes none).
    generated: AtomicU64,
}

impl KeyPool {
    /// The pool under `state_dir/key-pool`, with whatever keys are already there; a missing
    /// or unreadable slot is generated when first needed (or by [`KeyPool::fill`]).
    pub fn load(state_dir: &Path, size: usize) -> Result<Self, PkiError> {
        if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
            return Err(PkiError::PoolSize(size));
        }
        let dir = state_dir.join("key-pool");
        let mut slots = Vec::with_capacity(size);
        for index in 0..size {
            let path = slot_path(&dir, index);
            let stored = read_optional(&path).map_err(|source| PkiError::Io {
                path: path.clone(),
                source,
            })?;
            let usable = stored.filter(|pkcs8| aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8).is_ok());
            slots.push(Mutex::new(usable.map(Arc::new)));
        }
        Ok(Self {
            dir,
            slots,
            generated: AtomicU64::new(0),
        })
    }

    pub fn size(&self) -> usize {
        self.slots.len()
    }

    /// How many keys this process generated for the pool; never more than its size.
    pub fn generated(&self) -> u64 {
        self.generated.load(Ordering::Relaxed)
    }

    /// The PKCS#8 key a new `signer` gets: the one in the slot its id hashes to.
    pub fn key_for(&self, signer: &str) -> Result<Arc<Vec<u8>>, PkiError> {
        let hash = Sha256::digest(signer.as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&hash[..8]);
        let index =
            usize::try_from(u64::from_be_bytes(head) % self.slots.len() as u64).unwrap_or_default();
        self.slot(index)
    }

    /// Generates every missing key now, on all cores (the binary does this before it listens,
    /// so no request ever waits for a key).
    pub fn fill(&self) -> Result<(), PkiError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let next = AtomicU64::new(0);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Ok(index) = usize::try_from(index) else {
                            return Ok(());
                        };
                        if index >= self.slots.len() {
                            return Ok(());
                        }
                        self.slot(index)?;
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .unwrap_or(Err(PkiError::Crypto("key pool worker panicked")))
            })
        })
    }

    /// The key in slot `index`, generating and persisting it if the slot is empty (the slot's
    /// lock makes two first uses generate one key).
    fn slot(&self, index: usize) -> Result<Arc<Vec<u8>>, PkiError> {
        let slot = &self.slots[index];
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = guard.as_ref() {
            return Ok(key.clone());
        }
        let (pkcs8, _) = authority::generate_key()?;
        self.generated.fetch_add(1, Ordering::Relaxed);
        let path = slot_path(&self.dir, index);
        write_atomic(&path, &pkcs8).map_err(|source| PkiError::Io { path, source })?;
        let key = Arc::new(pkcs8);
        *guard = Some(key.clone());
        Ok(key)
    }
}

fn slot_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("{index:04}.key.der"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_made_once_per_slot_and_survive_a_reload() -> Result<(), PkiError> {
        let dir = tempfile::tempdir().map_err(|source| PkiError::Io {
            path: PathBuf::new(),
            source,
        })?;
        let pool = KeyPool::load(dir.path(), 2)?;
        let first = pool.key_for("0912345678")?;
        assert_eq!(
            pool.key_for("0912345678")?,
            first,
            "a signer's slot is stable"
        );
        pool.fill()?;
        assert_eq!(pool.generated(), 2);
        let reloaded = KeyPool::load(dir.path(), 2)?;
        reloaded.fill()?;
        assert_eq!(reloaded.generated(), 0, "a full pool on disk is reused");
        assert_eq!(reloaded.key_for("0912345678")?, first);
        Ok(())
    }

    #[test]
    fn sizes_out_of_range_are_refused() {
        let dir = std::env::temp_dir();
        assert!(matches!(KeyPool::load(&dir, 0), Err(PkiError::PoolSize(0))));
        assert!(matches!(
            KeyPool::load(&dir, MAX_SIZE + 1),
            Err(PkiError::PoolSize(_))
        ));
    }
}
