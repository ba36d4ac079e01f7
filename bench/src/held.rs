//! Held sessions: N sessions pending at once on signers whose phone never answers (`…208`),
//! with the provider limited to `--provider-rate` requests per second. Measures the gateway's
//! resident memory (peak and per pending session, above its idle baseline) and the busiest
//! one-second window of provider calls the mock saw, which must never exceed the limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{run_jobs, Client};
use crate::gateway::{provider_id, Gateway, Spec};
use crate::mock::{Mock, BUCKET};
use crate::report::{mib, thousands, Row};
use crate::stats::busiest_window;
use crate::Ctx;

/// SPEC §9: 100,000 pending under 300 MB.
const RSS_BUDGET: u64 = 300 * 1000 * 1000;
const BUDGET_AT: usize = 100_000;

pub struct Held {
    pub n: usize,
    pub baseline: u64,
    pub peak: u64,
    pub per_session: f64,
    pub busiest: u64,
    pub mean_rate: f64,
    pub create_rate: f64,
    pub prompts: u64,
    pub cpu: Duration,
    pub secs: f64,
}

pub async fn run(ctx: &Ctx, n: usize) -> anyhow::Result<Held> {
    let mock = Mock::start(&ctx.mock_rt, &ctx.state, 500).await?;
    let spec = Spec {
        db_url: format!(
            "sqlite://{}",
            ctx.dir.join(format!("held-{n}.db")).display()
        ),
        mock: mock.addr,
        root: mock.root_path.clone(),
        instances: 1,
        provider_rate: ctx.opts.provider_rate,
        max_in_flight: 64,
        // The SmartCA defaults: a first check after 5 s, then every 3 s.
        poll_first_ms: 5_000,
        poll_interval_ms: 3_000,
    };
    // No webhooks (the mock's default account has no URL): these signers never answer, so
    // only the provider-limited polling runs.
    let gw = Gateway::start(&spec, &ctx.dir, &format!("held-{n}"))?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = gw.memory()?.rss;
    let cpu0 = gw.cpu()?;
    mock.counter.reset();
    let started = Instant::now();
    let client = Client::new(gw.url(""))?;
    let holders = Arc::new(ctx.holders.clone());
    run_jobs(n, ctx.opts.concurrency, move |i| {
        let (client, holders) = (client.clone(), holders.clone());
        async move {
            let signer = &holders[i % holders.len()];
            client
                .create(&provider_id(0), signer, i as u64)
                .await
                .map(drop)
        }
    })
    .await?;
    let create_rate = n as f64 / started.elapsed().as_secs_f64();
    // Keep them pending while the engine polls them at the provider's limit.
    let hold_until = Instant::now() + ctx.opts.hold_secs();
    let mut peak = gw.memory()?.peak;
    while Instant::now() < hold_until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(gw.memory()?.peak);
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = gw.cpu()?.saturating_sub(cpu0);
    let (buckets, [sign, status, certs]) = mock.counter.snapshot();
    let per_second = (Duration::from_secs(1).as_millis() / BUCKET.as_millis()) as usize;
    gw.stop().await;
    Ok(Held {
        n,
        baseline,
        peak,
        per_session: peak.saturating_sub(baseline) as f64 / n as f64,
        busiest: busiest_window(&buckets, per_second),
        mean_rate: (sign + status + certs) as f64 / (buckets.len().max(1) as f64 / 10.0),
        create_rate,
        prompts: sign,
        cpu,
        secs,
    })
}

impl Held {
    pub fn rows(&self, limit: u32) -> Vec<Row> {
        let name = format!("{} pending: gateway peak RSS", thousands(self.n as f64));
        let mut memory = Row::info("held", name, mib(self.peak))
            .value(self.peak as f64)
            .detail(format!(
                "{:.0} B/session above idle {}; created at {}/s; {} prompted; gateway CPU {:.1} s in {:.0} s",
                self.per_session,
                mib(self.baseline),
                thousands(self.create_rate),
                thousands(self.prompts as f64),
                self.cpu.as_secs_f64(),
                self.secs,
            ));
        if self.n >= BUDGET_AT {
            memory = memory.budget("< 300 MB at 100,000", self.peak < RSS_BUDGET);
        }
        let rate = Row::info(
            "held",
            format!(
                "{} pending: provider calls, busiest 1 s",
                thousands(self.n as f64)
            ),
            format!("{}/s", thousands(self.busiest as f64)),
        )
        .value(self.busiest as f64)
        .detail(format!("mean {:.0}/s over the run", self.mean_rate))
        .budget(
            format!("≤ {}/s (rate_per_s)", thousands(f64::from(limit))),
            self.busiest <= u64::from(limit),
        );
        vec![memory, rate]
    }
}
