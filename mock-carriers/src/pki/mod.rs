//! The fake PKI: the mock national root, one issuing CA per provider, the signer credentials
//! (RSA-2048 key from the [`pool`] + certificate of its own) provisioned on first use of a
//! signer id, and what relying
//! parties need to check revocation — an OCSP responder ([`ocsp`]) and CRLs per CA, fed by
//! each CA's book of issued serials ([`issued`]). All keys and certificates persist in the
//! state directory, keyed by provider and signer, so a restart keeps them. Signer
//! certificates carry AIA (OCSP, caIssuers) and CRL DP URLs under the mock's public base URL
//! ([`Pki::set_public_url`]); a stored certificate naming another base URL is re-issued.
//! Signing a precomputed SHA-256 digest (RSA PKCS#1 v1.5) happens here too, with aws-lc-rs.
//! [`hostile`] makes what an attacker would send instead: chains built to be expensive.

mod authority;
mod credential;
mod files;
pub mod hostile;
pub mod issued;
pub mod ocsp;
pub mod pool;
pub mod subject;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use authority::{Authority, CaName, Links};
use files::write_atomic;
use issued::{CertState, IssuedBook};
use pool::KeyPool;

pub use credential::{CertMeta, SignerCredential};
pub use files::pem;
pub use subject::{HolderKind, Subject};

/// Signer credentials kept in memory; beyond this, old entries are dropped and reloaded from
/// disk when needed again.
const CACHE_CAP: usize = 10_000;
/// The base URL certificates name until the mock learns where it is served.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8701";
/// How long a CRL is good for.
pub const CRL_VALIDITY: chrono::Duration = chrono::Duration::hours(24);

/// The providers the mock impersonates. Each has its own issuing CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Provider {
    #[serde(rename = "vnpt-smartca")]
    SmartCa,
    #[serde(rename = "viettel-sim")]
    ViettelSim,
    #[serde(rename = "vnpt-sim")]
    VnptSim,
    #[serde(rename = "mobifone-sim")]
    MobifoneSim,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::SmartCa,
        Provider::ViettelSim,
        Provider::VnptSim,
        Provider::MobifoneSim,
    ];

    /// The provider id used in kyso's configuration, the admin API and the mock's URLs.
    pub fn id(self) -> &'static str {
        match self {
            Provider::SmartCa => "vnpt-smartca",
            Provider::ViettelSim => "viettel-sim",
            Provider::VnptSim => "vnpt-sim",
            Provider::MobifoneSim => "mobifone-sim",
        }
    }

    pub fn from_id(id: &str) -> Option<Provider> {
        Self::ALL.into_iter().find(|p| p.id() == id)
    }

    /// Whether signers are MSISDNs with SIM certificates (the ETSI TS 102 204 carriers).
    pub fn is_sim(self) -> bool {
        !matches!(self, Provider::SmartCa)
    }

    fn file_stem(self) -> &'static str {
        match self {
            Provider::SmartCa => "smartca",
            other => other.id(),
        }
    }

    fn ca_name(self) -> CaName {
        let (common_name, organization) = match self {
            Provider::SmartCa => (
                "Mock VNPT SmartCA RS",
                "VIETNAM POSTS AND TELECOMMUNICATIONS GROUP (mock)",
            ),
            Provider::ViettelSim => ("Mock Viettel-CA SIM", "Viettel Group (mock)"),
            Provider::VnptSim => (
                "Mock VNPT-CA SIM",
                "VIETNAM POSTS AND TELECOMMUNICATIONS GROUP (mock)",
            ),
            Provider::MobifoneSim => ("Mock MobiFone-CA SIM", "MobiFone Corporation (mock)"),
        };
        CaName {
            common_name,
            organization: Some(organization),
        }
    }
}

/// What can go wrong building or using the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("{0}")]
    Crypto(&'static str),
    #[error("key pool size {0} is out of range ({min}..={max})", min = pool::MIN_SIZE, max = pool::MAX_SIZE)]
    PoolSize(usize),
    #[error("signer id {0:?} is not usable (letters, digits, '-' and '_' only, at most 64)")]
    InvalidSigner(String),
}

/// The CA a revocation URL names: `root` or a provider id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRef {
    Root,
    Issuing(Provider),
}

impl CaRef {
    pub fn parse(slug: &str) -> Option<CaRef> {
        if slug == "root" {
            return Some(CaRef::Root);
        }
        Provider::from_id(slug).map(CaRef::Issuing)
    }
}

type Slot = Arc<Mutex<Option<Arc<SignerCredential>>>>;

/// The root, the issuing CAs and every provisioned signer.
pub struct Pki {
    dir: PathBuf,
    root: Authority,
    root_pem_path: PathBuf,
    issuers: HashMap<Provider, (Authority, IssuedBook)>,
    /// The keys new signers are provisioned with.
    pool: KeyPool,
    /// One slot per signer, so two first uses of the same signer generate one key, not two.
    signers: Mutex<HashMap<(Provider, String), Slot>>,
    public_url: RwLock<Option<String>>,
    /// Whether `public_url` is set, readable without the lock on every request.
    public_url_set: AtomicBool,
}

impl Pki {
    /// Loads the PKI from `dir`, creating whatever is missing. Each CA lives under a name that
    /// includes its parent's tag, so a regenerated root never sits above stale intermediates.
    /// New signers draw their keys from a pool of `key_pool_size` keys.
    pub fn load_or_create(dir: &Path, key_pool_size: usize) -> Result<Self, PkiError> {
        let pool = KeyPool::load(dir, key_pool_size)?;
        let root = Authority::load_or_create(
            dir,
            "root-ca",
            CaName {
                common_name: "Mock Vietnam National Root CA",
                organization: None,
            },
            None,
        )?;
        let root_pem_path = dir.join("root-ca.pem");
        write_atomic(
            &root_pem_path,
            pem("CERTIFICATE", &root.cert_der).as_bytes(),
        )
        .map_err(|source| PkiError::Io {
            path: root_pem_path.clone(),
            source,
        })?;
        let mut issuers = HashMap::new();
        for provider in Provider::ALL {
            let stem = format!("{}-ca-{}", provider.file_stem(), root.tag());
            let ca =
                Authority::load_or_create(&dir.join("ca"), &stem, provider.ca_name(), Some(&root))?;
            let book = IssuedBook::load(&signers_dir(dir, provider, &ca))?;
            issuers.insert(provider, (ca, book));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            root,
            root_pem_path,
            issuers,
            pool,
            signers: Mutex::new(HashMap::new()),
            public_url: RwLock::new(None),
            public_url_set: AtomicBool::new(false),
        })
    }

    pub fn root_der(&self) -> &[u8] {
        &self.root.cert_der
    }

    /// Where the root certificate is written as PEM (for QA to import as a trust anchor).
    pub fn root_pem_path(&self) -> &Path {
        &self.root_pem_path
    }

    /// The provider's chain above a signer certificate: issuing CA, then root.
    pub fn chain(&self, provider: Provider) -> (Vec<u8>, Vec<u8>) {
        (
            self.issuer(provider).0.cert_der.clone(),
            self.root.cert_der.clone(),
        )
    }

    /// The pool new signers draw their keys from.
    pub fn key_pool(&self) -> &KeyPool {
        &self.pool
    }

    /// The base URL certificates name for OCSP, CRLs and CA certificates.
    pub fn public_url(&self) -> String {
        self.public_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_owned())
    }

    /// Sets the base URL (e.g. `http://127.0.0.1:8701`); certificates issued from now on, and
    /// stored ones when next used, name it.
    pub fn set_public_url(&self, url: &str) {
        let url = url.trim().trim_end_matches('/').to_owned();
        *self.public_url.write().unwrap_or_else(|e| e.into_inner()) = Some(url);
        self.public_url_set.store(true, Ordering::Release);
    }

    /// Sets the base URL only if nobody has yet; `true` when it did.
    pub fn set_public_url_if_unset(&self, url: &str) -> bool {
        if self.public_url_set.load(Ordering::Acquire) {
            return false;
        }
        let mut guard = self.public_url.write().unwrap_or_else(|e| e.into_inner());
        if guard.is_some() {
            return false;
        }
        *guard = Some(url.trim().trim_end_matches('/').to_owned());
        self.public_url_set.store(true, Ordering::Release);
        true
    }

    /// Whether a base URL was set (explicitly or derived), so callers can skip deriving one.
    pub fn has_public_url(&self) -> bool {
        self.public_url_set.load(Ordering::Acquire)
    }

    /// The URLs a certificate from `provider`'s CA carries, under the current base URL.
    pub fn links(&self, provider: Provider) -> Links {
        links_at(&self.public_url(), provider)
    }

    fn issuer(&self, provider: Provider) -> &(Authority, IssuedBook) {
        // Every provider in `Provider::ALL` got an issuer in `load_or_create`.
        self.issuers
            .get(&provider)
            .unwrap_or_else(|| unreachable!("no issuing CA for {provider:?}"))
    }

    /// The DER certificate of a CA.
    pub fn ca_cert(&self, ca: CaRef) -> &[u8] {
        match ca {
            CaRef::Root => &self.root.cert_der,
            CaRef::Issuing(p) => &self.issuer(p).0.cert_der,
        }
    }

    /// The status of a serial number issued by `ca`. The root's only children are the
    /// issuing CAs, all good.
    pub fn cert_state(&self, ca: CaRef, serial: &[u8]) -> CertState {
        match ca {
            CaRef::Issuing(p) => self.issuer(p).1.state(serial),
            CaRef::Root => {
                let strip = |s: &[u8]| {
                    let start = s.iter().position(|b| *b != 0).unwrap_or(s.len());
                    s[start..].to_vec()
                };
                let known = self.issuers.values().any(|(ca, _)| {
                    strip(ca.certificate().tbs_certificate.serial_number.as_bytes())
                        == strip(serial)
                });
                if known {
                    CertState::Good
                } else {
                    CertState::Unknown
                }
            }
        }
    }

    /// The DER OCSPResponse `ca`'s responder gives to `request_der`.
    pub fn ocsp_response(&self, ca: CaRef, request_der: &[u8]) -> Vec<u8> {
        let authority = match ca {
            CaRef::Root => &self.root,
            CaRef::Issuing(p) => &self.issuer(p).0,
        };
        ocsp::respond(
            request_der,
            authority,
            |serial| self.cert_state(ca, serial),
            chrono::Utc::now(),
        )
    }

    /// A fresh DER CRL of `ca`, numbered by the current Unix time (so numbers only grow, also
    /// across restarts).
    pub fn crl(&self, ca: CaRef) -> Result<Vec<u8>, PkiError> {
        let now = chrono::Utc::now();
        let number = u64::try_from(now.timestamp()).unwrap_or(0);
        match ca {
            CaRef::Root => self.root.crl(&[], now, CRL_VALIDITY, number),
            CaRef::Issuing(p) => {
                let (authority, book) = self.issuer(p);
                authority.crl(&book.revoked(), now, CRL_VALIDITY, number)
            }
        }
    }

    /// The signer's credential if it is already in memory and names the current base URL
    /// (cheap; never touches the disk).
    pub fn cached(&self, provider: Provider, signer: &str) -> Option<Arc<SignerCredential>> {
        let slot = self
            .lock_signers()
            .get(&(provider, signer.to_owned()))?
            .clone();
        let guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        let url = self.public_url();
        guard
            .clone()
            .filter(|c| c.meta.base_url.as_deref() == Some(url.as_str()))
    }

    /// The signer's credential, loading it from disk or provisioning it (file I/O, a CA
    /// signature and, the first time a pool slot is used, key generation: call from a
    /// blocking context).
    pub fn signer(
        &self,
        provider: Provider,
        signer: &str,
    ) -> Result<Arc<SignerCredential>, PkiError> {
        if !subject::is_valid_signer_id(signer) {
            return Err(PkiError::InvalidSigner(signer.to_owned()));
        }
        let slot = {
            let mut map = self.lock_signers();
            if map.len() >= CACHE_CAP && !map.contains_key(&(provider, signer.to_owned())) {
                if let Some(victim) = map.keys().next().cloned() {
                    map.remove(&victim);
                }
            }
            map.entry((provider, signer.to_owned()))
                .or_default()
                .clone()
        };
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        let base_url = self.public_url();
        if let Some(cred) = guard.as_ref() {
            if cred.meta.base_url.as_deref() == Some(base_url.as_str()) {
                return Ok(cred.clone());
            }
        }
        let (issuer, book) = self.issuer(provider);
        let ctx = credential::Context {
            provider,
            issuer,
            book,
            pool: &self.pool,
            dir: signers_dir(&self.dir, provider, issuer),
            base_url: &base_url,
            links: links_at(&base_url, provider),
        };
        let cred = Arc::new(credential::load_or_provision(&ctx, signer)?);
        *guard = Some(cred.clone());
        Ok(cred)
    }

    fn lock_signers(&self) -> std::sync::MutexGuard<'_, HashMap<(Provider, String), Slot>> {
        self.signers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn links_at(base: &str, provider: Provider) -> Links {
    let ca = provider.id();
    Links {
        ocsp: format!("{base}/ocsp/{ca}"),
        crl: format!("{base}/crl/{ca}.crl"),
        ca_issuers: format!("{base}/pki/{ca}.crt"),
    }
}

fn signers_dir(dir: &Path, provider: Provider, issuer: &Authority) -> PathBuf {
    dir.join("signers")
        .join(format!("{}-{}", provider.file_stem(), issuer.tag()))
}
