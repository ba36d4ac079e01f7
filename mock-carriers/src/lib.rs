//! Mock carriers: fake signing providers, a fake PKI and a virtual phone, for QA, tests and
//! kyso's dev stack (SPEC §7). The crate shares no code with the gateway: it writes its own
//! wire structs from the protocol notes, so a misreading on either side shows up in tests.
//!
//! Module map:
//! - [`pki`] — mock root CA, one issuing CA per provider, signer credentials provisioned on
//!   first use and persisted in the state directory; digest signing; OCSP and CRL contents.
//! - `revocation` — `/ocsp/{ca}`, `/crl/{ca}.crl`, `/pki/{ca}.crt`: what certificates' AIA
//!   and CRL DP name.
//! - [`behaviour`] — what a signer's last three digits make the mock do, and transport faults.
//! - [`requests`] — the phone prompts every provider front end creates and the phone decides.
//! - `smartca` — VNPT SmartCA SP769 (`/sca/sp769/...`), its service-provider accounts and
//!   their webhooks.
//! - `mssp` — the ETSI TS 102 204 MSSPs of the SIM carriers (`/mssp/{carrier}/soap/...`)
//!   and their asynchServerServer notifications.
//! - `phone` — `GET /phone/{signer}`, the virtual phone page.
//! - `admin` — `/admin/...` JSON API (list, approve, reject, stats, calls per signer) and `/healthz`.
//! - [`prerequisites`] — `openssl` and `xmlschema` for the tests that use them as judges.
//! - `state`, `http`, `webhook` — shared handler state, HTTP plumbing, outgoing pushes.
//!
//! Further providers (Viettel MySign, CSC) slot in as sibling modules next to `smartca` and
//! `mssp`, each adding a `Provider` variant and its issuing CA.

#![forbid(unsafe_code)]

mod admin;
pub mod behaviour;
mod http;
mod mssp;
mod phone;
pub mod pki;
pub mod prerequisites;
pub mod requests;
mod revocation;
mod smartca;
mod state;
mod webhook;

use axum::serve::ListenerExt as _;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::Router;

use pki::Pki;
use requests::Store;
use state::Shared;

pub use mssp::ApCredentials;
pub use smartca::accounts::{SmartCaAccount, SmartCaAccountError};

/// How the mock carriers behave.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Keys and certificates persist here (DER files, root also as PEM) so a restart keeps them.
    pub state_dir: PathBuf,
    /// How long an ordinary signer takes to approve (or a `401` signer to refuse).
    pub approve_delay_ms: u64,
    /// The default SmartCA account: the `sp_id`/`sp_password` callers present; wrong ones get
    /// status_code 401.
    pub smartca_sp_id: String,
    pub smartca_sp_password: String,
    /// Where to POST the SP769 webhook when a request of the default account completes.
    pub smartca_webhook_url: Option<String>,
    /// Further SmartCA accounts, each accepted with its own password and pushing its own
    /// requests to its own webhook URL (as VNPT registers one callback per SP account).
    /// Validated by [`MockCarriers::new`]; an `sp_id` may appear only once.
    pub smartca_accounts: Vec<SmartCaAccount>,
    /// AP credentials per SIM carrier id (`viettel-sim`, `vnpt-sim`, `mobifone-sim`);
    /// a carrier not listed accepts [`ApCredentials::default`] (`kyso-dev-ap` /
    /// `kyso-dev-ap-secret`). Wrong ones get fault 104.
    pub mssp_aps: BTreeMap<String, ApCredentials>,
    /// Behave like the VN JAX-WS MSSP: the operation wrapper must be in
    /// `http://ae.mobile-id.vn/TS102204/etsi204`, DataToBeDisplayed is required and
    /// asynchServerServer is refused.
    pub mssp_strict_vn: bool,
    /// Where asynchServerServer notifications go when the request has no AP_URL;
    /// `{carrier}` is replaced by the carrier id.
    pub mssp_notification_url: Option<String>,
    /// How many RSA keys new signers draw from (see [`pki::pool`]); the binary defaults to
    /// 64 and fills the pool at start, the library to [`DEV_KEY_POOL_SIZE`] filled on demand.
    pub key_pool_size: usize,
}

/// The key pool of an embedded mock (tests, `kyso dev`): small, so starting one is quick.
pub const DEV_KEY_POOL_SIZE: usize = 4;

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("./state/mock-carriers"),
            approve_delay_ms: 500,
            smartca_sp_id: "kyso-dev".to_owned(),
            smartca_sp_password: "kyso-dev-secret".to_owned(),
            smartca_webhook_url: None,
            smartca_accounts: Vec::new(),
            mssp_aps: BTreeMap::new(),
            mssp_strict_vn: false,
            mssp_notification_url: None,
            key_pool_size: DEV_KEY_POOL_SIZE,
        }
    }
}

/// The mock carriers; cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct MockCarriers {
    shared: Arc<Shared>,
    ticker_started: Arc<AtomicBool>,
}

impl MockCarriers {
    /// Loads the PKI from `config.state_dir`, creating what is missing. Fails on an invalid or
    /// repeated extra SmartCA account.
    pub fn new(config: MockConfig) -> anyhow::Result<Self> {
        let default_account = SmartCaAccount::new(
            config.smartca_sp_id,
            config.smartca_sp_password,
            config.smartca_webhook_url,
        );
        let smartca = smartca::Accounts::new(default_account, config.smartca_accounts)
            .context("SmartCA accounts")?;
        let pki = Pki::load_or_create(&config.state_dir, config.key_pool_size)
            .with_context(|| format!("mock PKI in {}", config.state_dir.display()))?;
        let shared = Shared {
            pki,
            store: Store::new(Duration::from_millis(config.approve_delay_ms)),
            faults: behaviour::Faults::default(),
            webhooks: webhook::WebhookSender::new().context("webhook HTTP client")?,
            smartca,
            mssp: mssp::MsspState::new(
                config.mssp_aps,
                config.mssp_strict_vn,
                config.mssp_notification_url,
            ),
            fetches: revocation::Fetches::default(),
        };
        Ok(Self {
            shared: Arc::new(shared),
            ticker_started: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The mock root CA certificate (DER): the trust anchor for every mock provider.
    pub fn root_der(&self) -> Vec<u8> {
        self.shared.pki.root_der().to_vec()
    }

    /// Where the root certificate is written as PEM.
    pub fn root_pem_path(&self) -> PathBuf {
        self.shared.pki.root_pem_path().to_path_buf()
    }

    /// The PKI, for tests and tools that want signer certificates directly.
    pub fn pki(&self) -> &Pki {
        &self.shared.pki
    }

    /// Every endpoint, mountable at "/". Called inside a Tokio runtime, it also starts the
    /// background task that applies timed outcomes and sends webhooks on time.
    pub fn router(&self) -> Router {
        self.ensure_ticker();
        Router::new()
            .merge(smartca::router())
            .merge(mssp::router())
            .merge(admin::router())
            .merge(phone::router())
            .merge(revocation::router())
            .layer(DefaultBodyLimit::max(http::BODY_LIMIT))
            .layer(axum::middleware::from_fn_with_state(
                self.shared.clone(),
                http::learn_public_url,
            ))
            .with_state(self.shared.clone())
    }

    /// The base URL (e.g. `http://127.0.0.1:8701`) that certificates name for OCSP, CRLs and
    /// CA certificates. Unset, it is taken from [`serve`]'s listener, else from the first
    /// request's Host header, else `http://127.0.0.1:8701`. Stored certificates naming another
    /// base URL are re-issued (same key, new serial) when next used.
    pub fn set_public_url(&self, url: String) {
        self.shared.pki.set_public_url(&url);
    }

    /// The base URL certificates currently name.
    pub fn public_url(&self) -> String {
        self.shared.pki.public_url()
    }

    /// `(pushes sent, pushes answered)`, waiting up to `within` until every push sent so far
    /// has been answered (or failed): then no push of an earlier decision is on its way.
    pub async fn pushes_settled(&self, within: Duration) -> (u64, u64) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            self.shared.settle();
            let (sent, answered) = self.shared.webhooks.counts();
            if sent == answered || tokio::time::Instant::now() >= deadline {
                return (sent, answered);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Changes (or clears) the default SmartCA account's webhook target; the dev stack learns
    /// the gateway's port only after the mock starts.
    pub fn set_smartca_webhook_url(&self, url: Option<String>) {
        self.shared.smartca.set_default_webhook_url(url);
    }

    /// Registers a SmartCA account, or replaces the password and webhook URL of the one with
    /// that `sp_id` (the default account included). Requests it already made keep going to
    /// whatever URL the account has when they finish.
    pub fn add_smartca_account(&self, account: SmartCaAccount) -> Result<(), SmartCaAccountError> {
        self.shared.smartca.upsert(account)
    }

    /// Changes (or clears) the webhook target of the SmartCA account `sp_id`; the URL must be
    /// an absolute http(s) URL and the account registered.
    pub fn set_smartca_webhook_url_for(
        &self,
        sp_id: &str,
        url: Option<String>,
    ) -> Result<(), SmartCaAccountError> {
        self.shared.smartca.set_webhook_url(sp_id, url)
    }

    /// Changes (or clears) where MSSP notifications go for requests without AP_URL; `{carrier}`
    /// in the template becomes the carrier id (e.g. `http://gw/callbacks/{carrier}`).
    pub fn set_mssp_notification_url(&self, template: Option<String>) {
        self.shared.mssp.set_notification_url(template);
    }

    fn ensure_ticker(&self) {
        if tokio::runtime::Handle::try_current().is_ok()
            && !self.ticker_started.swap(true, Ordering::SeqCst)
        {
            state::spawn_ticker(Arc::downgrade(&self.shared));
        }
    }
}

/// Serves the mock on `listener` until `shutdown` resolves, then finishes in-flight requests.
/// Unless [`MockCarriers::set_public_url`] was called, the listener's address becomes the
/// public base URL right away (before the returned future is first polled).
pub fn serve(
    listener: tokio::net::TcpListener,
    mock: MockCarriers,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = std::io::Result<()>> + Send {
    if let Ok(addr) = listener.local_addr() {
        let host = if addr.ip().is_unspecified() {
            std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
        } else {
            addr
        };
        mock.shared
            .pki
            .set_public_url_if_unset(&format!("http://{host}"));
    }
    async move {
        axum::serve(listener.tap_io(no_delay), mock.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Small responses and WebSocket frames leave at once: with Nagle's algorithm a frame written
/// right after another waits for the peer's delayed ACK (up to 40 ms on Linux).
/// (`axum::serve(listener.tap_io(no_delay), …)`; the bench serves its routes with it too.)
pub fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
}
