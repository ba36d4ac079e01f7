//! What tests read to tell that something did (or did not) happen: the mock's per-signer call
//! counts and prompts, and the gateway's metrics.

use serde_json::Value;

use crate::helpers::TestApp;

impl TestApp {
    /// The calls of each kind that reached the mock for `signer`, counted before any fault or
    /// delay: `{"certificates", "sign", "status", "receipt"}`.
    pub async fn mock_calls(&self, signer: &str) -> Value {
        let path = format!("/admin/calls/{signer}");
        self.mock_json(reqwest::Method::GET, &path).await
    }

    /// Every phone request the mock holds for `signer`, whatever its status (no waiting).
    pub async fn all_prompts(&self, signer: &str) -> Vec<Value> {
        let path = format!("/admin/requests?signer={signer}&status=all");
        let v = self.mock_json(reqwest::Method::GET, &path).await;
        v["requests"].as_array().cloned().unwrap_or_default()
    }

    /// The value of one series of `/metrics` (`name{labels}` as rendered), 0 when absent. The
    /// recorder is the process's: other tests' series with the same labels add up.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }
}
