//! `kyso dev`: the whole stack on one machine — the gateway on SQLite with the mock carriers
//! embedded, a dev tenant whose API key is printed at start, and the virtual phone. It is
//! configured by its flags alone: its database lives in `--state-dir` and it listens where
//! `--listen` says. A `KYSO_…` setting in the environment (a production database, tenants,
//! providers…) is never applied to it; `kyso dev` names the variable and refuses to start,
//! since signing someone's pending session with the mock CA is worse than not starting.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use mock_carriers::{MockCarriers, MockConfig};
use rand::RngCore;
use tokio::net::TcpListener;

use crate::config::{hash_api_key, Config};
use crate::startup::Application;

pub struct DevOptions {
    pub listen: SocketAddr,
    pub mock_listen: SocketAddr,
    pub state_dir: PathBuf,
    /// From `KYSO_DEV_API_KEY`, else random.
    pub api_key: Option<String>,
}

/// `KYSO_…` variables `kyso dev` may start with: its own API key, the log format, and the
/// test harness's, which kyso never reads. Any other is a setting it would not honour.
const ALLOWED_VARIABLES: [&str; 4] = [
    "KYSO_DEV_API_KEY",
    "KYSO_LOG_FORMAT",
    "KYSO_TEST_POSTGRES_URL",
    "KYSO_REQUIRE_POSTGRES",
];

/// The names (never the values: they may be secrets) of the `KYSO_…` variables in `vars` that
/// `kyso dev` will not honour. Matched without regard to case, as the configuration's
/// environment overrides are.
pub fn refused_variables(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<String> {
    let mut refused: Vec<String> = vars
        .into_iter()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .filter(|name| {
            let upper = name.to_ascii_uppercase();
            upper.starts_with("KYSO_") && !ALLOWED_VARIABLES.contains(&upper.as_str())
        })
        .collect();
    refused.sort();
    refused
}

/// Where the mock carriers are, as every configuration against them sees it.
#[derive(Debug, Clone, Copy)]
pub struct MockSite<'a> {
    /// `host:port` of the mock carriers.
    pub addr: &'a str,
    /// The mock's root CA file (PEM or DER), which every mock provider's signers chain to.
    pub root: &'a str,
    /// The gateway's base URL, where the MSSP in `asynch_server_server` mode posts its
    /// notifications.
    pub gateway: &'a str,
}

/// What differs between the mock providers, beside their id: everything else is set in
/// [`mock_providers`] from the mock's own defaults.
const MOCK_PROVIDERS: &str = r#"
[vnpt-smartca]
kind = "smartca"
default_timeout_s = 300
[vnpt-smartca.smartca]
poll_first_ms = 2000
poll_interval_ms = 2000

# SIM signing (ETSI TS 102 204), one messaging mode per carrier; switching an instance's
# `messaging_mode` changes nothing the portal sees.
[viettel-sim]
kind = "mssp"
default_timeout_s = 120
[viettel-sim.mssp]
messaging_mode = "asynch_client_server"
poll_first_ms = 2000
poll_interval_ms = 2000
receipt_message = "Da nhan chu ky"

[vnpt-sim]
kind = "mssp"
default_timeout_s = 120
[vnpt-sim.mssp]
messaging_mode = "asynch_server_server"
receipt_message = "Da nhan chu ky"

# The VN government MSSP's dialect (notes §12): namespaced wrapper, unqualified part.
[mobifone-sim]
kind = "mssp"
default_timeout_s = 120
[mobifone-sim.mssp]
messaging_mode = "synch"
wrapper_namespace = "http://ae.mobile-id.vn/TS102204/etsi204"
qualify_part = false
element_order = "vn"
receipt_message = "Da nhan chu ky"
"#;

/// The mock carriers' providers as `[providers.*]` tables: VNPT SmartCA, and one MSSP per
/// messaging mode (`viettel-sim`, `vnpt-sim`, `mobifone-sim`), each with the mock's default
/// credentials and trusting its root. The one description of them: `kyso dev` runs it as is,
/// `config/local.toml` spells it out (a test holds the two equal), the integration tests tune
/// its timings, and the bench copies its SmartCA provider once per instance.
pub fn mock_providers(site: &MockSite<'_>) -> toml::Table {
    use toml::Value;
    let mut providers: toml::Table = MOCK_PROVIDERS
        .parse()
        .expect("the mock providers' table is valid TOML");
    let mock = MockConfig::default();
    let ap = mock_carriers::ApCredentials::default();
    for (id, provider) in providers.iter_mut() {
        let Value::Table(provider) = provider else {
            continue;
        };
        let anchors = Value::Array(vec![Value::from(site.root)]);
        provider.insert("trust_anchors".into(), anchors);
        let kind = provider
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (base_url, credentials) = match kind.as_str() {
            "smartca" => (
                format!("http://{}/sca/sp769", site.addr),
                [
                    ("sp_id", mock.smartca_sp_id.clone()),
                    ("sp_password", mock.smartca_sp_password.clone()),
                ],
            ),
            _ => (
                format!("http://{}/mssp/{id}", site.addr),
                [
                    ("ap_id", ap.ap_id.clone()),
                    ("ap_pwd", ap.ap_password.clone()),
                ],
            ),
        };
        let Some(Value::Table(section)) = provider.get_mut(&kind) else {
            continue;
        };
        section.insert("base_url".into(), Value::from(base_url));
        for (key, value) in credentials {
            section.insert(key.into(), Value::from(value));
        }
        let server_server =
            section.get("messaging_mode").and_then(Value::as_str) == Some("asynch_server_server");
        if server_server {
            section.insert("public_callback_base".into(), Value::from(site.gateway));
        }
    }
    providers
}

/// Sets `path` (dotted, e.g. `vnpt-smartca.smartca.poll_first_ms`) in `table` to `value`,
/// making the tables on the way: how the tests and the bench tune [`mock_providers`].
pub fn set(table: &mut toml::Table, path: &str, value: impl Into<toml::Value>) {
    let (parents, leaf) = path
        .rsplit_once('.')
        .map_or((None, path), |(p, l)| (Some(p), l));
    let mut at = table;
    for name in parents.into_iter().flat_map(|p| p.split('.')) {
        let next = at
            .entry(name)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !next.is_table() {
            *next = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = next else {
            return;
        };
        at = next;
    }
    at.insert(leaf.to_owned(), value.into());
}

/// The dev configuration for a gateway at `listen` and mock carriers at `mock`, and nothing
/// else: no environment override applies.
pub fn dev_config(
    listen: SocketAddr,
    mock: SocketAddr,
    state_dir: &std::path::Path,
    root_path: &std::path::Path,
    api_key: &str,
) -> anyhow::Result<Config> {
    let db = state_dir.join("kyso-dev.db");
    let toml = format!(
        r#"
[server]
listen = "{listen}"
demo_page = true
[database]
url = "sqlite://{db}"
# A dev state directory from an older kyso is brought up to date.
migrate = true
[[tenants]]
id = "dev"
api_key_sha256 = "{key}"
"#,
        db = db.display(),
        key = hash_api_key(api_key),
    );
    let site = MockSite {
        addr: &mock.to_string(),
        root: &root_path.display().to_string(),
        gateway: &format!("http://{listen}"),
    };
    let providers = Serialized::default("providers", mock_providers(&site));
    Ok(Config::from_figment(
        Figment::from(Toml::string(&toml)).merge(providers),
    )?)
}

pub async fn run(opts: DevOptions) -> anyhow::Result<()> {
    let refused = refused_variables(std::env::vars_os());
    if !refused.is_empty() {
        anyhow::bail!(
            "kyso dev is configured by its flags only and will not start with {} set: unset it, \
             or run `kyso serve --config FILE` for a configured gateway",
            refused.join(", ")
        );
    }
    std::fs::create_dir_all(&opts.state_dir)
        .with_context(|| format!("creating {}", opts.state_dir.display()))?;
    let mock = MockCarriers::new(MockConfig {
        state_dir: opts.state_dir.join("mock-carriers"),
        ..MockConfig::default()
    })?;
    let mock_listener = TcpListener::bind(opts.mock_listen)
        .await
        .with_context(|| format!("binding the mock carriers on {}", opts.mock_listen))?;
    let mock_addr = mock_listener.local_addr()?;
    let root_path = opts.state_dir.join("mock-root.der");
    std::fs::write(&root_path, mock.root_der())?;

    let api_key = opts.api_key.unwrap_or_else(|| {
        let mut b = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut b);
        format!("kyso_dev_{}", hex::encode(b))
    });
    let config = dev_config(
        opts.listen,
        mock_addr,
        &opts.state_dir,
        &root_path,
        &api_key,
    )?;
    let app = Application::build(config).await?;
    let gateway = app.local_addr();
    mock.set_smartca_webhook_url(Some(format!("http://{gateway}/callbacks/vnpt-smartca")));

    println!("kyso dev stack");
    println!("  gateway        http://{gateway}");
    println!("  API key        {api_key}");
    println!("  demo portal    http://{gateway}/demo");
    println!("  virtual phone  http://{mock_addr}/phone/<signer>   (e.g. /phone/001099012999)");
    println!(
        "  mock carriers  http://{mock_addr}   (root CA: {})",
        root_path.display()
    );
    println!("  try: curl -H 'Authorization: Bearer {api_key}' http://{gateway}/v1/signatures");

    let mock_task = tokio::spawn(mock_carriers::serve(
        mock_listener,
        mock,
        crate::shutdown::signal(),
    ));
    app.run(crate::shutdown::signal()).await?;
    mock_task.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mock carriers and the gateway where `config/local.toml` expects them.
    const LOCAL: MockSite<'static> = MockSite {
        addr: "127.0.0.1:8701",
        root: "state/mock-carriers/root-ca.pem",
        gateway: "http://127.0.0.1:8700",
    };

    #[test]
    fn config_local_toml_spells_out_the_mock_providers() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/local.toml");
        let text = std::fs::read_to_string(&path).expect("config/local.toml");
        let local: toml::Table = text.parse().expect("config/local.toml is TOML");
        let expected = toml::Value::Table(mock_providers(&LOCAL));
        assert_eq!(
            local.get("providers"),
            Some(&expected),
            "config/local.toml's [providers.*] differ from dev::mock_providers; write them as:\n{}",
            toml::to_string(&toml::Table::from_iter([(
                "providers".to_owned(),
                expected.clone()
            )]))
            .unwrap_or_default()
        );
    }

    #[test]
    fn every_mock_provider_loads_with_the_mock_credentials_and_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root.der");
        let listen = SocketAddr::from(([127, 0, 0, 1], 8700));
        let mock = SocketAddr::from(([127, 0, 0, 1], 8701));
        let config = dev_config(listen, mock, dir.path(), &root, "k").expect("dev config");
        let ids: Vec<&str> = config.providers.keys().map(String::as_str).collect();
        assert_eq!(
            ids,
            ["mobifone-sim", "viettel-sim", "vnpt-sim", "vnpt-smartca"]
        );
        for (id, p) in &config.providers {
            assert_eq!(p.trust_anchors, [root.display().to_string()], "{id}");
        }
        use crate::config::ProviderKind;
        use secrecy::ExposeSecret;
        match &config.providers["vnpt-sim"].kind {
            ProviderKind::Mssp(m) => {
                assert_eq!(m.base_url, "http://127.0.0.1:8701/mssp/vnpt-sim");
                assert_eq!(m.ap_pwd.expose_secret(), "kyso-dev-ap-secret");
                assert_eq!(
                    m.public_callback_base.as_deref(),
                    Some("http://127.0.0.1:8700")
                );
            }
            other => panic!("{other:?}"),
        }
        match &config.providers["vnpt-smartca"].kind {
            ProviderKind::Smartca(c) => {
                assert_eq!(c.base_url, "http://127.0.0.1:8701/sca/sp769");
                assert_eq!(c.sp_id, MockConfig::default().smartca_sp_id);
            }
            other => panic!("{other:?}"),
        }
    }
}
