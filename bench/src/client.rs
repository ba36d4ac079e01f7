//! The load generator's side of the portal API: creating sessions as a portal does, and one
//! WebSocket client that timestamps every event it receives. A [`Tracker`] joins the two by
//! session id — an event may arrive before the create call has even returned — so phases can
//! ask when a session reached the phone, finished, or how long after a mark it finished.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::prelude::{Engine as _, BASE64_STANDARD};
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::gateway::API_KEY;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

impl Client {
    pub fn new(base: String) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self { http, base })
    }

    /// Starts a signature for `signer` at `provider`; returns the session id.
    pub async fn create(&self, provider: &str, signer: &str, nonce: u64) -> anyhow::Result<String> {
        let digest = BASE64_STANDARD.encode(Sha256::digest(format!("{signer}/{nonce}")));
        let body = serde_json::json!({
            "provider": provider,
            "signer": signer,
            "purpose": "login",
            "digest": digest,
            "timeout_s": 3600,
        });
        let resp = self
            .http
            .post(format!("{}/v1/signatures", self.base))
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        if status.as_u16() != 201 {
            let text = resp.text().await.unwrap_or_default();
            anyhow::bail!("create answered {status}: {text}");
        }
        Ok(resp.json::<Created>().await?.id)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// Runs `n` jobs with at most `concurrency` at once; job `i` gets its index. Stops at the
/// first error and returns it.
pub async fn run_jobs<F, Fut>(n: usize, concurrency: usize, job: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let job = Arc::new(job);
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let next = next.clone();
        let job = job.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                job(i).await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(())
}

#[derive(Default)]
struct Entry {
    awaiting: Option<Instant>,
    done: Option<Instant>,
    signed: bool,
    /// Freed when the session finishes (bounds sessions in flight).
    permit: Option<OwnedSemaphorePermit>,
    /// When the phase did something it times against the terminal event (a callback).
    mark: Option<Instant>,
}

/// What the WebSocket client has seen, by session id.
#[derive(Default)]
pub struct Tracker {
    map: Mutex<HashMap<String, Entry>>,
    finished: AtomicU64,
    signed: AtomicU64,
    awaiting: AtomicU64,
    changed: Notify,
}

impl Tracker {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `permit` until the session finishes (at once if it already has).
    pub fn hold(&self, id: &str, permit: OwnedSemaphorePermit) {
        let mut map = self.entries();
        let e = map.entry(id.to_owned()).or_default();
        if e.done.is_none() {
            e.permit = Some(permit);
        }
    }

    pub fn mark(&self, id: &str, at: Instant) {
        self.entries().entry(id.to_owned()).or_default().mark = Some(at);
    }

    fn on_event(&self, id: String, status: &str, at: Instant) {
        let mut map = self.entries();
        let e = map.entry(id).or_default();
        match status {
            "pending" => return,
            "awaiting_user" => {
                if e.awaiting.is_none() {
                    e.awaiting = Some(at);
                    self.awaiting.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {
                if e.done.is_none() {
                    e.done = Some(at);
                    e.signed = status == "signed";
                    e.permit = None;
                    self.finished.fetch_add(1, Ordering::Relaxed);
                    if e.signed {
                        self.signed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        drop(map);
        self.changed.notify_waiters();
    }

    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    pub fn signed(&self) -> u64 {
        self.signed.load(Ordering::Relaxed)
    }

    pub fn awaiting(&self) -> u64 {
        self.awaiting.load(Ordering::Relaxed)
    }

    /// Waits until `done()` holds, or fails after `timeout` saying what it waited for.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Self) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !done(self) {
            let notified = self.changed.notified();
            if tokio::time::timeout_at(deadline, notified).await.is_err() && !done(self) {
                anyhow::bail!(
                    "timed out waiting for {what} (awaiting_user {}, finished {}, signed {})",
                    self.awaiting(),
                    self.finished(),
                    self.signed()
                );
            }
        }
        Ok(())
    }

    /// Time from each marked session's mark to its terminal event.
    pub fn mark_to_done(&self) -> Vec<Duration> {
        self.entries()
            .values()
            .filter_map(|e| Some(e.done?.saturating_duration_since(e.mark?)))
            .collect()
    }

    /// The earliest and latest terminal events.
    pub fn done_span(&self) -> Option<(Instant, Instant)> {
        let map = self.entries();
        let times = map.values().filter_map(|e| e.done);
        let first = times.clone().min()?;
        Some((first, times.max()?))
    }
}

#[derive(Deserialize)]
struct Frame {
    session: FrameSession,
}

#[derive(Deserialize)]
struct FrameSession {
    id: String,
    status: String,
}

/// Opens the tenant's event stream and feeds `tracker` until the connection ends.
pub async fn follow_events(
    addr: std::net::SocketAddr,
    tracker: Arc<Tracker>,
) -> anyhow::Result<()> {
    let mut req = format!("ws://{addr}/v1/events").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {API_KEY}").parse()?);
    let (mut stream, _) = tokio_tungstenite::connect_async(req)
        .await
        .context("WebSocket connect")?;
    tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let at = Instant::now();
            if let Message::Text(t) = msg {
                if let Ok(f) = serde_json::from_str::<Frame>(&t) {
                    tracker.on_event(f.session.id, &f.session.status, at);
                }
            }
        }
    });
    Ok(())
}
