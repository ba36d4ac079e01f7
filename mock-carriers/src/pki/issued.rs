//! The book of what each CA issued: serial number → signer and notBefore, kept in memory and
//! appended to `<signers dir>/issued.log` (one `serial-hex signer not-before-unix` line per
//! certificate) so the OCSP responder and the CRL still know every serial after a restart. A
//! serial missing from the book is one the CA never issued (OCSP `unknown`).
//!
//! Revocation is a property of the signer, not stored state: every certificate of a signer
//! whose id ends in `501` is revoked (reason keyCompromise) from its notBefore on, so a
//! signature it makes is always after the revocation.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use super::authority::RevokedEntry;
use super::files::read_optional;
use super::PkiError;
use crate::behaviour::Behaviour;

/// What the OCSP responder says about one serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertState {
    Good,
    Revoked { at: DateTime<Utc> },
    Unknown,
}

#[derive(Debug, Clone)]
struct Entry {
    signer: String,
    not_before: DateTime<Utc>,
}

impl Entry {
    fn revoked(&self) -> bool {
        Behaviour::for_signer(&self.signer) == Behaviour::RevokedCertificate
    }
}

/// One CA's issued certificates.
pub struct IssuedBook {
    path: PathBuf,
    entries: Mutex<HashMap<String, Entry>>,
}

impl IssuedBook {
    /// Reads `<dir>/issued.log` (missing means empty; malformed lines are skipped).
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let path = dir.join("issued.log");
        let bytes = read_optional(&path).map_err(|source| PkiError::Io {
            path: path.clone(),
            source,
        })?;
        let mut entries = HashMap::new();
        for line in String::from_utf8_lossy(&bytes.unwrap_or_default()).lines() {
            let mut parts = line.split_whitespace();
            let (Some(serial), Some(signer), Some(not_before)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(not_before) = not_before
                .parse::<i64>()
                .ok()
                .and_then(|t| DateTime::from_timestamp(t, 0))
            else {
                continue;
            };
            entries.insert(
                normalise_serial(serial),
                Entry {
                    signer: signer.to_owned(),
                    not_before,
                },
            );
        }
        Ok(Self {
            path,
            entries: Mutex::new(entries),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a certificate before its files are written, so a crash in between leaves a
    /// known serial rather than an unknown certificate.
    pub fn record(
        &self,
        serial_hex: &str,
        signer: &str,
        not_before: DateTime<Utc>,
    ) -> Result<(), PkiError> {
        let mut entries = self.lock();
        let io = |source| PkiError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        writeln!(file, "{serial_hex} {signer} {}", not_before.timestamp()).map_err(io)?;
        entries.insert(
            normalise_serial(serial_hex),
            Entry {
                signer: signer.to_owned(),
                not_before,
            },
        );
        Ok(())
    }

    /// The status of the certificate with this serial (big-endian bytes, any leading zeros).
    pub fn state(&self, serial: &[u8]) -> CertState {
        match self.lock().get(&normalise_serial(&hex::encode(serial))) {
            None => CertState::Unknown,
            Some(e) if e.revoked() => CertState::Revoked { at: e.not_before },
            Some(_) => CertState::Good,
        }
    }

    /// Every revoked certificate this CA issued, for its CRL.
    pub fn revoked(&self) -> Vec<RevokedEntry> {
        let mut out: Vec<RevokedEntry> = self
            .lock()
            .iter()
            .filter(|(_, e)| e.revoked())
            .filter_map(|(serial, e)| {
                let padded = if serial.len() % 2 == 1 {
                    format!("0{serial}")
                } else {
                    serial.clone()
                };
                Some(RevokedEntry {
                    serial: hex::decode(padded).ok()?,
                    revoked_at: e.not_before,
                })
            })
            .collect();
        out.sort_by(|a, b| a.serial.cmp(&b.serial));
        out
    }
}

/// Lowercase hex without leading zeros, so `00ab…` and `AB…` name the same serial.
fn normalise_serial(hex: &str) -> String {
    let trimmed = hex.trim().trim_start_matches('0').to_ascii_lowercase();
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_serials_survive_a_reload_and_501_signers_are_revoked() -> Result<(), PkiError> {
        let dir = tempfile::tempdir().map_err(|source| PkiError::Io {
            path: PathBuf::new(),
            source,
        })?;
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        {
            let book = IssuedBook::load(dir.path())?;
            book.record("0a0b", "84912345678", at)?;
            book.record("0c0d", "84912345501", at)?;
        }
        let book = IssuedBook::load(dir.path())?;
        assert_eq!(book.state(&[0x0a, 0x0b]), CertState::Good);
        assert_eq!(book.state(&[0, 0x0c, 0x0d]), CertState::Revoked { at });
        assert_eq!(book.state(&[0x01]), CertState::Unknown);
        let revoked = book.revoked();
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0].serial, vec![0x0c, 0x0d]);
        Ok(())
    }
}
