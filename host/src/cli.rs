//! The `hoard` command line: `serve`, `dev`, `migrate`, `plugin new |
//! build | check`, `data export | import | verify`, and through a running
//! host's admin API `plugin deploy | versions`, `queue` (the outbox) and
//! `cluster`.

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
    /// Develop plugins: build the crates in DIRS, serve them offline, and
    /// rebuild and reload each when its sources change, without a restart.
    Dev {
        /// Plugin crates (default: this folder).
        dirs: Vec<PathBuf>,
        /// Config file (default: the crate's hoard.toml when one crate is
        /// given and has one, else configs/offline.toml if present); its
        /// plugins are replaced by the crates'.
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
    /// Export, import and verify plugins' data as dumps (JSON lines):
    /// backups, and moving data between offline and service mode.
    Data {
        #[command(subcommand)]
        command: DataCommand,
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
pub enum DataCommand {
    /// Write everything the namespaces hold (hot values with the time they
    /// have left, hashes, leaderboards, cold records with their versions,
    /// history) as a dump. Offline, stop the host first: the sled database
    /// is locked while it runs.
    Export {
        /// Config file naming the storage (default: configs/offline.toml
        /// if present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// A namespace to export (default: every configured plugin's).
        #[arg(long = "namespace")]
        namespaces: Vec<String>,
        /// Also the host's own data (`_hoard`): accounts and sessions.
        #[arg(long)]
        include_host: bool,
        /// Write here (default: standard output). The file is written
        /// beside, then renamed, so it is whole or absent.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Apply a dump through the storage traits. Running it again changes
    /// nothing; an item that meets other data follows --on-conflict.
    Import {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Put namespace FROM's items into namespace TO.
        #[arg(long = "namespace-map", value_name = "FROM=TO")]
        namespace_map: Vec<String>,
        /// What an item that meets other data does: keep what is there,
        /// replace it, or stop the import there.
        #[arg(long, value_enum, default_value = "fail")]
        on_conflict: crate::data::OnConflict,
        /// Also import the host's own data (`_hoard`) if the dump has it.
        #[arg(long)]
        include_host: bool,
        /// Read here (default: standard input).
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Check a dump's checksums and that it restores into an empty offline
    /// store, item for item.
    Verify {
        /// The dump.
        file: PathBuf,
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
    /// Start a new plugin: a crate on the guest SDK that is already a small
    /// working game (the starter, plugins/starter), to change into yours.
    New {
        /// The plugin's name: its crate, its game and its storage namespace
        /// (lowercase letters, digits, dashes).
        name: String,
        /// Make it in this folder (as `<dir>/<name>`), a Cargo workspace of
        /// its own with a `hoard.toml` that serves it.
        #[arg(long, default_value = ".", conflicts_with = "member_of")]
        dir: PathBuf,
        /// Make it a member of this Cargo workspace instead (`plugins`, in
        /// hoard's repository), added to its `members`.
        #[arg(long)]
        member_of: Option<PathBuf>,
        /// The guest SDK's folder (default: HOARD_SDK, then the plugins/sdk
        /// of the checkout this hoard was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin crate (or every crate of a workspace) into a component
    /// for wasm32-wasip2, installing the target if it is missing.
    Build {
        /// The crate's folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Deploy a new version of a configured plugin to a running host (its
    /// admin API): new sessions use it, and running ones move to it at
    /// their next call if it upgrades their state.
    Deploy {
        /// The `.wasm` component.
        file: PathBuf,
        /// The plugin it is a new version of, as the host's config names it.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// The versions of each plugin a running host has loaded, and the
    /// sessions on each (its admin API).
    Versions {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Check that a component fits the hoard plugin world and this host's
    /// limits, and print its contract, how it describes itself, its size,
    /// imports, exports, and the memory and tables it asks for.
    Check {
        /// The `.wasm` component.
        file: PathBuf,
        /// Config file whose `wasm` limits to check against (default:
        /// configs/offline.toml if present).
        #[arg(long)]
        config: Option<PathBuf>,
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
        // Colours for a person at a terminal, plain text for a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
            Command::Data { command } => match crate::data::cli::run(command).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(error) => fail(error),
            },
            Command::Dev {
                dirs,
                config,
                listen,
            } => {
                let dirs = if dirs.is_empty() {
                    vec![PathBuf::from(".")]
                } else {
                    dirs
                };
                let own = match (&config, dirs.as_slice()) {
                    (None, [dir]) => Some(dir.join("hoard.toml")).filter(|c| c.is_file()),
                    _ => None,
                };
                let config = match serve_config(config.as_deref().or(own.as_deref()), listen) {
                    Ok(config) => config,
                    Err(error) => return fail(error.to_string()),
                };
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                match crate::dev::run(&dirs, config, shutdown).await {
                    Ok(()) => std::process::ExitCode::SUCCESS,
                    Err(error) => fail(error.to_string()),
                }
            }
            Command::Plugin {
                command:
                    PluginCommand::New {
                        name,
                        dir,
                        member_of,
                        sdk,
                    },
            } => report(plugin_new(&name, dir, member_of, sdk.as_deref())),
            Command::Plugin {
                command: PluginCommand::Build { dir },
            } => report(plugin_build(&dir)),
            Command::Plugin {
                command: PluginCommand::Deploy { file, name, admin },
            } => report(plugin_deploy(&file, &name, &admin).await),
            Command::Plugin {
                command: PluginCommand::Versions { admin },
            } => report(plugin_versions(&admin).await),
            Command::Plugin {
                command: PluginCommand::Check { file, config },
            } => report(plugin_check(&file, config.as_deref()).await),
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

/// Prints a command's report, or fails with its reason.
fn report(result: Result<String, String>) -> std::process::ExitCode {
    match result {
        Ok(report) => {
            print!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(reason) => fail(reason),
    }
}

/// `hoard plugin new`.
fn plugin_new(
    name: &str,
    dir: PathBuf,
    member_of: Option<PathBuf>,
    sdk: Option<&std::path::Path>,
) -> Result<String, String> {
    use crate::plugin_crate::{Layout, new_crate};
    let layout = match member_of {
        Some(workspace) => Layout::Member { workspace },
        None => Layout::Standalone { parent: dir },
    };
    let made = new_crate(name, &layout, sdk).map_err(|e| e.to_string())?;
    let shown = made.display();
    Ok(match layout {
        Layout::Standalone { .. } => format!(
            "made {shown}: the starter game on hoard's SDK, to change into yours\n\
             next:\n  cd {shown}\n  cargo test                       # the rules, natively\n  \
             hoard plugin build\n  hoard serve --config hoard.toml  # then play: see its README.md\n"
        ),
        Layout::Member { workspace } => format!(
            "made {shown} and added {name} to the members of {}\n\
             next: hoard plugin build {shown}, and list it under [[plugins]] in your config\n",
            workspace.join("Cargo.toml").display()
        ),
    })
}

/// `hoard plugin build`.
fn plugin_build(dir: &std::path::Path) -> Result<String, String> {
    let built = crate::plugin_crate::build(dir).map_err(|e| e.to_string())?;
    Ok(built
        .iter()
        .map(|b| {
            format!(
                "built {}: {} ({})\n",
                b.package,
                b.path.display(),
                crate::wasm::Size(b.bytes)
            )
        })
        .collect())
}

/// `hoard plugin deploy`.
async fn plugin_deploy(
    file: &std::path::Path,
    name: &str,
    admin: &AdminArgs,
) -> Result<String, String> {
    let component =
        std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let path = format!("/admin/v1/plugins/{name}");
    let answer = admin_request(admin, http::Method::POST, &path, Some(component)).await;
    let (url, body) = answer.map_err(|error| match error {
        // Not a refusal: the version serves, only the file is old.
        AdminError::Refused { ref code, .. } if code == "not_saved" => error.to_string(),
        AdminError::Refused {
            url,
            status,
            code,
            message,
        } => format!("{url} refused the deploy ({status} {code}): {message}"),
        AdminError::Unasked(reason) => reason,
    })?;
    if admin.json {
        return Ok(format!("{body:#}\n"));
    }
    let mut report = format!(
        "{name} {} is current on {url}: new sessions use it, and running ones move to it at their next call if it upgrades their state\n",
        body["version"].as_str().unwrap_or("?")
    );
    if let Some(previous) = body["previous"].as_str() {
        report += &format!("  was {previous}\n");
    }
    for unloaded in body["unloaded"].as_array().into_iter().flatten() {
        report += &format!(
            "  unloaded {} (no session used it)\n",
            unloaded.as_str().unwrap_or("?")
        );
    }
    Ok(report)
}

/// `hoard plugin versions`.
async fn plugin_versions(admin: &AdminArgs) -> Result<String, String> {
    let (_, body) = admin_request(admin, http::Method::GET, "/admin/v1/plugins", None)
        .await
        .map_err(|e| e.to_string())?;
    if admin.json {
        return Ok(format!("{body:#}\n"));
    }
    let mut report = format!(
        "{:<16} {:<28} {:>8} {:>14}\n",
        "plugin", "version", "current", "live sessions"
    );
    for plugin in body["plugins"].as_array().into_iter().flatten() {
        for version in plugin["versions"].as_array().into_iter().flatten() {
            report += &format!(
                "{:<16} {:<28} {:>8} {:>14}\n",
                plugin["plugin"].as_str().unwrap_or(""),
                version["version"].as_str().unwrap_or(""),
                if version["current"] == true { "*" } else { "" },
                version["live_sessions"],
            );
        }
    }
    Ok(report)
}

/// `hoard plugin check`: the config's limits, then the check.
async fn plugin_check(
    file: &std::path::Path,
    config: Option<&std::path::Path>,
) -> Result<String, String> {
    let config = Config::load(config).map_err(|e| format!("cannot use the config: {e}"))?;
    check_plugin(file, &config.wasm)
        .await
        .map_err(|reason| format!("rejected: {reason}"))
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

/// Checks a plugin file against the limits of `wasm` (the config's): the
/// report on success, the reason on failure.
pub async fn check_plugin(file: &std::path::Path, wasm: &WasmConfig) -> Result<String, String> {
    use crate::wasm::{CONTRACT_VERSION, Size, TABLE_ELEMENTS_MAX};
    use std::fmt::Write as _;
    let store = SledStore::open_temporary().map_err(|e| e.to_string())?;
    let storage = Storage {
        hot: store.clone(),
        cold: store,
        limits: Limits::default(),
    };
    let wasm = WasmConfig {
        instances_max: 4,
        ..wasm.clone()
    };
    let runtime = Runtime::new(wasm, storage).map_err(|e| e.to_string())?;
    let plugin = runtime
        .load("check", file)
        .await
        .map_err(|e| e.to_string())?;
    let (info, shape, limits) = (plugin.info(), plugin.shape(), runtime.config());
    let mut report = String::new();
    let _ = writeln!(
        report,
        "{} fits the hoard:plugin/plugin@{CONTRACT_VERSION} world",
        file.display()
    );
    let _ = writeln!(
        report,
        "contract: hoard:plugin@{} (this host speaks {CONTRACT_VERSION})",
        shape.contract.as_deref().unwrap_or("?")
    );
    let _ = writeln!(
        report,
        "game: {} {} ({} to {} players)\n  {}",
        info.name, info.version, info.min_players, info.max_players, info.description
    );
    if !info.rpcs.is_empty() {
        let _ = writeln!(report, "rpcs: {}", info.rpcs.join(", "));
    }
    let _ = writeln!(
        report,
        "size: {} ({} bytes)",
        Size(shape.bytes as u64),
        shape.bytes
    );
    let _ = writeln!(report, "exports:");
    for export in &shape.exports {
        let _ = writeln!(report, "  {export}");
    }
    let _ = writeln!(report, "imports:");
    for import in &shape.imports {
        let _ = writeln!(report, "  {import}");
    }
    let _ = writeln!(
        report,
        "linear memory: {} at start, in all (limit wasm.memory_bytes_max: {})",
        Size(shape.initial_memory_bytes()),
        Size(limits.memory_bytes_max)
    );
    for (index, memory) in shape.memories.iter().enumerate() {
        let maximum = memory
            .maximum_bytes
            .map_or("no maximum".to_owned(), |m| format!("at most {}", Size(m)));
        let _ = writeln!(
            report,
            "  memory {index}: {} at start, {maximum}",
            Size(memory.initial_bytes)
        );
    }
    let _ = writeln!(report, "tables (limit {TABLE_ELEMENTS_MAX} elements each):");
    for (index, table) in shape.tables.iter().enumerate() {
        let maximum = table
            .maximum_elements
            .map_or("no maximum".to_owned(), |m| format!("at most {m}"));
        let _ = writeln!(
            report,
            "  table {index}: {} elements at start, {maximum}",
            table.initial_elements
        );
    }
    Ok(report)
}

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
    let (url, body) = admin_request(admin, http::Method::GET, "/admin/v1/cluster", None)
        .await
        .map_err(|e| e.to_string())?;
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

/// `hoard queue ...`: one admin API call, its answer printed.
async fn queue(admin: &AdminArgs, command: QueueCommand) -> Result<String, String> {
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
    let (_, body) = admin_request(admin, method, &path, None)
        .await
        .map_err(|e| e.to_string())?;
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

/// Why an admin API call did not succeed.
enum AdminError {
    /// The host could not be asked, or did not answer in JSON.
    Unasked(String),
    /// The host answered with an error.
    Refused {
        url: String,
        status: u16,
        code: String,
        message: String,
    },
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::Unasked(reason) => f.write_str(reason),
            AdminError::Refused {
                url,
                status,
                code,
                message,
            } => write!(f, "{url} answered {status} {code}: {message}"),
        }
    }
}

/// One call to the admin API of the host `admin` names: the host's URL
/// and its JSON answer when it succeeded.
async fn admin_request(
    admin: &AdminArgs,
    method: http::Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(String, serde_json::Value), AdminError> {
    let (url, token) = admin_target(admin).map_err(AdminError::Unasked)?;
    let (status, answer) = admin_call(&url, method, path, &token, body)
        .await
        .map_err(AdminError::Unasked)?;
    if !(200..300).contains(&status) {
        let text = |key: &str, or: &str| answer["error"][key].as_str().unwrap_or(or).to_owned();
        return Err(AdminError::Refused {
            code: text("code", "error"),
            message: text("message", "no message"),
            url,
            status,
        });
    }
    Ok((url, answer))
}

/// One request to the admin API over HTTP/1 (hyper's client connection),
/// with `body` if any: its status and JSON body.
async fn admin_call(
    url: &str,
    method: http::Method,
    path: &str,
    token: &str,
    body: Option<Vec<u8>>,
) -> Result<(u16, serde_json::Value), String> {
    use http_body_util::{BodyExt, Full};
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
        .body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))
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
