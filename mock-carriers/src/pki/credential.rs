//! A signer's key and certificate at one provider, and how they come to be: loaded from the
//! state directory, provisioned (a key from the pool + a new certificate) on first use, or re-issued over the
//! same key when the stored certificate's AIA/CRL URLs point at another base URL than the one
//! the mock is served at now (the state directory outlives the port). Every certificate is
//! entered in its CA's issued book before its files are written.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::authority::{self, Authority, Links};
use super::files::{read_optional, write_unsynced};
use super::issued::IssuedBook;
use super::pool::KeyPool;
use super::subject::{self, Subject};
use super::{PkiError, Provider};
use crate::behaviour::Behaviour;

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
    /// The mock's base URL the certificate's AIA and CRL DP point at (absent in state
    /// directories from before revocation was served: such certificates are re-issued).
    #[serde(default)]
    pub base_url: Option<String>,
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

/// Everything [`load_or_provision`] needs from the PKI.
pub struct Context<'a> {
    pub provider: Provider,
    pub issuer: &'a Authority,
    pub book: &'a IssuedBook,
    pub pool: &'a KeyPool,
    pub dir: PathBuf,
    pub base_url: &'a str,
    pub links: Links,
}

/// The signer's credential from disk, re-issued if its URLs are stale, or provisioned anew.
pub fn load_or_provision(ctx: &Context<'_>, signer: &str) -> Result<SignerCredential, PkiError> {
    let key_path = ctx.dir.join(format!("{signer}.key.der"));
    let crt_path = ctx.dir.join(format!("{signer}.crt.der"));
    let meta_path = ctx.dir.join(format!("{signer}.json"));
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
            (Ok(key), Ok(meta)) if meta.base_url.as_deref() == Some(ctx.base_url) => {
                return Ok(SignerCredential {
                    provider: ctx.provider,
                    signer: signer.to_owned(),
                    meta,
                    cert_der,
                    key,
                })
            }
            (Ok(_), Ok(meta)) => {
                tracing::info!(
                    signer,
                    "stored certificate points at another base URL; re-issuing"
                );
                return issue(
                    ctx,
                    signer,
                    pkcs8,
                    meta.subject,
                    meta.not_before,
                    meta.not_after,
                );
            }
            _ => tracing::warn!(
                signer,
                "stored signer credential unreadable; provisioning a new one"
            ),
        }
    }

    let subject = if ctx.provider.is_sim() {
        subject::sim_subject(signer)
    } else {
        subject::subject_for(signer)
    };
    let now = trunc_seconds(Utc::now());
    let (not_before, not_after) = if Behaviour::for_signer(signer) == Behaviour::ExpiredCertificate
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
    let pkcs8 = ctx.pool.key_for(signer)?.as_ref().clone();
    let cred = issue(ctx, signer, pkcs8, subject, not_before, not_after)?;
    tracing::info!(provider = ctx.provider.id(), signer, uid = %cred.meta.subject.uid, "provisioned signer certificate");
    Ok(cred)
}

/// Issues a certificate over `pkcs8` with a fresh serial and writes key, certificate and
/// metadata.
fn issue(
    ctx: &Context<'_>,
    signer: &str,
    pkcs8: Vec<u8>,
    subject: Subject,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<SignerCredential, PkiError> {
    let serial = authority::random_serial();
    let meta = CertMeta {
        subject,
        serial_hex: hex::encode(serial),
        // Certificates carry whole seconds.
        not_before: trunc_seconds(not_before),
        not_after: trunc_seconds(not_after),
        base_url: Some(ctx.base_url.to_owned()),
    };
    let cert_der = ctx.issuer.issue_signer(
        &pkcs8,
        &meta.subject,
        &serial,
        meta.not_before,
        meta.not_after,
        &ctx.links,
    )?;
    let meta_json =
        serde_json::to_vec_pretty(&meta).map_err(|_| PkiError::Crypto("metadata encoding"))?;
    ctx.book.record(&meta.serial_hex, signer, meta.not_before)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PkiError::Io { path, source }
    };
    let key_path = ctx.dir.join(format!("{signer}.key.der"));
    let crt_path = ctx.dir.join(format!("{signer}.crt.der"));
    let meta_path = ctx.dir.join(format!("{signer}.json"));
    write_unsynced(&key_path, &pkcs8).map_err(io(&key_path))?;
    write_unsynced(&crt_path, &cert_der).map_err(io(&crt_path))?;
    write_unsynced(&meta_path, &meta_json).map_err(io(&meta_path))?;
    let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8)
        .map_err(|_| PkiError::Crypto("generated key does not parse"))?;
    Ok(SignerCredential {
        provider: ctx.provider,
        signer: signer.to_owned(),
        meta,
        cert_der,
        key,
    })
}

fn trunc_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}
