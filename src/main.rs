//! The `kyso` command: `dev`, `serve`, `migrate`, `verify`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use kyso::config::Config;
use kyso::dev::{self, DevOptions};
use kyso::startup::Application;
use kyso::{store, telemetry};

#[derive(Parser)]
#[command(name = "kyso", version, about = "Mobile-signing gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway on SQLite with the mock carriers embedded.
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
        } => {
            dev::run(DevOptions {
                listen,
                mock_listen,
                state_dir,
                api_key: std::env::var("KYSO_DEV_API_KEY")
                    .ok()
                    .filter(|k| !k.is_empty()),
            })
            .await
        }
        Command::Serve { config } => {
            let config = Config::load(Some(&config))?;
            let app = Application::build(config).await?;
            tracing::info!(addr = %app.local_addr(), "kyso listening");
            app.run(dev::shutdown_signal()).await
        }
        Command::Migrate { config } => {
            let config = Config::load(config.as_deref())?;
            store::open(&config.database.url, &store::StoreOptions::default()).await?;
            println!("migrations applied");
            Ok(())
        }
    }
}
