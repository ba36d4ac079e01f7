//! Outgoing provider pushes (SmartCA webhooks, MSSP notifications; CSC response_uri later):
//! fire-and-forget POSTs (JSON or raw bodies such as SOAP) with a short timeout, a bounded
//! number in flight and a bounded queue behind them, so a slow or absent receiver never holds
//! up the request path. A burst waits in the queue, as a real provider's outbound queue would;
//! only when the queue too is full is the push dropped and logged — a push is only a hint, the
//! receiver polls anyway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Pushes allowed in flight at once.
const MAX_IN_FLIGHT: usize = 256;

/// Pushes allowed to exist at once, in flight or queued behind those (a few KB each).
const MAX_QUEUED: usize = 16_384;

pub struct WebhookSender {
    client: reqwest::Client,
    in_flight: Arc<Semaphore>,
    queued: Arc<Semaphore>,
    /// Pushes taken to be sent, and those the receiver answered (any status): a push counted
    /// as taken is answered or fails within the timeouts.
    taken: AtomicU64,
    answered: Arc<AtomicU64>,
}

impl WebhookSender {
    pub fn new() -> anyhow::Result<Self> {
        Self::with_limits(MAX_IN_FLIGHT, MAX_QUEUED)
    }

    fn with_limits(in_flight: usize, queued: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        Ok(Self {
            client,
            in_flight: Arc::new(Semaphore::new(in_flight)),
            queued: Arc::new(Semaphore::new(queued.max(in_flight))),
            taken: AtomicU64::new(0),
            answered: Arc::new(AtomicU64::new(0)),
        })
    }

    /// `(pushes taken to be sent, pushes the receiver answered)` since start (`/admin/stats`
    /// `pushes_sent`, `pushes_answered`): when the two are equal no push is on its way.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.taken.load(Ordering::Relaxed),
            self.answered.load(Ordering::Relaxed),
        )
    }

    /// Posts `body` to `url` in the background. Must be called inside a Tokio runtime; outside
    /// one (or when the queue is full) the push is skipped.
    pub fn send(&self, url: String, body: serde_json::Value) {
        let request = self.client.post(&url).json(&body);
        self.spawn(url, request);
    }

    /// Posts `body` with `content_type` to `url` in the background, like [`Self::send`].
    pub fn send_raw(&self, url: String, content_type: &'static str, body: Vec<u8>) {
        let request = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.spawn(url, request);
    }

    fn spawn(&self, url: String, request: reqwest::RequestBuilder) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("webhook skipped: no async runtime");
            return;
        };
        let Ok(place) = self.queued.clone().try_acquire_owned() else {
            tracing::warn!(%url, "webhook skipped: queue full");
            return;
        };
        self.taken.fetch_add(1, Ordering::Relaxed);
        let in_flight = self.in_flight.clone();
        let answered = self.answered.clone();
        runtime.spawn(async move {
            let _place = place;
            // The semaphore is never closed; the timeout starts at `send`, after the wait.
            let Ok(_permit) = in_flight.acquire_owned().await else {
                return;
            };
            let sent = request.send().await;
            if sent.is_ok() {
                answered.fetch_add(1, Ordering::Relaxed);
            }
            match sent {
                Ok(resp) if resp.status().is_success() => {
                    tracing::debug!(%url, status = %resp.status(), "webhook delivered")
                }
                Ok(resp) => tracing::warn!(%url, status = %resp.status(), "webhook refused"),
                Err(e) => tracing::warn!(%url, error = %e, "webhook failed"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::routing::post;
    use axum::Router;

    use super::*;

    /// A receiver that answers every POST after `delay`, counting them.
    async fn slow_receiver(delay: Duration) -> (String, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let app = Router::new().route(
            "/hook",
            post(move || {
                let seen = seen.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        (url, count)
    }

    /// Sends `pushes` pushes at once through a sender with these bounds to a receiver that
    /// answers each after `delay`; how many arrived once `want` had and twice `delay` passed
    /// since (so that one more would have arrived too).
    async fn delivered(
        (in_flight, queued): (usize, usize),
        delay: Duration,
        pushes: usize,
        want: usize,
    ) -> usize {
        let (url, count) = slow_receiver(delay).await;
        let sender = WebhookSender::with_limits(in_flight, queued).expect("sender");
        for i in 0..pushes {
            sender.send(url.clone(), serde_json::json!({ "n": i }));
        }
        for _ in 0..200 {
            if count.load(Ordering::SeqCst) >= want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(delay * 2).await;
        count.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_burst_beyond_the_in_flight_bound_waits_and_is_delivered() {
        assert_eq!(
            delivered((4, 100), Duration::from_millis(50), 40, 40).await,
            40
        );
    }

    #[tokio::test]
    async fn pushes_beyond_the_queue_are_dropped() {
        assert_eq!(
            delivered((2, 10), Duration::from_millis(200), 25, 10).await,
            10
        );
    }
}
