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

    /// Waits (up to 20 s) until the mock has counted at least `n` calls of `kind` for `signer`,
    /// and returns the count: the observable that a request reached the provider.
    pub async fn wait_calls(&self, signer: &str, kind: &str, n: u64) -> u64 {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let got = self.mock_calls(signer).await[kind].as_u64().unwrap_or(0);
            if got >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{signer}: {got} {kind} calls, waited for {n}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// `(pushes sent, pushes answered)` by the mock, once every push sent so far has been
    /// answered (or failed): kyso has handled every push of the decisions made before.
    pub async fn pushes_settled(&self) -> (u64, u64) {
        let within = std::time::Duration::from_secs(20);
        self.mock.carriers.pushes_settled(within).await
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
