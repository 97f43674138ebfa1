//! The composition root: opens each capability's backend, loads the
//! plugins, wires sessions over them, and hands the result to the HTTP
//! server. This is the one place that decides what runs on what; the later
//! layers (the outage layer over the service backends, metrics, the
//! real-time hub) are wired here, and `api` stays HTTP only.

use crate::accounts::Accounts;
use crate::catalog::{Catalog, DeployError, Deployed};
use crate::cluster::Cluster;
use crate::config::{ColdBackend, Config, HotBackend};
use crate::metrics::Metrics;
use crate::realtime::Hub;
use crate::rpc::Rpcs;
use crate::session::Sessions;
use crate::storage::measured::{MeasuredCold, MeasuredHot, Observe};
use crate::storage::postgres::PostgresStore;
use crate::storage::redis::{ClusterRedis, SingleRedis};
use crate::storage::resilient::{Connecting, LazyCold, LazyHot, Resilience};
use crate::storage::sled::{OpenError, SledStore};
use crate::storage::{ColdStore, HotStore, Namespace, Storage};
use crate::wasm::{LoadError, Runtime};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A started host: everything a request handler can reach.
pub struct App {
    sessions: Arc<Sessions>,
    accounts: Accounts,
    rpcs: Rpcs,
    storage: Storage,
    /// The outage layer over Redis and PostgreSQL, when they are used.
    resilience: Option<Arc<Resilience>>,
    /// Session ownership across instances, in cluster mode.
    cluster: Option<Arc<Cluster>>,
    metrics: Arc<Metrics>,
    config: Config,
    /// Loads deployed plugins; kept alive for the plugins' instances (its
    /// epoch ticker).
    runtime: Runtime,
    /// The games at the versions of their plugins that are loaded.
    catalog: Arc<Catalog>,
    /// The scheduled backups' task (`backup.interval_ms`), stopped with
    /// the app.
    backups: Option<tokio::task::JoinHandle<()>>,
    /// Held through a deploy: one at a time.
    deploying: tokio::sync::Mutex<()>,
}

/// Why a deploy failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployFailure {
    #[error(transparent)]
    Refused(#[from] DeployError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(
        "{plugin} serves the game {serves:?}, and the component is the game {deployed:?}: \
         a new game needs a plugin of its own in the config"
    )]
    OtherGame {
        plugin: String,
        serves: String,
        deployed: String,
    },
    /// The new version serves, but a restart would load the old file.
    #[error(
        "version {version} is deployed and serving, but could not be saved to {path} for the \
         next start ({reason}): a restart would serve the file there now"
    )]
    NotSaved {
        version: String,
        path: String,
        reason: String,
    },
}

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] OpenError),
    /// A server could not be reached (the message names it and how to
    /// start it).
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    NotDurable(String),
    #[error("the outbox: {0}")]
    Outbox(crate::storage::Error),
    #[error("plugin {name:?}: {source}")]
    Plugin { name: String, source: LoadError },
    #[error(transparent)]
    Runtime(LoadError),
    #[error("cannot serve HTTP: {0}")]
    Io(#[from] std::io::Error),
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(backups) = &self.backups {
            backups.abort();
        }
    }
}

impl App {
    /// Opens storage and loads every configured plugin.
    pub async fn start(config: Config) -> Result<App, StartError> {
        let metrics = Arc::new(Metrics::new());
        let (storage, resilience) = open_storage(&config, metrics.clone()).await?;
        let runtime =
            Runtime::new(config.wasm.clone(), storage.clone()).map_err(StartError::Runtime)?;
        let mut games = HashMap::with_capacity(config.plugins.len());
        for plugin in &config.plugins {
            let loaded = runtime
                .load(&plugin.name, &plugin.path)
                .await
                .map_err(|source| StartError::Plugin {
                    name: plugin.name.clone(),
                    source,
                })?;
            tracing::info!(plugin = %plugin.name, game = %loaded.info().name, version = %loaded.info().version, "plugin loaded");
            games.insert(loaded.namespace().as_str().to_owned(), Arc::new(loaded));
        }
        let catalog = Arc::new(Catalog::new(
            games,
            config.wasm.plugin_versions_max as usize,
        ));
        let rpcs = Rpcs::new(
            catalog.clone(),
            config.wasm.rpc_instances_max,
            metrics.clone(),
        );
        let cluster = match config.cluster.enabled {
            true => Some(connect_cluster(&config, metrics.clone()).await?),
            false => None,
        };
        // In-process: a session's sockets are on the instance that owns it
        // (other instances relay theirs there).
        let hub = Hub::new(config.realtime.clone(), metrics.clone());
        let sessions = Arc::new(Sessions::new(
            catalog.clone(),
            storage.hot.clone(),
            storage.cold.clone(),
            config.sessions.clone(),
            metrics.clone(),
            hub,
            cluster.clone(),
        ));
        sessions.start_alarms();
        if let Some(cluster) = &cluster {
            sessions.start_leases();
            let (weak, beating) = (Arc::downgrade(&sessions), metrics.clone());
            cluster.start(move || {
                let live = weak.upgrade().map_or(0, |s| s.live_count());
                (live, beating.ws_open())
            });
            tracing::info!(instance = cluster.id(), url = cluster.url(), "in a cluster");
        }
        let accounts = Accounts::new(storage.cold.clone(), config.accounts.clone());
        let backups = (config.backup.interval_ms > 0).then(|| {
            let mut namespaces: Vec<Namespace> = config
                .plugins
                .iter()
                .filter_map(|plugin| Namespace::plugin(&plugin.name).ok())
                .collect();
            if config.backup.include_host {
                namespaces.push(Namespace::host());
            }
            crate::data::backup::start(
                storage.clone(),
                namespaces,
                config.backup.clone(),
                metrics.clone(),
            )
        });
        Ok(App {
            sessions,
            accounts,
            rpcs,
            storage,
            resilience,
            cluster,
            metrics,
            config,
            runtime,
            catalog,
            backups,
            deploying: tokio::sync::Mutex::new(()),
        })
    }

    /// Loads `component` as the new version of the configured plugin
    /// `name`, makes it current (new sessions and RPCs use it; sessions
    /// already running stay on theirs, see [`Catalog`]) and saves it over
    /// the plugin's configured file, so a restart serves it too.
    pub async fn deploy(&self, name: &str, component: &[u8]) -> Result<Deployed, DeployFailure> {
        let configured = self
            .config
            .plugins
            .iter()
            .find(|plugin| plugin.name == name)
            .ok_or_else(|| DeployError::UnknownGame(name.to_owned()))?;
        // One deploy at a time: the catalog's order and the file's agree.
        let _deploying = self.deploying.lock().await;
        let plugin = self
            .runtime
            .load_bytes(name, "the deployed component", component)
            .await?;
        if let Some(current) = self.catalog.current(name)
            && current.info().name != plugin.info().name
        {
            return Err(DeployFailure::OtherGame {
                plugin: name.to_owned(),
                serves: current.info().name.clone(),
                deployed: plugin.info().name.clone(),
            });
        }
        let deployed = self.catalog.deploy(name, Arc::new(plugin))?;
        // RPCs made instances of the version before: they go now, so
        // nothing but sessions holds an older version.
        self.rpcs.retire(name);
        tracing::info!(
            plugin = name,
            version = %deployed.version,
            previous = ?deployed.previous,
            unloaded = ?deployed.unloaded,
            "plugin deployed"
        );
        save_atomically(&configured.path, component).map_err(|reason| DeployFailure::NotSaved {
            version: deployed.version.clone(),
            path: configured.path.display().to_string(),
            reason,
        })?;
        Ok(deployed)
    }

    /// The games' loaded versions.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The storage this host serves plugins from (tests read it directly).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    pub fn rpcs(&self) -> &Rpcs {
        &self.rpcs
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The outage layer, if a service backend is in use.
    pub fn resilience(&self) -> Option<&Arc<Resilience>> {
        self.resilience.as_ref()
    }

    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }
}

/// Opens each capability's backend. Sled opens only if a capability uses
/// it. Redis and Postgres are checked now: a missing server stops the start
/// with a message naming it, unless the outage layer is on, which puts
/// itself over them and lets the host start while they are down (it
/// connects when they answer). With `storage.require_durable`, a server
/// that would lose acknowledged writes stops the start.
/// Joins the cluster of `config.cluster` on the hot store's Redis.
async fn connect_cluster(
    config: &Config,
    metrics: Arc<Metrics>,
) -> Result<Arc<Cluster>, StartError> {
    let url = config
        .cluster
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.server.listen));
    Cluster::connect(
        &config.storage.redis,
        config.storage.hot,
        &config.cluster,
        url,
        config.sessions.ttl_ms,
        metrics,
    )
    .await
    .map_err(StartError::Connect)
}

pub async fn open_storage(
    config: &Config,
    observe: Arc<dyn Observe>,
) -> Result<(Storage, Option<Arc<Resilience>>), StartError> {
    let storage_config = &config.storage;
    let uses_sled =
        storage_config.hot == HotBackend::Sled || storage_config.cold == ColdBackend::Sled;
    let sled = if uses_sled {
        Some(SledStore::open(&storage_config.sled)?)
    } else {
        None
    };
    let sled_for = |capability| {
        sled.clone()
            .unwrap_or_else(|| unreachable!("sled is open when {capability} uses it"))
    };
    let uses_services =
        storage_config.hot != HotBackend::Sled || storage_config.cold != ColdBackend::Sled;
    let resilience = if uses_services && storage_config.resilience.enabled {
        Some(Resilience::open(&storage_config.resilience)?)
    } else {
        None
    };
    let retry_every = Duration::from_millis(storage_config.resilience.probe_interval_ms.max(1));
    let hot: Arc<dyn HotStore> = match storage_config.hot {
        HotBackend::Sled => sled_for("hot"),
        HotBackend::Redis | HotBackend::RedisCluster => {
            let cluster = storage_config.hot == HotBackend::RedisCluster;
            let redis = storage_config.redis.clone();
            let require_durable = storage_config.require_durable;
            let connect = move || -> Connecting<dyn HotStore> {
                let redis = redis.clone();
                Box::pin(async move { connect_redis(&redis, cluster, require_durable).await })
            };
            let name = if cluster { "redis-cluster" } else { "redis" };
            match (&resilience, connect().await) {
                (_, Ok(store)) => guard_hot(&resilience, store, name)?,
                (_, Err(reason)) if reason.starts_with(NOT_DURABLE) => {
                    return Err(StartError::NotDurable(format!("hot storage: {reason}")));
                }
                (None, Err(reason)) => {
                    return Err(StartError::Connect(format!("hot storage: {reason}")));
                }
                (Some(_), Err(reason)) => {
                    tracing::warn!(%reason, "hot storage is down at start: writes queue in the outbox until it answers");
                    guard_hot(
                        &resilience,
                        Arc::new(LazyHot::new(Box::new(connect), retry_every)),
                        name,
                    )?
                }
            }
        }
    };
    let cold: Arc<dyn ColdStore> = match storage_config.cold {
        ColdBackend::Sled => sled_for("cold"),
        ColdBackend::Postgres => {
            let postgres = storage_config.postgres.clone();
            let require_durable = storage_config.require_durable;
            let connect = move || -> Connecting<dyn ColdStore> {
                let postgres = postgres.clone();
                Box::pin(async move { connect_postgres(&postgres, require_durable).await })
            };
            match (&resilience, connect().await) {
                (_, Ok(store)) => guard_cold(&resilience, store)?,
                (_, Err(reason)) if reason.starts_with(NOT_DURABLE) => {
                    return Err(StartError::NotDurable(format!("cold storage: {reason}")));
                }
                (None, Err(reason)) => {
                    return Err(StartError::Connect(format!("cold storage: {reason}")));
                }
                (Some(_), Err(reason)) => {
                    tracing::warn!(%reason, "cold storage is down at start: writes queue in the outbox until it answers");
                    guard_cold(
                        &resilience,
                        Arc::new(LazyCold::new(Box::new(connect), retry_every)),
                    )?
                }
            }
        }
    };
    let backend_name = |hot| match (hot, storage_config.hot, storage_config.cold) {
        (true, HotBackend::Sled, _) | (false, _, ColdBackend::Sled) => "sled",
        (true, HotBackend::Redis, _) => "redis",
        (true, HotBackend::RedisCluster, _) => "redis-cluster",
        (false, _, ColdBackend::Postgres) => "postgres",
    };
    let hot = Arc::new(MeasuredHot {
        inner: hot,
        backend: backend_name(true),
        observe: observe.clone(),
    });
    let cold = Arc::new(MeasuredCold {
        inner: cold,
        backend: backend_name(false),
        observe,
    });
    Ok((
        Storage {
            hot,
            cold,
            limits: storage_config.limits.clone(),
        },
        resilience,
    ))
}

/// How a connection error says the server would lose writes, so the start
/// stops even with the outage layer on.
const NOT_DURABLE: &str = "not durable: ";

fn guard_hot(
    resilience: &Option<Arc<Resilience>>,
    store: Arc<dyn HotStore>,
    name: &'static str,
) -> Result<Arc<dyn HotStore>, StartError> {
    match resilience {
        Some(resilience) => Ok(resilience
            .guard_hot(store, name)
            .map_err(StartError::Outbox)?),
        None => Ok(store),
    }
}

fn guard_cold(
    resilience: &Option<Arc<Resilience>>,
    store: Arc<dyn ColdStore>,
) -> Result<Arc<dyn ColdStore>, StartError> {
    match resilience {
        Some(resilience) => Ok(resilience
            .guard_cold(store, "postgres")
            .map_err(StartError::Outbox)?),
        None => Ok(store),
    }
}

/// Connects to Redis (or a cluster) and checks it keeps its data.
async fn connect_redis(
    config: &crate::storage::redis::RedisConfig,
    cluster: bool,
    require_durable: bool,
) -> Result<Arc<dyn HotStore>, String> {
    let (store, problem): (Arc<dyn HotStore>, _) = if cluster {
        let store = ClusterRedis::connect(config)
            .await
            .map_err(|e| e.to_string())?;
        let problem = durability_problem(require_durable, store.durability_problem()).await?;
        (Arc::new(store), problem)
    } else {
        let store = SingleRedis::connect(config)
            .await
            .map_err(|e| e.to_string())?;
        let problem = durability_problem(require_durable, store.durability_problem()).await?;
        (Arc::new(store), problem)
    };
    match problem {
        None => Ok(store),
        Some(problem) => Err(format!("{NOT_DURABLE}{problem}")),
    }
}

/// What `check` finds wrong with a backend's durability, if it is
/// `required`.
async fn durability_problem(
    required: bool,
    check: impl Future<Output = crate::storage::Result<Option<String>>>,
) -> Result<Option<String>, String> {
    if !required {
        return Ok(None);
    }
    check.await.map_err(|e| e.to_string())
}

/// Connects to PostgreSQL (applying migrations if configured) and checks
/// it keeps what it acknowledges.
async fn connect_postgres(
    config: &crate::storage::postgres::PostgresConfig,
    require_durable: bool,
) -> Result<Arc<dyn ColdStore>, String> {
    let store = PostgresStore::connect(config)
        .await
        .map_err(|e| e.to_string())?;
    match durability_problem(require_durable, store.durability_problem()).await? {
        None => Ok(Arc::new(store)),
        Some(problem) => Err(format!("{NOT_DURABLE}{problem}")),
    }
}

/// Starts the host on `listener` and serves until `shutdown` resolves, then
/// lets requests in flight finish (up to `server.shutdown_grace_ms`).
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let mut config = config;
    if config.cluster.enabled && config.cluster.advertise_url.is_none() {
        let address = listener.local_addr()?;
        if address.ip().is_unspecified() {
            return Err(StartError::Connect(format!(
                "cluster: listening on {address}, the other instances need an address to reach this one: set cluster.advertise_url"
            )));
        }
        config.cluster.advertise_url = Some(format!("http://{address}"));
    }
    let app = Arc::new(App::start(config).await?);
    crate::api::serve(app, listener, shutdown).await;
    Ok(())
}

/// Writes `bytes` to `path` through a file beside it, synced and renamed
/// over it, so the path holds the old component or the new one, never
/// half of one, after a crash too.
fn save_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let partial = path.with_extension("wasm.partial");
    let saved = std::fs::File::create(&partial)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&partial, path))
        .and_then(|()| {
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
            std::fs::File::open(folder.unwrap_or(std::path::Path::new(".")))?.sync_all()
        });
    saved.map_err(|error| {
        let _ = std::fs::remove_file(&partial);
        error.to_string()
    })
}
