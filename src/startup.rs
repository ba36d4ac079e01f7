//! Builds the application from its configuration and runs it: the HTTP server and the
//! scheduler, until a shutdown signal. Tests use the same code on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::api::{self, AppState, Tenants, UsbPath};
use crate::config::{Config, ProviderKind};
use crate::domain::SignerRule;
use crate::engine::breaker::Breaker;
use crate::engine::registry::{ProviderEntry, Registry};
use crate::engine::{Engine, EngineConfig};
use crate::events::sockets::Sockets;
use crate::events::tickets::Tickets;
use crate::events::Hub;
use crate::limiter::TokenBucket;
use crate::providers::mssp::Mssp;
use crate::providers::smartca::SmartCa;
use crate::providers::Provider;
use crate::store::StoreOptions;
use crate::verify::{OnlineOptions, TrustAnchors, Verifier};
use crate::{server, store, telemetry};

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("binding {}", config.server.listen))?;
        Self::with_listener(config, listener).await
    }

    pub async fn with_listener(config: Config, listener: TcpListener) -> anyhow::Result<Self> {
        telemetry::install_crypto_provider();
        let options = StoreOptions {
            instance: format!("kyso-{}", ulid::Ulid::new()),
            lease: Duration::from_secs(config.database.lease_s.max(1)),
            max_connections: config.database.max_connections.max(2),
            wal_limit: config.database.wal_limit_mb.max(1) << 20,
            migrations: if config.database.migrate {
                store::Migrations::Apply
            } else {
                store::Migrations::FreshOnly
            },
        };
        let store = store::open(&config.database.url, &options)
            .await
            .with_context(|| format!("opening the database {}", redact(&config.database.url)))?;
        // One verifier for the process: its path and revocation caches serve every provider
        // and the USB-token path.
        let online = OnlineOptions {
            timeout: Duration::from_millis(config.revocation.timeout_ms.max(1)),
            rewrites: (config.revocation.rewrites.iter())
                .map(|r| (r.from.clone(), r.to.clone()))
                .collect(),
        };
        let verifier = Arc::new(Verifier::online(&online).context("building the OCSP/CRL client")?);
        let providers = Arc::new(build_registry(&config, &verifier)?);
        let usb_anchors = if config.usb.trust_anchors.is_empty() {
            TrustAnchors::default()
        } else {
            load_anchors(&config.usb.trust_anchors).context("[usb] trust anchors")?
        };
        let usb = Arc::new(UsbPath::new(
            &config.usb,
            usb_anchors,
            Arc::clone(&verifier),
        ));
        let engine = Engine::new(
            store,
            Hub::new(config.events.buffer),
            providers,
            EngineConfig {
                tick: Duration::from_millis(config.engine.tick_ms),
                lease: options.lease,
            },
        );
        let state = AppState {
            engine,
            tenants: Arc::new(Tenants::new(&config.tenants)),
            tickets: Arc::new(Tickets::new(
                Duration::from_secs(config.events.ticket_ttl_s),
                config.events.max_tickets_per_tenant,
            )),
            sockets: Arc::new(Sockets::new(config.events.max_sockets_per_tenant)),
            config: Arc::new(config),
            metrics: telemetry::metrics_handle(),
            usb,
            supervisor: Arc::default(),
        };
        Ok(Self { listener, state })
    }

    /// The engine, for embedding the gateway's work without its HTTP server or scheduler.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.state.engine
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` resolves: stops accepting, lets in-flight requests finish, and
    /// leaves pending sessions in the database for the next start.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stop_tx = Arc::new(stop_tx);
        let supervisor = Arc::clone(&self.state.supervisor);
        let engine = self.state.engine.clone();
        let mut engine_stop = stop_rx.clone();
        let fan_in = {
            let store = engine.outbox();
            let hub = engine.hub().clone();
            let stop = stop_rx.clone();
            tokio::spawn(async move { store.fan_in(Arc::new(hub), stop).await })
        };
        let scheduler = tokio::spawn(engine.run(async move {
            let _ = engine_stop.wait_for(|s| *s).await;
        }));
        let retention = tokio::spawn(crate::engine::retention::run(
            self.state.engine.outbox(),
            self.state.config.retention.clone(),
            stop_rx.clone(),
        ));
        let mut watched = vec![
            supervisor.watch("scheduler", scheduler, Arc::clone(&stop_tx)),
            supervisor.watch("event fan-in", fan_in, Arc::clone(&stop_tx)),
            supervisor.watch("retention", retention, Arc::clone(&stop_tx)),
        ];
        for (name, task) in self.state.engine.outbox().take_tasks() {
            // The store's tasks run as long as the store, past this function: not awaited.
            drop(supervisor.watch(name, task, Arc::clone(&stop_tx)));
        }
        let limits = server::Limits {
            header_read_timeout: Duration::from_secs(
                self.state.config.server.header_read_timeout_s,
            ),
            max_connections: self.state.config.server.max_connections,
        };
        let app = api::router(self.state);
        let mut server_stop = stop_rx;
        let server = server::serve(self.listener, app, limits, async move {
            let _ = server_stop.wait_for(|s| *s).await;
        });
        let stop = Arc::clone(&stop_tx);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        server.await;
        for task in watched.drain(..) {
            let _ = task.await;
        }
        match supervisor.failure() {
            Some(failure) => anyhow::bail!("{failure}"),
            None => Ok(()),
        }
    }
}

fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => url.to_owned(),
    }
}

fn build_registry(config: &Config, verifier: &Arc<Verifier>) -> anyhow::Result<Registry> {
    let mut registry = Registry::default();
    for (id, p) in &config.providers {
        let (adapter, signer_rule): (Arc<dyn Provider>, SignerRule) = match &p.kind {
            ProviderKind::Smartca(cfg) => (Arc::new(SmartCa::new(cfg)?), SignerRule::UserId),
            ProviderKind::Mssp(cfg) => (Arc::new(Mssp::new(id, cfg)?), SignerRule::Msisdn),
        };
        let rate = TokenBucket::per_second_window(p.rate_per_s, adapter.calls_per_start());
        registry.insert(ProviderEntry {
            id: id.as_str().into(),
            adapter,
            anchors: load_anchors(&p.trust_anchors)
                .with_context(|| format!("provider {id}: trust anchors"))?,
            signer_rule,
            default_timeout_s: p.default_timeout_s,
            retry_budget: Duration::from_millis(p.retry_budget_ms),
            in_flight: Arc::new(Semaphore::new(p.max_in_flight.max(1))),
            rate,
            breaker: Breaker::new(p.circuit_failures, Duration::from_millis(p.circuit_open_ms)),
            revocation: p.revocation,
            verifier: Arc::clone(verifier),
            callback_auth: p.callback_auth.clone(),
            callback_rate: TokenBucket::new(p.callback_rate_per_s, p.callback_rate_per_s),
            turn: Default::default(),
            next_expiry: Default::default(),
        });
    }
    Ok(registry)
}

/// Reads PEM (one or more certificates) or DER files into one anchor set.
pub fn load_anchors(paths: &[String]) -> anyhow::Result<TrustAnchors> {
    use der::Encode;
    let mut ders = Vec::new();
    for path in paths {
        let bytes = std::fs::read(Path::new(path)).with_context(|| format!("reading {path}"))?;
        if bytes.starts_with(b"-----BEGIN") {
            for cert in x509_cert::Certificate::load_pem_chain(&bytes)
                .with_context(|| format!("parsing PEM {path}"))?
            {
                ders.push(cert.to_der()?);
            }
        } else {
            ders.push(bytes);
        }
    }
    anyhow::ensure!(!ders.is_empty(), "no trust anchor configured");
    Ok(TrustAnchors::from_der(ders)?)
}
