//! `mock-carriers`: runs the mock providers, PKI and virtual phone as a standalone server for QA.
//! Flags double as `MOCK_*` environment variables; logs go to stderr (`RUST_LOG` filters).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use mock_carriers::{serve, ApCredentials, MockCarriers, MockConfig, SmartCaAccount};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Mock signing providers, PKI and virtual phone for kyso"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "MOCK_LISTEN", default_value = "127.0.0.1:8701")]
    listen: SocketAddr,
    /// Where keys and certificates persist.
    #[arg(long, env = "MOCK_STATE_DIR", default_value = "./state/mock-carriers")]
    state_dir: PathBuf,
    /// How long an ordinary signer takes to approve.
    #[arg(long, env = "MOCK_APPROVE_DELAY_MS", default_value_t = 500)]
    approve_delay_ms: u64,
    /// SmartCA sp_id callers must present.
    #[arg(long, env = "MOCK_SMARTCA_SP_ID", default_value = "kyso-dev")]
    smartca_sp_id: String,
    /// SmartCA sp_password callers must present.
    #[arg(
        long,
        env = "MOCK_SMARTCA_SP_PASSWORD",
        default_value = "kyso-dev-secret",
        hide_env_values = true
    )]
    smartca_sp_password: String,
    /// Where to POST SmartCA webhooks when a request of the default account completes.
    #[arg(long, env = "MOCK_SMARTCA_WEBHOOK_URL")]
    smartca_webhook_url: Option<String>,
    /// A further SmartCA account, `SP_ID:PASSWORD[:WEBHOOK_URL]`, accepted with its own
    /// password and pushing its requests to its own URL. Repeatable; the variable takes a
    /// comma-separated list.
    #[arg(
        long = "smartca-account",
        value_name = "SP_ID:PASSWORD[:WEBHOOK_URL]",
        env = "MOCK_SMARTCA_ACCOUNTS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    smartca_accounts: Vec<SmartCaAccount>,
    /// AP_ID the three MSSPs accept.
    #[arg(long, env = "MOCK_MSSP_AP_ID", default_value = "kyso-dev-ap")]
    mssp_ap_id: String,
    /// AP_PWD the three MSSPs accept.
    #[arg(
        long,
        env = "MOCK_MSSP_AP_PASSWORD",
        default_value = "kyso-dev-ap-secret",
        hide_env_values = true
    )]
    mssp_ap_password: String,
    /// Behave like the VN MSSP: VN wrapper namespace, DataToBeDisplayed required, no
    /// asynchServerServer.
    #[arg(long, env = "MOCK_MSSP_STRICT_VN")]
    mssp_strict_vn: bool,
    /// Where MSSP notifications go when a request has no AP_URL (`{carrier}` = carrier id).
    #[arg(long, env = "MOCK_MSSP_NOTIFICATION_URL")]
    mssp_notification_url: Option<String>,
    /// Base URL certificates name for OCSP, CRLs and CA certificates (default: the listen
    /// address).
    #[arg(long, env = "MOCK_PUBLIC_URL")]
    public_url: Option<String>,
    /// How many RSA keys new signers are provisioned with (made at start, kept in the state
    /// directory); signers share keys, never certificates.
    #[arg(long, env = "MOCK_KEY_POOL_SIZE", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    key_pool_size: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let ap = ApCredentials {
        ap_id: args.mssp_ap_id,
        ap_password: args.mssp_ap_password,
    };
    let mssp_aps = ["viettel-sim", "vnpt-sim", "mobifone-sim"]
        .into_iter()
        .map(|carrier| (carrier.to_owned(), ap.clone()))
        .collect();
    let mock = MockCarriers::new(MockConfig {
        state_dir: args.state_dir,
        approve_delay_ms: args.approve_delay_ms,
        smartca_sp_id: args.smartca_sp_id,
        smartca_sp_password: args.smartca_sp_password,
        smartca_webhook_url: args.smartca_webhook_url,
        smartca_accounts: args.smartca_accounts,
        mssp_aps,
        mssp_strict_vn: args.mssp_strict_vn,
        mssp_notification_url: args.mssp_notification_url,
        key_pool_size: usize::from(args.key_pool_size),
    })?;
    let started = std::time::Instant::now();
    let pool = mock.pki().key_pool();
    pool.fill().context("filling the key pool")?;
    tracing::info!(
        size = pool.size(),
        generated = pool.generated(),
        elapsed_ms = started.elapsed().as_millis(),
        "key pool ready"
    );
    if let Some(url) = args.public_url {
        mock.set_public_url(url);
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("mock root CA: {}", mock.root_pem_path().display());
    println!("virtual phone: http://{addr}/phone/<signer>");
    println!("SmartCA SP769: http://{addr}/sca/sp769");
    println!("MSSP (SIM):    http://{addr}/mssp/{{viettel-sim,vnpt-sim,mobifone-sim}}/soap/services/MSS_SignaturePort");
    tracing::info!(%addr, "mock carriers listening");
    serve(listener, mock, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
