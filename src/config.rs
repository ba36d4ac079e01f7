//! Configuration: a TOML file, overridden by `KYSO_<SECTION>__<KEY>` environment variables
//! ([`env`]). Secrets (provider passwords, tokens, the database URL) may come from files
//! ([`secrets`]), are `SecretString` where they can be and never printed; API keys are stored
//! only as SHA-256 hashes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use serde::Deserialize;

use crate::verify::RevocationPolicy;

pub mod env;
mod provider;
pub mod secrets;
mod validate;

pub use provider::{ProviderConfig, ProviderKind};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub events: EventsConfig,
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// The USB-token path (`/v1/challenges`, `/v1/verifications`).
    #[serde(default)]
    pub usb: UsbConfig,
    /// How OCSP responders and CRL distribution points are reached.
    #[serde(default)]
    pub revocation: RevocationConfig,
    /// How long finished sessions and events are kept.
    #[serde(default)]
    pub retention: RetentionConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days to keep finished sessions and events (counted from completion and creation); the
    /// pruning task deletes older ones. 0 keeps everything.
    pub finished_days: u32,
    /// Rows of each kind deleted per statement: small, so writes never wait long behind one.
    pub batch: u32,
    /// Seconds between pruning passes (a pass repeats batches while there is work).
    pub interval_s: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            finished_days: 30,
            batch: 500,
            interval_s: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted; `data` may be 1 MiB of base64.
    pub body_limit_bytes: usize,
    /// Longest `?wait=` a long poll may ask for.
    pub max_wait_s: u64,
    /// Serve the demo portal page at `/demo` (the dev stack turns it on).
    pub demo_page: bool,
    /// A connection that has not sent a whole request head this long after connecting (or
    /// after its previous response) is closed: slow and idle sockets cannot pile up.
    pub header_read_timeout_s: u64,
    /// Connections served at once, WebSockets included; further ones wait in the listen
    /// backlog until one closes.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8700)),
            body_limit_bytes: 1_500_000,
            max_wait_s: 60,
            demo_page: false,
            header_read_timeout_s: 10,
            max_connections: 8192,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://FILE` (one instance) or `postgres://…` (any number of instances).
    pub url: String,
    pub max_connections: u32,
    /// PostgreSQL: how long a claimed session stays with an instance without renewal; after
    /// an instance dies, its sessions move on after at most this long.
    pub lease_s: u64,
    /// SQLite: the size (MiB) of write-ahead log at which the checkpointer briefly holds
    /// writes back so the log starts over; under constant writes it would otherwise grow for
    /// as long as the load lasts.
    pub wal_limit_mb: u64,
    /// Whether a start may migrate an existing database to this release's schema (a fresh
    /// database is always set up). Off: a start on an older schema is refused, naming the
    /// missing migrations; `kyso migrate` or `kyso serve --migrate` applies them.
    pub migrate: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://kyso.db".into(),
            max_connections: 16,
            lease_s: 15,
            wal_limit_mb: 64,
            migrate: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    pub tick_ms: u64,
    /// Smallest `timeout_s` a portal may ask for (SPEC: 30; tests lower it).
    pub min_timeout_s: u32,
    pub max_timeout_s: u32,
}

impl Default for EngineSection {
    fn default() -> Self {
        Self {
            tick_ms: 500,
            min_timeout_s: 30,
            max_timeout_s: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    pub ping_interval_s: u64,
    pub send_timeout_s: u64,
    pub ticket_ttl_s: u64,
    /// Events buffered for live subscribers before a slow one must catch up from the outbox.
    pub buffer: usize,
    /// Unredeemed browser tickets one tenant may hold; past it, new ones answer 429.
    pub max_tickets_per_tenant: usize,
    /// Open event WebSockets per tenant; past it, new ones answer 429 before the upgrade.
    pub max_sockets_per_tenant: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            ping_interval_s: 20,
            send_timeout_s: 10,
            ticket_ttl_s: 60,
            buffer: 4096,
            max_tickets_per_tenant: 1000,
            max_sockets_per_tenant: 500,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: String,
    /// Lowercase hex SHA-256 of the API key.
    pub api_key_sha256: String,
    /// Allow a signer several unfinished sessions at once (off: anti push-bombing).
    #[serde(default)]
    pub allow_concurrent_per_signer: bool,
    #[serde(default = "default_tenant_rate")]
    pub rate_per_s: u32,
    /// Signature requests one signer may receive from this tenant per minute (anti
    /// push-bombing: cancelling frees `signer_busy`, but not this).
    #[serde(default = "default_signer_rate")]
    pub signer_requests_per_minute: u32,
}

fn default_signer_rate() -> u32 {
    10
}

fn default_tenant_rate() -> u32 {
    50
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationConfig {
    /// Per OCSP request or CRL download, connect included.
    pub timeout_ms: u64,
    /// URL prefixes replaced before fetching, for gateways whose egress goes through an
    /// internal mirror or proxy of the CAs' responders: `{ from = "http://ocsp.ca.vn", to =
    /// "http://mirror.internal/ca" }`.
    pub rewrites: Vec<UrlRewrite>,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 3000,
            rewrites: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlRewrite {
    pub from: String,
    pub to: String,
}

/// Signatures made by USB tokens in the browser plugin, verified on the portal's behalf.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsbConfig {
    /// PEM or DER files of the CAs USB-token certificates must chain to. Empty: the path
    /// answers 503.
    pub trust_anchors: Vec<String>,
    pub revocation: RevocationPolicy,
    /// How long a challenge may be used.
    pub challenge_ttl_s: u64,
    /// Unused challenges a tenant may hold at once.
    pub max_challenges_per_tenant: usize,
}

impl Default for UsbConfig {
    fn default() -> Self {
        Self {
            trust_anchors: Vec::new(),
            revocation: RevocationPolicy::Prefer,
            challenge_ttl_s: 300,
            max_challenges_per_tenant: 1000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: `{key}` and `{key}_file` are both set; set one")]
    SecretTwice { key: String },
    #[error("configuration: `{key}_file`: {why}")]
    SecretFile { key: String, why: String },
    #[error("tenant `{0}`: api_key_sha256 must be 64 lowercase hex characters")]
    BadKeyHash(String),
    #[error("configuration: `{key}` = {value} is outside its range {range}")]
    OutOfRange {
        key: String,
        value: String,
        range: String,
    },
}

impl Config {
    /// Loads `path` (when given), then applies `KYSO_…` environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::new();
        if let Some(p) = path {
            fig = fig.merge(Toml::file_exact(p));
        }
        let ids = fig
            .extract_inner::<Dict>("providers")
            .map(|providers| providers.into_keys().collect())
            .unwrap_or_default();
        Self::from_figment(fig.merge(env::overrides(ids)))
    }

    /// Reads secrets from their files, then the whole configuration, then checks it.
    pub fn from_figment(fig: Figment) -> Result<Self, ConfigError> {
        let mut root: Dict = fig.extract().map_err(Box::new)?;
        let config: Config = if secrets::resolve(&mut root)? {
            // Errors from here name their key, not the file it came from.
            Figment::from(Serialized::defaults(Value::from(root))).extract()
        } else {
            fig.extract()
        }
        .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for t in &self.tenants {
            let ok = t.api_key_sha256.len() == 64
                && t.api_key_sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !ok {
                return Err(ConfigError::BadKeyHash(t.id.clone()));
            }
        }
        validate::ranges(self)
    }
}

/// The hash an API key is stored under.
pub fn hash_api_key(key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(key.as_bytes()))
}
