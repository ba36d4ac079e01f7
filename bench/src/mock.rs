//! The mock carriers as the benchmark runs them: in this process, on their own Tokio runtime
//! (so their cost is not hidden in the load generator's), behind a layer that counts every
//! provider call in 100 ms buckets — the request rate "seen by the mock provider" that SPEC §9
//! bounds. A fresh mock is started per phase so one phase's pending prompts never crowd the
//! next; keys persist in the bench state directory, so only the first run pays for RSA keygen.

use axum::serve::ListenerExt as _;
use mock_carriers::no_delay;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use mock_carriers::pki::Provider;
use mock_carriers::{MockCarriers, MockConfig, SmartCaAccount};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::gateway::{provider_id, sp_account, Gateway};

/// Width of one counting bucket.
pub const BUCKET: Duration = Duration::from_millis(100);

/// Provider calls the mock served, per kind and per 100 ms.
pub struct Counter {
    inner: Mutex<Buckets>,
}

struct Buckets {
    since: Instant,
    calls: Vec<u64>,
    sign: u64,
    status: u64,
    certificates: u64,
}

impl Counter {
    fn new() -> Self {
        Self {
            inner: Mutex::new(Buckets {
                since: Instant::now(),
                calls: Vec::new(),
                sign: 0,
                status: 0,
                certificates: 0,
            }),
        }
    }

    fn record(&self, path: &str) {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if path.ends_with("/status") {
            b.status += 1;
        } else if path.ends_with("/signatures/sign") {
            b.sign += 1;
        } else if path.ends_with("/get_certificate") {
            b.certificates += 1;
        } else {
            return;
        }
        let i = (b.since.elapsed().as_millis() / BUCKET.as_millis()) as usize;
        if b.calls.len() <= i {
            b.calls.resize(i + 1, 0);
        }
        b.calls[i] += 1;
    }

    /// Starts a new measurement window.
    pub fn reset(&self) {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *b = Buckets {
            since: Instant::now(),
            calls: Vec::new(),
            sign: 0,
            status: 0,
            certificates: 0,
        };
    }

    /// Calls per bucket since the last reset, and the (sign, status, get_certificate) totals.
    pub fn snapshot(&self) -> (Vec<u64>, [u64; 3]) {
        let b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = (b.since.elapsed().as_millis() / BUCKET.as_millis()) as usize;
        let mut calls = b.calls.clone();
        // Buckets without a call still count as time.
        if calls.len() < elapsed {
            calls.resize(elapsed, 0);
        }
        (calls, [b.sign, b.status, b.certificates])
    }
}

async fn count(State(counter): State<Arc<Counter>>, req: Request, next: Next) -> Response {
    counter.record(req.uri().path());
    next.run(req).await
}

pub struct Mock {
    pub addr: SocketAddr,
    pub carriers: MockCarriers,
    pub counter: Arc<Counter>,
    pub root_path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
}

impl Mock {
    /// Starts a fresh mock on `runtime`, keys from `state_dir`.
    pub async fn start(
        runtime: &Handle,
        state_dir: &Path,
        approve_delay_ms: u64,
    ) -> anyhow::Result<Self> {
        let config = MockConfig {
            state_dir: state_dir.join("mock-carriers"),
            approve_delay_ms,
            ..MockConfig::default()
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let counter = Arc::new(Counter::new());
        let layer_counter = counter.clone();
        runtime.spawn(async move {
            let started = async {
                let carriers = MockCarriers::new(config)?;
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?;
                carriers.set_public_url(format!("http://{addr}"));
                anyhow::Ok((carriers, listener, addr))
            }
            .await;
            let (carriers, listener, addr) = match started {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let app = carriers
                .router()
                .layer(axum::middleware::from_fn_with_state(layer_counter, count));
            let _ = ready_tx.send(Ok((carriers, addr)));
            let serve = axum::serve(listener.tap_io(no_delay), app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "mock carriers stopped");
            }
        });
        let (carriers, addr) = ready_rx.await.context("mock runtime gone")??;
        let root_path = state_dir.join("mock-root.der");
        std::fs::write(&root_path, carriers.root_der())
            .with_context(|| format!("writing {}", root_path.display()))?;
        Ok(Self {
            addr,
            carriers,
            counter,
            root_path,
            stop: Some(stop),
        })
    }

    pub fn smartca_url(&self) -> String {
        format!("http://{}/sca/sp769", self.addr)
    }

    /// Registers the SP account of each of the gateway's `instances` SmartCA providers
    /// ([`sp_account`]), each pushing its webhooks to that instance's own callback URL on
    /// `gateway`.
    pub fn smartca_accounts(&self, instances: usize, gateway: &Gateway) -> anyhow::Result<()> {
        for i in 0..instances.max(1) {
            let (sp_id, sp_password) = sp_account(i);
            let webhook = Some(gateway.url(&format!("/callbacks/{}", provider_id(i))));
            self.carriers
                .add_smartca_account(SmartCaAccount::new(sp_id, sp_password, webhook))
                .with_context(|| format!("SmartCA account of instance {i}"))?;
        }
        Ok(())
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Provisions the signers' keys and certificates once (RSA-2048 keygen is ~0.1 s each), on
/// blocking threads, so no phase measures keygen.
pub async fn provision(state_dir: &Path, signers: &[String]) -> anyhow::Result<()> {
    let carriers = MockCarriers::new(MockConfig {
        state_dir: state_dir.join("mock-carriers"),
        ..MockConfig::default()
    })?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunks: Vec<Vec<String>> = signers
        .chunks(signers.len().div_ceil(threads).max(1))
        .map(<[String]>::to_vec)
        .collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let carriers = carriers.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            for s in &chunk {
                carriers
                    .pki()
                    .signer(Provider::SmartCa, s)
                    .with_context(|| format!("provisioning {s}"))?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}
