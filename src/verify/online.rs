//! Revocation over the network: OCSP first (from the certificate's AIA, with a fresh nonce,
//! POSTed with a short timeout), the CRL distribution points when OCSP gives no definite answer.
//! Answers are cached by certificate fingerprint until their nextUpdate, CRLs by URL and issuer
//! until theirs, and a source that just failed is left alone for a while so an outage costs one
//! timeout, not one per signature. All caches are bounded.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::cache::TtlCache;
use super::crl::Crl;
use super::ocsp;
use super::revocation::{Answer, Finding, Subject};
use crate::outbound::{build_client, read_capped, ClientError, ReadError, TlsConfig};

/// OCSP answers are small; a responder that sends more is broken or hostile.
const MAX_OCSP_BYTES: usize = 256 * 1024;
/// National CAs' CRLs run to a few MiB.
const MAX_CRL_BYTES: usize = 16 * 1024 * 1024;
const ANSWER_ENTRIES: usize = 10_000;
const CRL_ENTRIES: usize = 64;
/// Nothing is believed for longer than this, whatever nextUpdate says.
const MAX_CACHE: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a source that failed is skipped.
const BACKOFF: Duration = Duration::from_secs(30);

/// Where revocation data comes from. [`HttpFetch`] in production; tests and benchmarks plug in
/// their own.
#[async_trait]
pub trait Fetch: Send + Sync {
    /// POSTs a DER OCSP request and returns the DER response.
    async fn ocsp(&self, url: &str, request: Vec<u8>) -> Result<Vec<u8>, FetchError>;
    /// GETs a DER CRL.
    async fn crl(&self, url: &str) -> Result<Vec<u8>, FetchError>;
}

/// Why an OCSP responder or a CRL distribution point gave nothing to judge. Each reads as a
/// note in the verdict's `Unknown` reason, and leaves the source alone for a while.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The server answered with a status other than 2xx.
    #[error("HTTP {0}")]
    Status(u16),
    /// The answer was larger than the cap for its kind.
    #[error("answer over {0} bytes")]
    TooLarge(usize),
    /// No answer: connect error, timeout, reset. The transport's own words, for the log.
    #[error("{0}")]
    Transport(String),
}

impl From<ReadError> for FetchError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::TooLarge(max) => FetchError::TooLarge(max),
            ReadError::Transport(e) => FetchError::Transport(e.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OnlineOptions {
    /// Per request (connect included).
    pub timeout: Duration,
    /// URL prefix replacements applied before fetching (`from`, `to`): for an internal mirror
    /// or proxy of a CA's responder, or a test responder on another port.
    pub rewrites: Vec<(String, String)>,
}

impl Default for OnlineOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            rewrites: Vec::new(),
        }
    }
}

pub struct HttpFetch {
    client: reqwest::Client,
    rewrites: Vec<(String, String)>,
}

impl HttpFetch {
    pub fn new(options: &OnlineOptions) -> Result<Self, ClientError> {
        Ok(Self {
            client: build_client(&TlsConfig::default(), options.timeout)?,
            rewrites: options.rewrites.clone(),
        })
    }

    fn url(&self, url: &str) -> String {
        for (from, to) in &self.rewrites {
            if let Some(rest) = url.strip_prefix(from.as_str()) {
                return format!("{to}{rest}");
            }
        }
        url.to_owned()
    }

    async fn read(
        sent: Result<reqwest::Response, reqwest::Error>,
        max: usize,
    ) -> Result<Vec<u8>, FetchError> {
        let resp = sent.map_err(|e| FetchError::Transport(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        Ok(read_capped(resp, max).await?)
    }
}

#[async_trait]
impl Fetch for HttpFetch {
    async fn ocsp(&self, url: &str, request: Vec<u8>) -> Result<Vec<u8>, FetchError> {
        let sent = self
            .client
            .post(self.url(url))
            .header("content-type", "application/ocsp-request")
            .header("accept", "application/ocsp-response")
            .body(request)
            .send()
            .await;
        Self::read(sent, MAX_OCSP_BYTES).await
    }

    async fn crl(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let sent = self.client.get(self.url(url)).send().await;
        Self::read(sent, MAX_CRL_BYTES).await
    }
}

pub(crate) struct Online {
    fetch: Arc<dyn Fetch>,
    /// By the SHA-256 fingerprint of the certificate the answer is about.
    answers: TtlCache<[u8; 32], Answer>,
    /// By URL and the SHA-256 of the issuer key that verified the CRL.
    crls: TtlCache<(String, [u8; 32]), Arc<Crl>>,
    /// URLs that failed recently, with why.
    down: TtlCache<String, FetchError>,
}

fn ttl(next_update: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    next_update
        .and_then(|next| (next - now).to_std().ok())
        .map_or(Duration::ZERO, |d| d.min(MAX_CACHE))
}

impl Online {
    pub fn new(fetch: Arc<dyn Fetch>) -> Self {
        Self {
            fetch,
            answers: TtlCache::new(ANSWER_ENTRIES),
            crls: TtlCache::new(CRL_ENTRIES),
            down: TtlCache::new(ANSWER_ENTRIES),
        }
    }

    pub async fn check(
        &self,
        subject: Subject<'_>,
        fingerprint: [u8; 32],
        at: DateTime<Utc>,
    ) -> Finding {
        if let Some(answer) = self.answers.get(&fingerprint).filter(|a| a.covers(at)) {
            if let Some(finding) = Finding::from_answer(&answer, at) {
                return finding;
            }
        }
        let (ocsp_urls, crl_urls) = (subject.ocsp_urls(), subject.crl_urls());
        if ocsp_urls.is_empty() && crl_urls.is_empty() {
            return Finding::NotChecked {
                why: "the certificate names no OCSP responder or CRL distribution point".into(),
            };
        }
        let mut notes = Vec::new();
        for url in &ocsp_urls {
            match self.ask_ocsp(subject, url, at).await {
                Ok(answer) => {
                    if let Some(finding) = Finding::from_answer(&answer, at) {
                        self.remember(fingerprint, answer);
                        return finding;
                    }
                    notes.push(format!("OCSP {url}: status unknown"));
                }
                Err(why) => notes.push(format!("OCSP {url}: {why}")),
            }
        }
        for url in &crl_urls {
            match self.ask_crl(subject, url, at).await {
                Ok(answer) => {
                    if let Some(finding) = Finding::from_answer(&answer, at) {
                        self.remember(fingerprint, answer);
                        return finding;
                    }
                }
                Err(why) => notes.push(format!("CRL {url}: {why}")),
            }
        }
        Finding::Unknown {
            why: notes.join("; "),
        }
    }

    fn remember(&self, fingerprint: [u8; 32], answer: Answer) {
        let ttl = ttl(answer.next_update, Utc::now());
        self.answers.insert(fingerprint, answer, ttl);
    }

    fn skip_if_down(&self, url: &str) -> Result<(), String> {
        match self.down.get(&url.to_owned()) {
            Some(why) => Err(format!("{why} (failed recently; not retried yet)")),
            None => Ok(()),
        }
    }

    /// Remembers that `url` failed, and says why for the verdict's notes.
    fn mark_down(&self, url: &str, why: FetchError) -> String {
        let note = why.to_string();
        self.down.insert(url.to_owned(), why, BACKOFF);
        note
    }

    async fn ask_ocsp(
        &self,
        subject: Subject<'_>,
        url: &str,
        at: DateTime<Utc>,
    ) -> Result<Answer, String> {
        self.skip_if_down(url)?;
        let built = ocsp::request(subject)?;
        let response = self
            .fetch
            .ocsp(url, built.der)
            .await
            .map_err(|why| self.mark_down(url, why))?;
        ocsp::judge(&response, subject, Some(&built.nonce), at, Utc::now()).inspect_err(|why| {
            tracing::warn!(url, reason = %why, "OCSP response refused");
        })
    }

    async fn ask_crl(
        &self,
        subject: Subject<'_>,
        url: &str,
        at: DateTime<Utc>,
    ) -> Result<Answer, String> {
        let issuer_key: [u8; 32] = Sha256::digest(
            subject
                .issuer
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes(),
        )
        .into();
        let key = (url.to_owned(), issuer_key);
        let crl = match self.crls.get(&key) {
            Some(crl) => crl,
            None => {
                self.skip_if_down(url)?;
                let der = self
                    .fetch
                    .crl(url)
                    .await
                    .map_err(|why| self.mark_down(url, why))?;
                let crl = Arc::new(Crl::parse(&der, subject.issuer, Utc::now())?);
                self.crls
                    .insert(key, Arc::clone(&crl), ttl(crl.next_update, Utc::now()));
                crl
            }
        };
        crl.answer(subject.leaf, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A responder on port 0: 404 for `/missing`, an answer over the OCSP cap for `/big`, and a
    /// small one for `/ok`.
    async fn responder() -> String {
        use axum::routing::{get, post};
        let app = axum::Router::new()
            .route(
                "/missing",
                get(|| async { axum::http::StatusCode::NOT_FOUND }),
            )
            .route("/big", post(|| async { vec![0u8; MAX_OCSP_BYTES + 1] }))
            .route("/ok", post(|| async { vec![0x30u8, 0x00] }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn why_a_source_gave_nothing_is_told_by_kind() {
        crate::telemetry::install_crypto_provider();
        let base = responder().await;
        let fetch = HttpFetch::new(&OnlineOptions::default()).expect("client");
        assert_eq!(
            fetch.crl(&format!("{base}/missing")).await,
            Err(FetchError::Status(404))
        );
        assert_eq!(
            fetch.ocsp(&format!("{base}/big"), vec![1]).await,
            Err(FetchError::TooLarge(MAX_OCSP_BYTES))
        );
        assert_eq!(
            fetch.ocsp(&format!("{base}/ok"), vec![1]).await,
            Ok(vec![0x30, 0x00])
        );
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("addr");
        let refused = fetch.crl(&format!("http://{closed}/crl")).await;
        assert!(
            matches!(refused, Err(FetchError::Transport(_))),
            "{refused:?}"
        );
    }
}
