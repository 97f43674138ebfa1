//! The `hoard` binary: parses the command line and runs the library.

use anyhow::Context;
use clap::Parser;
use hoard::cli::{Cli, Command, PluginCommand};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "hoard=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve { config, listen } => {
                let config = hoard::cli::serve_config(config.as_deref(), listen)?;
                let listener = tokio::net::TcpListener::bind(config.server.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", config.server.listen))?;
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                    tracing::info!("shutting down");
                };
                hoard::run(config, listener, shutdown).await?;
                Ok(())
            }
            Command::Plugin { command: PluginCommand::Check { file } } => {
                match hoard::cli::check_plugin(&file).await {
                    Ok(report) => {
                        print!("{report}");
                        Ok(())
                    }
                    Err(reason) => {
                        eprintln!("rejected: {reason}");
                        std::process::exit(1);
                    }
                }
            }
        }
    })
}
