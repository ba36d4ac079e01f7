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
use figment::providers::{Format, Toml};
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
[[tenants]]
id = "dev"
api_key_sha256 = "{key}"
[providers.vnpt-smartca]
kind = "smartca"
trust_anchors = ["{root}"]
default_timeout_s = 300
[providers.vnpt-smartca.smartca]
base_url = "http://{mock}/sca/sp769"
sp_id = "kyso-dev"
sp_password = "kyso-dev-secret"
poll_first_ms = 2000
poll_interval_ms = 2000
# SIM signing (ETSI TS 102 204), one messaging mode per carrier; switching an instance's
# `messaging_mode` changes nothing the portal sees.
[providers.viettel-sim]
kind = "mssp"
trust_anchors = ["{root}"]
default_timeout_s = 120
[providers.viettel-sim.mssp]
base_url = "http://{mock}/mssp/viettel-sim"
ap_id = "kyso-dev-ap"
ap_pwd = "kyso-dev-ap-secret"
messaging_mode = "asynch_client_server"
poll_first_ms = 2000
poll_interval_ms = 2000
receipt_message = "Da nhan chu ky"
[providers.vnpt-sim]
kind = "mssp"
trust_anchors = ["{root}"]
default_timeout_s = 120
[providers.vnpt-sim.mssp]
base_url = "http://{mock}/mssp/vnpt-sim"
ap_id = "kyso-dev-ap"
ap_pwd = "kyso-dev-ap-secret"
messaging_mode = "asynch_server_server"
public_callback_base = "http://{listen}"
receipt_message = "Da nhan chu ky"
[providers.mobifone-sim]
kind = "mssp"
trust_anchors = ["{root}"]
default_timeout_s = 120
[providers.mobifone-sim.mssp]
base_url = "http://{mock}/mssp/mobifone-sim"
ap_id = "kyso-dev-ap"
ap_pwd = "kyso-dev-ap-secret"
messaging_mode = "synch"
# The VN government MSSP's dialect (notes §12): namespaced wrapper, unqualified part.
wrapper_namespace = "http://ae.mobile-id.vn/TS102204/etsi204"
qualify_part = false
element_order = "vn"
receipt_message = "Da nhan chu ky"
"#,
        db = db.display(),
        key = hash_api_key(api_key),
        root = root_path.display(),
    );
    Ok(Config::from_figment(Figment::from(Toml::string(&toml)))?)
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
