//! The state directory on disk: where each key and certificate lives, atomic writes (write a
//! temporary file, then rename) so a crash never leaves half a key behind, and PEM encoding
//! for the files people open by hand.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use base64::Engine;

/// Reads a file, treating "not there" as `None`.
pub fn read_optional(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` through a temporary sibling and a rename, synced to disk first.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_via_rename(path, bytes, true)
}

/// [`write_atomic`] without the sync, for files that are cheap to lose: a signer's
/// credential files (a crash may leave them empty; they are then provisioned anew, with a key
/// from the pool and a new certificate). Syncing three files per new signer would make
/// provisioning cost milliseconds of disk latency instead of microseconds.
pub fn write_unsynced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_via_rename(path, bytes, false)
}

fn write_via_rename(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    if !dir.is_dir() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = temp_sibling(path);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)
}

fn temp_sibling(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// PEM armour with 64-character lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_round_trip_and_missing_files_read_as_none() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a/b/key.der");
        assert_eq!(read_optional(&path)?, None);
        write_atomic(&path, b"abc")?;
        assert_eq!(read_optional(&path)?, Some(b"abc".to_vec()));
        Ok(())
    }

    #[test]
    fn pem_wraps_lines_at_64_characters() {
        let text = pem("CERTIFICATE", &[0u8; 100]);
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(text.lines().all(|l| l.len() <= 64));
    }
}
