//! Overload: a backlog of N sessions on instantly approving signers, far beyond what the
//! SmartCA provider's `rate_per_s` lets kyso send (webhooks on, 64 in flight, the shipped
//! poll timings). Watched for `--hold-secs` once they are all created: provider calls per
//! second at the mock against the limit, sessions signed per second against what the limit
//! allows (three calls each: certificate, sign, status), and the gateway's CPU. SPEC §9: at
//! least 95 % of the allowed rate, and at most 0.1 core beyond what those sessions cost at
//! full speed (the throughput section's CPU per session, when it ran).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{run_jobs, Client};
use crate::gateway::{provider_id, Gateway, Spec};
use crate::mock::{Mock, BUCKET};
use crate::report::{thousands, Row};
use crate::stats::busiest_window;
use crate::Ctx;

/// The provider's limit in this section: the shipped default.
pub const RATE: u32 = 200;
/// Calls one session takes: get_certificate, sign, status (after the webhook).
const CALLS_PER_SESSION: f64 = 3.0;

pub struct Overload {
    pub store: &'static str,
    pub n: usize,
    pub create_rate: f64,
    pub busiest: u64,
    pub calls_rate: f64,
    pub signed_rate: f64,
    /// Provider calls per second by kind: sign (starts), status, get_certificate.
    pub per_kind: [f64; 3],
    pub cores: f64,
    pub secs: f64,
}

pub async fn run(
    ctx: &Ctx,
    db_url: String,
    store: &'static str,
    n: usize,
) -> anyhow::Result<Overload> {
    let mock = Mock::start(&ctx.mock_rt, &ctx.state, 0).await?;
    let spec = Spec {
        db_url,
        mock: mock.addr,
        root: mock.root_path.clone(),
        instances: 1,
        provider_rate: RATE,
        max_in_flight: 64,
        poll_first_ms: 5_000,
        poll_interval_ms: 3_000,
    };
    let gw = Gateway::start(&spec, &ctx.dir, &format!("overload-{store}-{n}"))?;
    mock.smartca_accounts(1, &gw)?;
    let client = Client::new(gw.url(""))?;
    let metrics = (client.http().clone(), gw.url("/metrics"));
    let approvers = Arc::new(ctx.approvers.clone());
    let started = Instant::now();
    run_jobs(n, ctx.opts.concurrency, move |i| {
        let (client, approvers) = (client.clone(), approvers.clone());
        async move {
            let signer = &approvers[i % approvers.len()];
            client
                .create(&provider_id(0), signer, i as u64)
                .await
                .map(drop)
        }
    })
    .await?;
    let create_rate = n as f64 / started.elapsed().as_secs_f64();
    // The backlog stands; watch the provider work it off at its rate.
    let cpu0 = gw.cpu()?;
    let signed0 = signed(&metrics).await?;
    mock.counter.reset();
    let watched = Instant::now();
    tokio::time::sleep(ctx.opts.hold_secs()).await;
    let secs = watched.elapsed().as_secs_f64();
    let cpu = gw.cpu()?.saturating_sub(cpu0);
    let signed = signed(&metrics).await? - signed0;
    // The gateway's own counters at the end (claims, pushes, passes), kept beside its log.
    if let Ok(text) = metrics.0.get(&metrics.1).send().await?.text().await {
        let _ = std::fs::write(ctx.dir.join(format!("overload-{store}-{n}.metrics")), text);
    }
    let (buckets, [sign, status, certs]) = mock.counter.snapshot();
    gw.stop().await;
    let per_second = (Duration::from_secs(1).as_millis() / BUCKET.as_millis()) as usize;
    Ok(Overload {
        store,
        n,
        create_rate,
        busiest: busiest_window(&buckets, per_second),
        calls_rate: (sign + status + certs) as f64 / secs,
        signed_rate: signed / secs,
        per_kind: [sign, status, certs].map(|n| n as f64 / secs),
        cores: cpu.as_secs_f64() / secs,
        secs,
    })
}

/// Sessions the gateway has finished `signed` (its `/metrics`).
async fn signed((http, url): &(reqwest::Client, String)) -> anyhow::Result<f64> {
    let text = http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .find(|l| l.starts_with("kyso_sessions_finished_total{status=\"signed\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0))
}

impl Overload {
    /// `full_speed`: the gateway's CPU per session at full speed (throughput section).
    pub fn rows(&self, full_speed: Option<Duration>) -> Vec<Row> {
        let name = |what: &str| format!("{}, {} due: {what}", self.store, thousands(self.n as f64));
        let allowed = f64::from(RATE) / CALLS_PER_SESSION;
        let share = self.signed_rate / allowed;
        let rate = Row::info(
            "overload",
            name("sessions signed"),
            format!("{:.1}/s", self.signed_rate),
        )
        .value(self.signed_rate)
        .detail(format!(
            "{:.0} % of the {allowed:.1}/s the limit allows; calls {:.0}/s (sign {:.0}, status {:.0}, certificate {:.0}), busiest 1 s {}, limit {RATE}/s; created at {}/s; watched {:.0} s",
            share * 100.0,
            self.calls_rate,
            self.per_kind[0],
            self.per_kind[1],
            self.per_kind[2],
            self.busiest,
            thousands(self.create_rate),
            self.secs,
        ))
        .budget("≥ 95 % of the allowed rate, no second over the limit", share >= 0.95 && self.busiest <= u64::from(RATE));
        let mut cpu = Row::info(
            "overload",
            name("gateway CPU"),
            format!("{:.3} cores", self.cores),
        )
        .value(self.cores);
        if let Some(per) = full_speed {
            let needed = self.signed_rate * per.as_secs_f64();
            let extra = self.cores - needed;
            cpu = cpu
                .detail(format!(
                    "{:.3} cores beyond {:.3} for those sessions at full speed ({:.2} ms each)",
                    extra,
                    needed,
                    per.as_secs_f64() * 1e3
                ))
                .budget("≤ 0.1 core beyond full-speed cost", extra <= 0.1);
        } else {
            cpu = cpu.detail("full-speed cost unknown: run the throughput section too");
        }
        vec![rate, cpu]
    }
}

/// The rows of one run, or its ERROR row.
pub fn rows(
    r: anyhow::Result<Overload>,
    store: &str,
    n: usize,
    full_speed: Option<Duration>,
) -> Vec<Row> {
    match r {
        Ok(o) => o.rows(full_speed),
        Err(e) => vec![Row::failed(
            "overload",
            format!("{store}, {} due", thousands(n as f64)),
            &e,
        )],
    }
}
