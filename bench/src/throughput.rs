//! End-to-end throughput: sessions on instantly approving signers, created by
//! `--concurrency` portal connections with at most `--window` unfinished at once, each counted
//! when its terminal event arrives on the WebSocket. The path is the real one: create →
//! engine → SmartCA get_certificate + sign → the mock's webhook → status → verification →
//! commit → WebSocket. Spread over 1, 2 or 4 SmartCA instances (all at the same mock, each
//! with its own SP account whose webhook names that instance's callback URL, so every instance
//! is woken by push) to show whether a provider's own limits or the gateway bound the rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::client::{follow_events, run_jobs, Client, Tracker};
use crate::gateway::{provider_id, Gateway, Spec};
use crate::mock::Mock;
use crate::stats::Spread;
use crate::Ctx;

pub struct Throughput {
    pub rate: f64,
    /// Every finished session ended `signed` (verification passed).
    pub all_signed: bool,
    pub gateway_cpu_per_session: Duration,
    pub mock_cpu_per_session: Duration,
    pub load_cpu_per_session: Duration,
    /// The PostgreSQL server's processes (zero on SQLite).
    pub database_cpu_per_session: Duration,
    pub create_to_signed: Option<Spread>,
    pub peak_rss: u64,
}

pub async fn run(
    ctx: &Ctx,
    db_url: String,
    instances: usize,
    name: &str,
) -> anyhow::Result<Throughput> {
    let on_postgres = db_url.starts_with("postgres");
    let database_cpu = || {
        if on_postgres {
            crate::gateway::processes_cpu("postgres")
        } else {
            Duration::ZERO
        }
    };
    let mock = Mock::start(&ctx.mock_rt, &ctx.state, 0).await?;
    let spec = Spec {
        db_url,
        mock: mock.addr,
        root: mock.root_path.clone(),
        instances,
        // Not the bound here: the provider's limits are the held phase's subject.
        provider_rate: 1_000_000,
        max_in_flight: 256,
        poll_first_ms: 5_000,
        poll_interval_ms: 3_000,
    };
    let gw = Gateway::start(&spec, &ctx.dir, name)?;
    mock.smartca_accounts(instances, &gw)?;
    let tracker = Arc::new(Tracker::default());
    follow_events(gw.addr, tracker.clone()).await?;
    let client = Client::new(gw.url(""))?;

    // Warm-up: each signer once, so the mock's certificate re-issue and the verifier's first
    // look at each certificate are not in the figure.
    let warm = ctx.approvers.len();
    let approvers = Arc::new(ctx.approvers.clone());
    create_all(&client, &tracker, &approvers, 0, warm, instances, ctx).await?;
    tracker
        .wait_for("the warm-up sessions", Duration::from_secs(120), |t| {
            t.finished() >= warm as u64
        })
        .await?;

    let n = ctx.opts.sessions;
    let cpu0 = (
        gw.cpu()?,
        crate::gateway::threads_cpu("mock"),
        crate::gateway::threads_cpu("load"),
        database_cpu(),
    );
    let started = Instant::now();
    create_all(&client, &tracker, &approvers, warm, n, instances, ctx).await?;
    let total = (warm + n) as u64;
    let timeout = Duration::from_secs(120 + n as u64 / 100);
    tracker
        .wait_for("every session to finish", timeout, |t| {
            t.finished() >= total
        })
        .await?;
    let (_, last) = tracker.done_span().unwrap_or((started, Instant::now()));
    let elapsed = last.saturating_duration_since(started).as_secs_f64();
    let per = |d: Duration| d / n.max(1) as u32;
    let gateway_cpu = gw.cpu()?.saturating_sub(cpu0.0);
    let mock_cpu = crate::gateway::threads_cpu("mock").saturating_sub(cpu0.1);
    let load_cpu = crate::gateway::threads_cpu("load").saturating_sub(cpu0.2);
    let database_cpu = database_cpu().saturating_sub(cpu0.3);
    let peak_rss = gw.memory()?.peak;
    gw.stop().await;
    Ok(Throughput {
        rate: n as f64 / elapsed.max(1e-9),
        all_signed: tracker.signed() == tracker.finished(),
        gateway_cpu_per_session: per(gateway_cpu),
        mock_cpu_per_session: per(mock_cpu),
        load_cpu_per_session: per(load_cpu),
        database_cpu_per_session: per(database_cpu),
        create_to_signed: Spread::of(tracker.mark_to_done()),
        peak_rss,
    })
}

/// Creates sessions `from..from + n`, round-robin over the provider instances and signers,
/// holding a window permit per unfinished session.
async fn create_all(
    client: &Client,
    tracker: &Arc<Tracker>,
    signers: &Arc<Vec<String>>,
    from: usize,
    n: usize,
    instances: usize,
    ctx: &Ctx,
) -> anyhow::Result<()> {
    let window = Arc::new(Semaphore::new(ctx.opts.window));
    let (client, tracker, signers) = (client.clone(), tracker.clone(), signers.clone());
    run_jobs(n, ctx.opts.concurrency, move |i| {
        let (client, tracker, signers, window) = (
            client.clone(),
            tracker.clone(),
            signers.clone(),
            window.clone(),
        );
        async move {
            let i = from + i;
            let permit = window.acquire_owned().await?;
            let sent = Instant::now();
            let provider = provider_id(i % instances.max(1));
            let id = client
                .create(&provider, &signers[i % signers.len()], i as u64)
                .await?;
            tracker.mark(&id, sent);
            tracker.hold(&id, permit);
            Ok(())
        }
    })
    .await
}
