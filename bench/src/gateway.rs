//! The gateway under test, as a child process: this binary re-executed as `kyso-bench gateway
//! --config FILE`, which runs exactly what `kyso serve` runs (`Application::build` + `run`).
//! A separate process is what makes its peak RSS and CPU time readable from
//! `/proc/PID/{status,stat}` without the mock's or the load generator's memory mixed in. It
//! stops gracefully when its stdin closes (no signals needed), and is killed if it lingers.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use kyso::config::{hash_api_key, Config};
use kyso::dev::{mock_providers, set, MockSite};
use kyso::startup::Application;

pub const API_KEY: &str = "kyso-bench-key";
pub const TENANT: &str = "bench";
/// A second tenant, whose requests the hostile phase times while the first one attacks.
pub const BYSTANDER_KEY: &str = "kyso-bench-bystander-key";
/// The SmartCA provider ids: `vnpt-smartca`, then `vnpt-smartca-2`, `-3`, …
pub fn provider_id(i: usize) -> String {
    if i == 0 {
        "vnpt-smartca".into()
    } else {
        format!("vnpt-smartca-{}", i + 1)
    }
}

/// Instance `i`'s SmartCA SP account (`sp_id`, `sp_password`): the mock's default account for
/// the first, its own for each other, numbered like [`provider_id`]. One account per instance
/// is what gives each its own webhook URL at the mock, so every instance is woken by push.
pub fn sp_account(i: usize) -> (String, String) {
    if i == 0 {
        let mock = mock_carriers::MockConfig::default();
        (mock.smartca_sp_id, mock.smartca_sp_password)
    } else {
        (
            format!("kyso-dev-{}", i + 1),
            format!("kyso-dev-{}-secret", i + 1),
        )
    }
}

/// What one gateway run is configured with.
#[derive(Debug, Clone)]
pub struct Spec {
    pub db_url: String,
    /// The mock carriers.
    pub mock: SocketAddr,
    pub root: PathBuf,
    /// SmartCA instances, all pointing at the same mock, each with its own SP account there
    /// ([`sp_account`]).
    pub instances: usize,
    pub provider_rate: u32,
    pub max_in_flight: usize,
    pub poll_first_ms: u64,
    pub poll_interval_ms: u64,
}

impl Spec {
    fn toml(&self) -> String {
        let s = format!(
            r#"
[server]
listen = "127.0.0.1:0"
[database]
url = "{db}"
[engine]
max_timeout_s = 3600
[[tenants]]
id = "{TENANT}"
api_key_sha256 = "{key}"
rate_per_s = 1000000
allow_concurrent_per_signer = true
# The bench reuses a few hundred signers (each needs an RSA key at the mock).
signer_requests_per_minute = 100000
[[tenants]]
id = "bystander"
api_key_sha256 = "{bystander}"
rate_per_s = 1000000
allow_concurrent_per_signer = true
signer_requests_per_minute = 100000
# The USB-token path trusts the mock root; the hostile phase sends it chains that do not.
[usb]
trust_anchors = ["{root}"]
revocation = "off"
"#,
            db = self.db_url,
            key = hash_api_key(API_KEY),
            bystander = hash_api_key(BYSTANDER_KEY),
            root = self.root.display(),
        );
        s + "\n" + &self.providers()
    }

    /// The dev stack's SmartCA provider ([`kyso::dev::mock_providers`]) once per instance, each
    /// with its own SP account and this run's limits and polling pace.
    fn providers(&self) -> String {
        let site = MockSite {
            addr: &self.mock.to_string(),
            root: &self.root.display().to_string(),
            gateway: "http://127.0.0.1:9",
        };
        let smartca = mock_providers(&site)
            .remove("vnpt-smartca")
            .expect("the mock providers have vnpt-smartca");
        let mut providers = toml::Table::new();
        for i in 0..self.instances.max(1) {
            let id = provider_id(i);
            let (sp_id, sp_password) = sp_account(i);
            providers.insert(id.clone(), smartca.clone());
            let mut at =
                |key: &str, value: toml::Value| set(&mut providers, &format!("{id}.{key}"), value);
            at("default_timeout_s", 3600.into());
            at("max_in_flight", (self.max_in_flight as i64).into());
            at("rate_per_s", i64::from(self.provider_rate).into());
            at("smartca.sp_id", sp_id.into());
            at("smartca.sp_password", sp_password.into());
            at("smartca.poll_first_ms", (self.poll_first_ms as i64).into());
            at(
                "smartca.poll_interval_ms",
                (self.poll_interval_ms as i64).into(),
            );
        }
        let mut root = toml::Table::new();
        root.insert("providers".into(), toml::Value::Table(providers));
        toml::to_string(&root).expect("the providers render as TOML")
    }
}

pub struct Gateway {
    pub addr: SocketAddr,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Gateway {
    /// Writes the config into `dir` and starts the child; returns once it listens.
    pub fn start(spec: &Spec, dir: &Path, name: &str) -> anyhow::Result<Self> {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, spec.toml())?;
        let log = dir.join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log)?;
        let mut log_copy = log_file.try_clone()?;
        let mut child = wrapped(std::env::current_exe()?)
            .arg("gateway")
            .arg("--config")
            .arg(&config)
            .env(
                "RUST_LOG",
                std::env::var("KYSO_BENCH_GATEWAY_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .context("starting the gateway process")?;
        let stdout = child.stdout.take().context("gateway stdout")?;
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line)?;
        // Logs go to stdout too: keep the pipe drained into the log file.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut log_copy));
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            anyhow::bail!("the gateway did not start (log {}):\n{tail}", log.display());
        };
        let stdin = child.stdin.take();
        Ok(Self { addr, child, stdin })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Current and peak resident memory, bytes.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        memory(&format!("/proc/{}/status", self.pid()))
    }

    /// CPU time (user + system) the gateway has used so far.
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        cpu(&format!("/proc/{}/stat", self.pid()))
    }

    /// Closes stdin (graceful shutdown) and waits up to 10 s (120 s when wrapped, so a
    /// profiler can write its output) before killing.
    pub async fn stop(mut self) {
        drop(self.stdin.take());
        let tries = if wrapper().is_some() { 1_200 } else { 100 };
        for _ in 0..tries {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `KYSO_BENCH_GATEWAY_WRAP`: a command line the gateway runs under, e.g.
/// `valgrind --tool=callgrind --callgrind-out-file=target/cg.%p` — instruction counts, which
/// the host's other load does not move, where the CPU-time figures vary by ±15 %.
pub(crate) fn wrapper() -> Option<Vec<String>> {
    let wrap = std::env::var("KYSO_BENCH_GATEWAY_WRAP").ok()?;
    let words: Vec<String> = wrap.split_whitespace().map(str::to_owned).collect();
    (!words.is_empty()).then_some(words)
}

fn wrapped(exe: std::path::PathBuf) -> Command {
    match wrapper() {
        Some(words) => {
            let mut c = Command::new(&words[0]);
            c.args(&words[1..]).arg(exe);
            c
        }
        None => Command::new(exe),
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss: u64,
    pub peak: u64,
}

pub fn memory(status_path: &str) -> anyhow::Result<Memory> {
    let text = std::fs::read_to_string(status_path)?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .with_context(|| format!("{name} in {status_path}"))
    };
    Ok(Memory {
        rss: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}

/// utime + stime of a `/proc/…/stat` file. Clock ticks are 100 per second on Linux builds
/// that this machine runs (`getconf CLK_TCK`).
pub fn cpu(stat_path: &str) -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string(stat_path)?;
    // The command name may hold spaces; fields after its closing parenthesis are fixed.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    Ok(Duration::from_millis((ticks(11) + ticks(12)) * 10))
}

/// CPU time of this process's threads whose name starts with `prefix` (the mock's runtime
/// threads are `mock…`, the load generator's `load…`).
pub fn threads_cpu(prefix: &str) -> Duration {
    summed_cpu("/proc/self/task", |comm| comm.starts_with(prefix))
}

/// CPU time of every process named `name` on the machine (e.g. `postgres`: the server and its
/// backends, which run on the same two cores). Processes that exited are not counted.
pub fn processes_cpu(name: &str) -> Duration {
    summed_cpu("/proc", |comm| comm.trim() == name)
}

/// The CPU time of the tasks under `dir` (`/proc` or a task directory) whose `comm` passes
/// `keep`; entries that are not tasks have no `comm` and are skipped.
fn summed_cpu(dir: &str, keep: impl Fn(&str) -> bool) -> Duration {
    let Ok(tasks) = std::fs::read_dir(dir) else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| keep(&c)))
        .filter_map(|t| cpu(&t.path().join("stat").to_string_lossy()).ok())
        .sum()
}

/// `kyso-bench gateway --config FILE`: the child side.
pub fn serve_child(config: &Path) -> anyhow::Result<()> {
    kyso::telemetry::init_tracing();
    kyso::telemetry::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = Config::load(Some(config))?;
        let app = Application::build(config).await?;
        println!("listening {}", app.local_addr());
        let stdin_closed = async {
            let mut buf = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut buf).await;
        };
        app.run(stdin_closed).await
    })
}
