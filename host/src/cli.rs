//! The `hoard` command line: `serve`, `migrate` and `plugin check`.

use crate::config::Config;
use crate::storage::sled::SledStore;
use crate::storage::{Limits, Storage};
use crate::wasm::{Runtime, WasmConfig};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// hoard: a storage host for game servers.
#[derive(Debug, Parser)]
#[command(name = "hoard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the configured games over HTTP until Ctrl-C.
    Serve {
        /// Config file (default: configs/offline.toml if present). HOARD_*
        /// environment variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on, overriding the config.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Apply the PostgreSQL migrations in migrations/ and exit.
    Migrate {
        /// Config file naming `storage.postgres.url`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Check that a component fits the hoard plugin world, and print what it
    /// exports and how it describes itself.
    Check {
        /// The `.wasm` component.
        file: PathBuf,
    },
}

/// Parses the command line and runs it: the whole `hoard` binary. Errors are
/// printed as sentences and turn into a failing exit code.
pub fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "hoard=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(format!("cannot start the async runtime: {error}")),
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve { config, listen } => {
                let config = match serve_config(config.as_deref(), listen) {
                    Ok(config) => config,
                    Err(error) => return fail(error.to_string()),
                };
                let listener = match tokio::net::TcpListener::bind(config.server.listen).await {
                    Ok(listener) => listener,
                    Err(error) => {
                        return fail(format!(
                            "cannot listen on {}: {error}",
                            config.server.listen
                        ));
                    }
                };
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                    tracing::info!("shutting down");
                };
                match crate::run(config, listener, shutdown).await {
                    Ok(()) => std::process::ExitCode::SUCCESS,
                    Err(error) => fail(error.to_string()),
                }
            }
            Command::Migrate { config } => migrate(config.as_deref()).await,
            Command::Plugin {
                command: PluginCommand::Check { file },
            } => match check_plugin(&file).await {
                Ok(report) => {
                    print!("{report}");
                    std::process::ExitCode::SUCCESS
                }
                Err(reason) => fail(format!("rejected: {reason}")),
            },
        }
    })
}

/// `hoard migrate`: applies the migrations to the configured Postgres.
async fn migrate(config: Option<&std::path::Path>) -> std::process::ExitCode {
    let config = match serve_config(config, None) {
        Ok(config) => config,
        Err(error) => return fail(error.to_string()),
    };
    let postgres = crate::storage::postgres::PostgresConfig {
        migrate_on_start: false,
        ..config.storage.postgres
    };
    let store = match crate::storage::postgres::PostgresStore::connect(&postgres).await {
        Ok(store) => store,
        Err(error) => return fail(error.to_string()),
    };
    match store.migrate().await {
        Ok(count) => {
            println!("migrations applied: the schema is at migration {count}");
            std::process::ExitCode::SUCCESS
        }
        Err(reason) => fail(format!("migration failed: {reason}")),
    }
}

fn fail(message: String) -> std::process::ExitCode {
    eprintln!("hoard: {message}");
    std::process::ExitCode::FAILURE
}

/// Loads the config named on the command line, with `--listen` applied.
pub fn serve_config(
    config: Option<&std::path::Path>,
    listen: Option<SocketAddr>,
) -> Result<Config, crate::config::ConfigError> {
    let mut config = Config::load(config)?;
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    Ok(config)
}

/// Checks a plugin file: the report on success, the reason on failure.
pub async fn check_plugin(file: &std::path::Path) -> Result<String, String> {
    let store = SledStore::open_temporary().map_err(|e| e.to_string())?;
    let storage = Storage {
        hot: store.clone(),
        cold: store,
        limits: Limits::default(),
    };
    let wasm = WasmConfig {
        instances_max: 4,
        ..WasmConfig::default()
    };
    let runtime = Runtime::new(wasm, storage).map_err(|e| e.to_string())?;
    let name = "check";
    let plugin = runtime.load(name, file).await.map_err(|e| e.to_string())?;
    let info = plugin.info();
    let mut report = format!(
        "{} fits the hoard:plugin/plugin@0.1.0 world\n",
        file.display()
    );
    report += &format!(
        "game: {} {} ({} to {} players)\n  {}\nexports:\n",
        info.name, info.version, info.min_players, info.max_players, info.description
    );
    for export in plugin.exports() {
        report += &format!("  {export}\n");
    }
    Ok(report)
}
