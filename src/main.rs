//! The `kyso` command: `dev`, `serve`, `migrate`, `verify`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use kyso::config::Config;
use kyso::startup::Application;
use kyso::{shutdown, store, telemetry};

#[derive(Parser)]
#[command(name = "kyso", version, about = "Mobile-signing gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway on SQLite with the mock carriers embedded.
    ///
    /// Configured by these flags only: a `KYSO_…` setting in the environment (other than
    /// KYSO_DEV_API_KEY and KYSO_LOG_FORMAT) makes it refuse to start. Absent from a build
    /// without the `dev` feature.
    Dev {
        #[arg(long, default_value = "127.0.0.1:8700")]
        listen: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:8701")]
        mock_listen: SocketAddr,
        #[arg(long, default_value = "state")]
        state_dir: PathBuf,
    },
    /// Run the gateway against the providers in a config file.
    Serve {
        #[arg(long)]
        config: PathBuf,
        /// Migrate an existing database to this release's schema before serving (read
        /// CHANGELOG.md, "Upgrading", first). Without it a start on an older schema is refused.
        #[arg(long)]
        migrate: bool,
    },
    /// Apply the database migrations and exit.
    Migrate {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Judge a signature offline and print the verdict (exit 1 when it is not valid).
    Verify(kyso::offline::VerifyArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_tracing();
    telemetry::install_crypto_provider();
    match Cli::parse().command {
        Command::Verify(args) => std::process::exit(kyso::offline::run(args).await),
        Command::Dev {
            listen,
            mock_listen,
            state_dir,
        } => dev(listen, mock_listen, state_dir).await,
        Command::Serve { config, migrate } => {
            let mut config = Config::load(Some(&config))?;
            config.database.migrate |= migrate;
            let app = Application::build(config).await?;
            tracing::info!(addr = %app.local_addr(), "kyso listening");
            app.run(shutdown::signal()).await
        }
        Command::Migrate { config } => {
            let config = Config::load(config.as_deref())?;
            let options = store::StoreOptions {
                migrations: store::Migrations::Apply,
                ..store::StoreOptions::default()
            };
            store::open(&config.database.url, &options).await?;
            println!("migrations applied");
            Ok(())
        }
    }
}

#[cfg(feature = "dev")]
async fn dev(
    listen: SocketAddr,
    mock_listen: SocketAddr,
    state_dir: PathBuf,
) -> anyhow::Result<()> {
    kyso::dev::run(kyso::dev::DevOptions {
        listen,
        mock_listen,
        state_dir,
        api_key: std::env::var("KYSO_DEV_API_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
    })
    .await
}

#[cfg(not(feature = "dev"))]
async fn dev(_: SocketAddr, _: SocketAddr, _: PathBuf) -> anyhow::Result<()> {
    anyhow::bail!("kyso dev is not built in: this kyso was built without the `dev` feature")
}
