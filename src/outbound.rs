//! Outbound HTTP: the one client kyso calls others with — provider adapters and the revocation
//! fetcher alike — and the capped reader every answer goes through. rustls with the aws-lc-rs
//! provider, optional extra roots and client certificate, hard timeouts; TLS verification is
//! never off. Below `providers` and `verify`, so neither imports the other for it.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("building the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM files of extra roots to trust for the peer's TLS certificate.
    #[serde(default)]
    pub extra_roots: Vec<String>,
    /// PEM file holding a client certificate and its key, for mTLS.
    pub client_identity: Option<String>,
}

pub fn build_client(tls: &TlsConfig, timeout: Duration) -> Result<reqwest::Client, ClientError> {
    let read = |path: &String| {
        std::fs::read(path).map_err(|source| ClientError::Read {
            path: path.clone(),
            source,
        })
    };
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("kyso/", env!("CARGO_PKG_VERSION")));
    for path in &tls.extra_roots {
        for cert in reqwest::Certificate::from_pem_bundle(&read(path)?)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some(path) = &tls.client_identity {
        builder = builder.identity(reqwest::Identity::from_pem(&read(path)?)?);
    }
    Ok(builder.build()?)
}

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("answer over {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
}

/// Reads an answer, refusing one larger than `max` before buffering it (by its
/// Content-Length) or while streaming it (without one).
pub async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, ReadError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(ReadError::TooLarge(max));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() + chunk.len() > max {
            return Err(ReadError::TooLarge(max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}
