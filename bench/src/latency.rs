//! Latency at a steady event rate. Sessions are created at `--latency-rate` per second (open
//! loop), which times create → phone prompt (the mock's `created_at` against the moment the
//! create call was sent; one clock, one machine). The gateway is configured never to poll and
//! the mock not to push, so the sessions then sit signed at the provider, awaiting the user as
//! far as the gateway knows; the bench sends their SmartCA webhooks itself at the same rate and
//! times each from the moment its callback was sent to the moment its `signed` event arrives
//! on the WebSocket — wake, status call, verification, commit and fan-out included.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kyso::domain::SessionId;
use serde_json::json;

use crate::client::{follow_events, Client, Tracker};
use crate::gateway::{provider_id, sp_account, Gateway, Spec};
use crate::mock::Mock;
use crate::stats::Spread;
use crate::Ctx;

/// A session id and when its create call was sent.
type Sent = (String, DateTime<Utc>);

pub struct Latency {
    pub callback_to_ws: Spread,
    pub callback_rate: f64,
    pub create_to_prompt: Spread,
    pub create_rate: f64,
}

/// Calls `f(i)` for `i in 0..n`, each in its own task, at `rate` per second.
async fn paced<F, Fut>(n: usize, rate: f64, f: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        tasks.push(tokio::spawn(f(i)));
    }
    let sent_in = start.elapsed().as_secs_f64();
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / sent_in.max(1e-9))
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<Latency> {
    let n = ctx.opts.latency_events;
    let rate = ctx.opts.latency_rate;
    let mock = Mock::start(&ctx.mock_rt, &ctx.state, 0).await?;
    let never = 3_600_000;
    let spec = Spec {
        db_url: format!("sqlite://{}", ctx.dir.join("latency.db").display()),
        mock: mock.addr,
        root: mock.root_path.clone(),
        instances: 1,
        provider_rate: 1_000_000,
        max_in_flight: 256,
        poll_first_ms: never,
        poll_interval_ms: never,
    };
    // The mock's default account has no webhook URL: the bench sends the pushes itself.
    let gw = Gateway::start(&spec, &ctx.dir, "latency")?;
    let tracker = Arc::new(Tracker::default());
    follow_events(gw.addr, tracker.clone()).await?;
    let client = Client::new(gw.url(""))?;

    let created: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let approvers = Arc::new(ctx.approvers.clone());
    let create_rate = {
        let created = created.clone();
        paced(n, rate, |i| {
            let (client, created, approvers) = (client.clone(), created.clone(), approvers.clone());
            async move {
                let sent = Utc::now();
                let signer = &approvers[i % approvers.len()];
                let id = client.create(&provider_id(0), signer, i as u64).await?;
                created
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((id, sent));
                Ok(())
            }
        })
        .await?
    };
    tracker
        .wait_for(
            "every session on the phone",
            Duration::from_secs(120),
            |t| t.awaiting() >= n as u64,
        )
        .await?;
    let created = std::mem::take(&mut *created.lock().unwrap_or_else(|e| e.into_inner()));
    let create_to_prompt = prompt_times(&client, &mock, &created).await?;

    // The mock settles approvals on a 100 ms ticker; give it that long.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ids: Arc<Vec<String>> = Arc::new(created.into_iter().map(|(id, _)| id).collect());
    let hook_url = gw.url(&format!("/callbacks/{}", provider_id(0)));
    let (sp_id, _) = sp_account(0);
    let callback_rate = paced(n, rate, |i| {
        let (http, url, ids, tracker, sp_id) = (
            client.http().clone(),
            hook_url.clone(),
            ids.clone(),
            tracker.clone(),
            sp_id.clone(),
        );
        async move {
            let id = &ids[i];
            let tx = SessionId::parse(id)
                .map(|s| s.transaction_id())
                .unwrap_or_default();
            let body = json!({"sp_id": sp_id, "status_code": 200, "message": "SUCCESS",
                "transaction_id": tx, "signed_files": null});
            tracker.mark(id, Instant::now());
            http.post(&url)
                .json(&body)
                .send()
                .await?
                .error_for_status()?;
            Ok(())
        }
    })
    .await?;
    tracker
        .wait_for("every signed event", Duration::from_secs(120), |t| {
            t.finished() >= n as u64
        })
        .await?;
    anyhow::ensure!(
        tracker.signed() == n as u64,
        "{} of {n} sessions ended signed",
        tracker.signed()
    );
    gw.stop().await;
    let callback_to_ws =
        Spread::of(tracker.mark_to_done()).ok_or_else(|| anyhow::anyhow!("no latency samples"))?;
    Ok(Latency {
        callback_to_ws,
        callback_rate,
        create_to_prompt,
        create_rate,
    })
}

/// Create-call sent → prompt created at the mock, for up to 2,000 sessions.
async fn prompt_times(client: &Client, mock: &Mock, created: &[Sent]) -> anyhow::Result<Spread> {
    let step = (created.len() / 2000).max(1);
    let mut samples = Vec::new();
    for (id, sent) in created.iter().step_by(step) {
        let tx = SessionId::parse(id)
            .map(|s| s.transaction_id())
            .unwrap_or_default();
        let url = format!("http://{}/admin/requests/{tx}", mock.addr);
        let v: serde_json::Value = client.http().get(url).send().await?.json().await?;
        let at = v["created_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .ok_or_else(|| anyhow::anyhow!("no prompt for {tx}: {v}"))?;
        samples.push(
            (at.with_timezone(&Utc) - *sent)
                .to_std()
                .unwrap_or_default(),
        );
    }
    Spread::of(samples).ok_or_else(|| anyhow::anyhow!("no prompt samples"))
}
