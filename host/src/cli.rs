//! The `hoard` command line: `serve`, `migrate`, `plugin check`, and
//! `queue` (the outbox of a running host, through its admin API).

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
    /// See and manage the outbox of a running host (its admin API).
    Queue {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// See the instances of a cluster, through any one of them.
    Cluster {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Every instance that heartbeats: its id, URL, last beat, sessions
    /// and sockets.
    Status,
}

/// How to reach a running host's admin API.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// The host's address (default: `server.listen` of the config).
    #[arg(long, global = true)]
    url: Option<String>,
    /// The admin token (default: HOARD_ADMIN_TOKEN, then `admin.token` of
    /// the config).
    #[arg(long, global = true)]
    token: Option<String>,
    /// Config file, for the defaults above.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Print the admin API's JSON as it is.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Breakers, outbox depth per backend and plugin, oldest op, replay
    /// rate, dead letters.
    Status,
    /// Ops replay gave up on.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List dead letters of one capability.
    List {
        /// `hot` or `cold`.
        #[arg(long, default_value = "cold")]
        capability: String,
        /// Only ids after this one.
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Queue a dead letter's op again, at the end of its outbox.
    Retry { capability: String, id: u64 },
    /// Drop a dead letter for good.
    Drop { capability: String, id: u64 },
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
            Command::Queue { admin, command } => match queue(&admin, command).await {
                Ok(report) => {
                    print!("{report}");
                    std::process::ExitCode::SUCCESS
                }
                Err(reason) => fail(reason),
            },
            Command::Cluster {
                admin,
                command: ClusterCommand::Status,
            } => match cluster_status(&admin).await {
                Ok(report) => {
                    print!("{report}");
                    std::process::ExitCode::SUCCESS
                }
                Err(reason) => fail(reason),
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
        "{} fits the hoard:plugin/plugin@0.2.0 world\n",
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

/// `hoard queue ...`: one admin API call, its answer printed.
/// The admin API's address and token, from the flags, the environment or
/// the config.
fn admin_target(admin: &AdminArgs) -> Result<(String, String), String> {
    let config = Config::load(admin.config.as_deref()).map_err(|e| e.to_string())?;
    let url = admin
        .url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.server.listen));
    let token = admin
        .token
        .clone()
        .or_else(|| std::env::var("HOARD_ADMIN_TOKEN").ok())
        .or(config.admin.token.clone())
        .ok_or(
            "no admin token: pass --token, set HOARD_ADMIN_TOKEN, or admin.token in the config",
        )?;
    Ok((url, token))
}

/// `hoard cluster status`.
async fn cluster_status(admin: &AdminArgs) -> Result<String, String> {
    let (url, token) = admin_target(admin)?;
    let (status, body) = admin_call(&url, http::Method::GET, "/admin/v1/cluster", &token).await?;
    if !(200..300).contains(&status) {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        return Err(format!("{url} answered {status}: {message}"));
    }
    if admin.json {
        return Ok(format!("{body:#}\n"));
    }
    if body["enabled"] != true {
        return Ok(format!(
            "{url} is not in a cluster (cluster.enabled = false)\n"
        ));
    }
    let mut report = format!(
        "{:<18} {:<28} {:>10} {:>9} {:>8}\n",
        "instance", "url", "last beat", "sessions", "sockets"
    );
    for instance in body["instances"].as_array().into_iter().flatten() {
        let id = instance["id"].as_str().unwrap_or("");
        let marked = if instance["this"] == true {
            format!("{id} *")
        } else {
            id.to_owned()
        };
        report.push_str(&format!(
            "{:<18} {:<28} {:>8}ms {:>9} {:>8}\n",
            marked,
            instance["url"].as_str().unwrap_or(""),
            instance["last_beat_ms_ago"],
            instance["live_sessions"],
            instance["sockets"],
        ));
    }
    Ok(report)
}

async fn queue(admin: &AdminArgs, command: QueueCommand) -> Result<String, String> {
    let (url, token) = admin_target(admin)?;
    let (method, path) = match &command {
        QueueCommand::Status => (http::Method::GET, "/admin/v1/queue".to_owned()),
        QueueCommand::DeadLetters { command } => match command {
            DeadLetterCommand::List {
                capability,
                after,
                limit,
            } => (
                http::Method::GET,
                format!(
                    "/admin/v1/queue/dead-letters?capability={capability}&after={after}&limit={limit}"
                ),
            ),
            DeadLetterCommand::Retry { capability, id } => (
                http::Method::POST,
                format!("/admin/v1/queue/dead-letters/{capability}/{id}/retry"),
            ),
            DeadLetterCommand::Drop { capability, id } => (
                http::Method::DELETE,
                format!("/admin/v1/queue/dead-letters/{capability}/{id}"),
            ),
        },
    };
    let (status, body) = admin_call(&url, method, &path, &token).await?;
    if !(200..300).contains(&status) {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        let code = body["error"]["code"].as_str().unwrap_or("error");
        return Err(format!("{url} answered {status} {code}: {message}"));
    }
    if admin.json {
        return Ok(format!("{body:#}\n"));
    }
    Ok(match command {
        QueueCommand::Status => status_report(&body),
        QueueCommand::DeadLetters {
            command: DeadLetterCommand::List { .. },
        } => dead_letters_report(&body),
        QueueCommand::DeadLetters { .. } => format!(
            "dead letter {} of {} storage: {}\n",
            body["id"],
            body["capability"].as_str().unwrap_or(""),
            body["done"].as_str().unwrap_or("")
        ),
    })
}

fn status_report(body: &serde_json::Value) -> String {
    let capabilities = body["capabilities"].as_array().cloned().unwrap_or_default();
    if capabilities.is_empty() {
        return "no outage layer: storage is embedded (sled) or storage.resilience.enabled is off\n".into();
    }
    let mut report = String::new();
    for c in capabilities {
        let text = |key: &str| c[key].as_str().unwrap_or("").to_owned();
        report += &format!(
            "{} storage ({}): breaker {}{}\n  outbox: {} ops, {} bytes (of {} ops, {} bytes){}\n  replayed: {} in all, {} ops/s now; dead letters: {}\n",
            text("capability"),
            text("backend"),
            text("breaker"),
            c["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            c["queued_ops"],
            c["queued_bytes"],
            c["outbox_ops_max"],
            c["outbox_bytes_max"],
            c["oldest_queued_ms"]
                .as_u64()
                .map(|ms| format!(", oldest waiting {ms} ms"))
                .unwrap_or_default(),
            c["replayed_total"],
            c["replay_rate_per_s"],
            c["dead_letters"],
        );
        if let Some(plugins) = c["queued_by_plugin"].as_object()
            && !plugins.is_empty()
        {
            let list: Vec<String> = plugins.iter().map(|(p, n)| format!("{p} {n}")).collect();
            report += &format!("  queued by plugin: {}\n", list.join(", "));
        }
        if let Some(error) = c["last_error"].as_str() {
            report += &format!("  last replay error: {error}\n");
        }
    }
    report
}

fn dead_letters_report(body: &serde_json::Value) -> String {
    let letters = body["dead_letters"].as_array().cloned().unwrap_or_default();
    if letters.is_empty() {
        return "no dead letters\n".into();
    }
    letters
        .iter()
        .map(|l| {
            format!(
                "{} [{}] {}: {} -- {} (after {} attempts)\n",
                l["id"],
                l["capability"].as_str().unwrap_or(""),
                l["plugin"].as_str().unwrap_or(""),
                l["write"].as_str().unwrap_or(""),
                l["error"].as_str().unwrap_or(""),
                l["attempts"],
            )
        })
        .collect()
}

/// One request to the admin API over HTTP/1 (hyper's client connection):
/// its status and JSON body.
async fn admin_call(
    url: &str,
    method: http::Method,
    path: &str,
    token: &str,
) -> Result<(u16, serde_json::Value), String> {
    use http_body_util::{BodyExt, Empty};
    let address = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// addresses are supported"))?
        .trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot reach {url}: {e} (is `hoard serve` running there?)"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("{url}: {e}"))?;
    tokio::spawn(connection);
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, address)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .to_bytes();
    let json = serde_json::from_slice(&body)
        .map_err(|_| format!("{url} answered {status} with something that is not JSON"))?;
    Ok((status, json))
}
