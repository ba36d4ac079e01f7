//! The fake PKI: the mock national root, one issuing CA per provider, and the signer
//! credentials (RSA-2048 key + certificate) provisioned on first use of a signer id. All keys
//! and certificates persist in the state directory, keyed by provider and signer, so a restart
//! keeps them. Signing a precomputed SHA-256 digest (RSA PKCS#1 v1.5) happens here too, with
//! aws-lc-rs's `sign_digest`.

mod authority;
mod files;
pub mod subject;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use authority::{Authority, CaName};
use files::{read_optional, write_atomic};
pub use subject::{HolderKind, Subject};

/// Signer credentials kept in memory; beyond this, old entries are dropped and reloaded from
/// disk when needed again.
const CACHE_CAP: usize = 10_000;

/// The providers the mock impersonates. Each has its own issuing CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Provider {
    #[serde(rename = "vnpt-smartca")]
    SmartCa,
}

impl Provider {
    pub const ALL: [Provider; 1] = [Provider::SmartCa];

    /// The provider id used in kyso's configuration and in the admin API.
    pub fn id(self) -> &'static str {
        match self {
            Provider::SmartCa => "vnpt-smartca",
        }
    }

    fn file_stem(self) -> &'static str {
        match self {
            Provider::SmartCa => "smartca",
        }
    }

    fn ca_name(self) -> CaName {
        match self {
            Provider::SmartCa => CaName {
                common_name: "Mock VNPT SmartCA RS",
                organization: Some("VIETNAM POSTS AND TELECOMMUNICATIONS GROUP (mock)"),
            },
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
    #[error("signer id {0:?} is not usable (letters, digits, '-' and '_' only, at most 64)")]
    InvalidSigner(String),
}

/// A signer's key and certificate at one provider.
pub struct SignerCredential {
    pub provider: Provider,
    pub signer: String,
    pub meta: CertMeta,
    pub cert_der: Vec<u8>,
    key: aws_lc_rs::rsa::KeyPair,
}

/// What the providers' certificate listings say about a certificate, stored beside it so it
/// never has to be parsed back out of the DER.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CertMeta {
    pub subject: Subject,
    /// Lowercase hex of the serial number.
    pub serial_hex: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl SignerCredential {
    /// RSA PKCS#1 v1.5 over a SHA-256 digest the caller already computed.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, PkiError> {
        let digest =
            aws_lc_rs::digest::Digest::import_less_safe(digest, &aws_lc_rs::digest::SHA256)
                .map_err(|_| PkiError::Crypto("bad digest length"))?;
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign_digest(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &digest,
                &mut signature,
            )
            .map_err(|_| PkiError::Crypto("RSA signing failed"))?;
        Ok(signature)
    }
}

type Slot = Arc<Mutex<Option<Arc<SignerCredential>>>>;

/// The root, the issuing CAs and every provisioned signer.
pub struct Pki {
    dir: PathBuf,
    root: Authority,
    root_pem_path: PathBuf,
    issuers: HashMap<Provider, Authority>,
    /// One slot per signer, so two first uses of the same signer generate one key, not two.
    signers: Mutex<HashMap<(Provider, String), Slot>>,
}

impl Pki {
    /// Loads the PKI from `dir`, creating whatever is missing. Each CA lives under a name that
    /// includes its parent's tag, so a regenerated root never sits above stale intermediates.
    pub fn load_or_create(dir: &Path) -> Result<Self, PkiError> {
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
            files::pem("CERTIFICATE", &root.cert_der).as_bytes(),
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
            issuers.insert(provider, ca);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            root,
            root_pem_path,
            issuers,
            signers: Mutex::new(HashMap::new()),
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
            self.issuer(provider).cert_der.clone(),
            self.root.cert_der.clone(),
        )
    }

    fn issuer(&self, provider: Provider) -> &Authority {
        // Every provider in `Provider::ALL` got an issuer in `load_or_create`.
        self.issuers
            .get(&provider)
            .unwrap_or_else(|| unreachable!("no issuing CA for {provider:?}"))
    }

    /// The signer's credential if it is already in memory (cheap; never touches the disk).
    pub fn cached(&self, provider: Provider, signer: &str) -> Option<Arc<SignerCredential>> {
        let slot = self
            .lock_signers()
            .get(&(provider, signer.to_owned()))?
            .clone();
        let guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        guard.clone()
    }

    /// The signer's credential, loading it from disk or provisioning it (key generation takes
    /// tens of milliseconds: call from a blocking context).
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
        if let Some(cred) = guard.as_ref() {
            return Ok(cred.clone());
        }
        let cred = Arc::new(self.load_or_provision(provider, signer)?);
        *guard = Some(cred.clone());
        Ok(cred)
    }

    fn lock_signers(&self) -> std::sync::MutexGuard<'_, HashMap<(Provider, String), Slot>> {
        self.signers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load_or_provision(
        &self,
        provider: Provider,
        signer: &str,
    ) -> Result<SignerCredential, PkiError> {
        let issuer = self.issuer(provider);
        let dir =
            self.dir
                .join("signers")
                .join(format!("{}-{}", provider.file_stem(), issuer.tag()));
        let key_path = dir.join(format!("{signer}.key.der"));
        let crt_path = dir.join(format!("{signer}.crt.der"));
        let meta_path = dir.join(format!("{signer}.json"));
        let read = |path: &Path| {
            read_optional(path).map_err(|source| PkiError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        if let (Some(pkcs8), Some(cert_der), Some(meta)) =
            (read(&key_path)?, read(&crt_path)?, read(&meta_path)?)
        {
            let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8);
            match (key, serde_json::from_slice::<CertMeta>(&meta)) {
                (Ok(key), Ok(meta)) => {
                    return Ok(SignerCredential {
                        provider,
                        signer: signer.to_owned(),
                        meta,
                        cert_der,
                        key,
                    })
                }
                _ => tracing::warn!(
                    signer,
                    "stored signer credential unreadable; provisioning a new one"
                ),
            }
        }

        let subject = subject::subject_for(signer);
        let now = Utc::now();
        let (not_before, not_after) = if crate::behaviour::Behaviour::for_signer(signer)
            == crate::behaviour::Behaviour::ExpiredCertificate
        {
            (
                now - chrono::Duration::days(731),
                now - chrono::Duration::days(1),
            )
        } else {
            (
                now - chrono::Duration::days(1),
                now + chrono::Duration::days(730),
            )
        };
        let serial = authority::random_serial();
        let (pkcs8, _) = authority::generate_key()?;
        let cert_der = issuer.issue_signer(&pkcs8, &subject, &serial, not_before, not_after)?;
        let meta = CertMeta {
            subject,
            serial_hex: hex::encode(serial),
            // Certificates carry whole seconds.
            not_before: trunc_seconds(not_before),
            not_after: trunc_seconds(not_after),
        };
        let meta_json =
            serde_json::to_vec_pretty(&meta).map_err(|_| PkiError::Crypto("metadata encoding"))?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PkiError::Io { path, source }
        };
        write_atomic(&key_path, &pkcs8).map_err(io(&key_path))?;
        write_atomic(&crt_path, &cert_der).map_err(io(&crt_path))?;
        write_atomic(&meta_path, &meta_json).map_err(io(&meta_path))?;
        let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| PkiError::Crypto("generated key does not parse"))?;
        tracing::info!(provider = provider.id(), signer, uid = %meta.subject.uid, "provisioned signer certificate");
        Ok(SignerCredential {
            provider,
            signer: signer.to_owned(),
            meta,
            cert_der,
            key,
        })
    }
}

fn trunc_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}
