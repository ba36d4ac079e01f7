//! `kyso-bench`: measures the gateway against SPEC §9 on this machine and prints one table.
//!
//! The gateway runs as a child process (this binary re-executed as `kyso-bench gateway`), so
//! its memory and CPU are its own; the mock carriers run in this process on their own runtime
//! (threads `mock…`), and the load generator on another (threads `load…`). Each phase starts a
//! fresh gateway and mock: [`verification`] (signatures per second, first time and cached),
//! [`limit`] (the floor: a bare axum route and the mock alone), [`throughput`] (end to end on
//! SQLite with 1/2/4 SmartCA instances, and on PostgreSQL), [`latency`] (callback → WebSocket
//! and create → phone prompt at a steady rate), [`hostile`] (crafted certificate chains while
//! another tenant is timed), and [`held`] (N sessions pending at once under a provider rate
//! limit). `--quick` shrinks every phase; `--json` prints the rows as JSON.

mod client;
mod gateway;
mod held;
mod hostile;
mod latency;
mod limit;
mod mock;
mod overload;
mod phases;
mod report;
mod stats;
mod throughput;
mod verification;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "kyso-bench",
    about = "Measures kyso against the budgets of SPEC §9"
)]
pub struct Opts {
    #[command(subcommand)]
    command: Option<Child>,
    /// A short run (about a minute): smaller N everywhere.
    #[arg(long)]
    quick: bool,
    /// Print the rows as JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Only these sections: held, overload, throughput, latency, verification, limit, hostile.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Backlog sizes for the overload section (sessions due beyond the provider's rate).
    #[arg(long, value_delimiter = ',')]
    overload: Vec<usize>,
    /// Pending-session counts for the held phase.
    #[arg(long, value_delimiter = ',')]
    held: Vec<usize>,
    /// How long the held sessions are kept pending after the last create, seconds.
    #[arg(long)]
    hold_secs: Option<u64>,
    /// The SmartCA instance's rate_per_s in the held phase.
    #[arg(long, default_value_t = 1000)]
    provider_rate: u32,
    /// Concurrent portal connections creating sessions (and loops in the floor phase).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Throughput: unfinished sessions allowed at once.
    #[arg(long, default_value_t = 4096)]
    window: usize,
    /// Throughput: sessions per run.
    #[arg(long)]
    sessions: Option<usize>,
    /// Throughput on SQLite with this many SmartCA instances (sessions spread across them).
    #[arg(long, value_delimiter = ',')]
    instances: Vec<usize>,
    /// Latency: events per second (creates, then callbacks).
    #[arg(long, default_value_t = 1000.0)]
    latency_rate: f64,
    /// Latency: sessions timed.
    #[arg(long)]
    latency_events: Option<usize>,
    /// Floor phase and verification: seconds per measurement.
    #[arg(long)]
    limit_secs: Option<u64>,
    /// PostgreSQL server (a fresh database is created on it and dropped after).
    #[arg(
        long,
        env = "KYSO_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres: String,
    /// Skip PostgreSQL.
    #[arg(long)]
    no_postgres: bool,
    /// Distinct signers of each kind (keys persist in the state directory).
    #[arg(long)]
    signers: Option<usize>,
    /// Where configs, logs, databases and the mock's keys go.
    #[arg(long, default_value = "target/kyso-bench")]
    dir: PathBuf,
}

#[derive(Subcommand, Debug, Clone)]
enum Child {
    /// (internal) Run the gateway under test with this config until stdin closes.
    #[command(hide = true)]
    Gateway {
        #[arg(long)]
        config: PathBuf,
    },
}

impl Opts {
    fn pick<T: Copy>(&self, given: Option<T>, full: T, quick: T) -> T {
        given.unwrap_or(if self.quick { quick } else { full })
    }

    pub fn held_sizes(&self) -> Vec<usize> {
        match (self.held.is_empty(), self.quick) {
            (false, _) => self.held.clone(),
            (true, false) => vec![10_000, 50_000, 100_000],
            (true, true) => vec![5_000, 20_000],
        }
    }

    pub fn overload_sizes(&self) -> Vec<usize> {
        match (self.overload.is_empty(), self.quick) {
            (false, _) => self.overload.clone(),
            (true, false) => vec![10_000, 100_000],
            (true, true) => vec![3_000],
        }
    }

    pub fn instance_counts(&self) -> Vec<usize> {
        match (self.instances.is_empty(), self.quick) {
            (false, _) => self.instances.clone(),
            (true, false) => vec![1, 2, 4],
            (true, true) => vec![1, 2],
        }
    }

    pub fn hold_secs(&self) -> Duration {
        Duration::from_secs(self.pick(self.hold_secs, 15, 3))
    }

    pub fn limit_secs(&self) -> Duration {
        Duration::from_secs(self.pick(self.limit_secs, 5, 2))
    }

    pub fn sessions(&self) -> usize {
        self.pick(self.sessions, 20_000, 3_000)
    }

    pub fn latency_events(&self) -> usize {
        self.pick(self.latency_events, 10_000, 2_000)
    }

    pub fn signers(&self) -> usize {
        self.pick(self.signers, 256, 64).max(1)
    }

    pub fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

/// What every phase needs.
pub struct Ctx {
    pub opts: Resolved,
    pub mock_rt: tokio::runtime::Handle,
    /// This run's configs, logs and SQLite files.
    pub dir: PathBuf,
    /// Kept across runs: the mock's keys.
    pub state: PathBuf,
    /// Signers that approve at once, and signers that never answer (`…208`).
    pub approvers: Vec<String>,
    pub holders: Vec<String>,
}

/// [`Opts`] with `--quick` and the defaults applied.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub concurrency: usize,
    pub window: usize,
    pub sessions: usize,
    pub provider_rate: u32,
    pub latency_rate: f64,
    pub latency_events: usize,
    hold: Duration,
    limit: Duration,
}

impl Resolved {
    pub fn hold_secs(&self) -> Duration {
        self.hold
    }
    pub fn limit_secs(&self) -> Duration {
        self.limit
    }
}

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    if let Some(Child::Gateway { config }) = &opts.command {
        return gateway::serve_child(config);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KYSO_BENCH_LOG")
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    kyso::telemetry::install_crypto_provider();
    let mock_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mock")
        .enable_all()
        .build()?;
    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load")
        .enable_all()
        .build()?;
    let report = load_rt.block_on(phases::run_all(opts, mock_rt.handle().clone()))?;
    mock_rt.shutdown_timeout(Duration::from_secs(1));
    if report.any_error() {
        anyhow::bail!("some measurements failed (see the ERROR rows)");
    }
    Ok(())
}
