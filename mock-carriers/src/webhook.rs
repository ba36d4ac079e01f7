//! Outgoing provider pushes (SmartCA webhooks, MSSP notifications; CSC response_uri later):
//! fire-and-forget POSTs (JSON or raw bodies such as SOAP) with a short timeout and a bounded
//! number in flight, so a slow or absent receiver never holds up the request path. When the
//! bound is reached, the push is dropped and logged — a push is only a hint, the receiver
//! polls anyway.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Pushes allowed in flight at once.
const MAX_IN_FLIGHT: usize = 256;

pub struct WebhookSender {
    client: reqwest::Client,
    permits: Arc<Semaphore>,
}

impl WebhookSender {
    pub fn new() -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        Ok(Self {
            client,
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// Posts `body` to `url` in the background. Must be called inside a Tokio runtime; outside
    /// one (or when too many pushes are in flight) the push is skipped.
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
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            tracing::warn!(%url, "webhook skipped: too many in flight");
            return;
        };
        runtime.spawn(async move {
            let _permit = permit;
            match request.send().await {
                Ok(resp) if resp.status().is_success() => {
                    tracing::debug!(%url, status = %resp.status(), "webhook delivered")
                }
                Ok(resp) => tracing::warn!(%url, status = %resp.status(), "webhook refused"),
                Err(e) => tracing::warn!(%url, error = %e, "webhook failed"),
            }
        });
    }
}
