//! The composition root: opens each capability's backend, loads the
//! plugins, wires sessions over them, and hands the result to the HTTP
//! server. This is the one place that decides what runs on what; the later
//! layers (the outage layer over the service backends, metrics, the
//! real-time hub) are wired here, and `api` stays HTTP only.

use crate::config::{ColdBackend, Config, HotBackend};
use crate::session::Sessions;
use crate::storage::postgres::PostgresStore;
use crate::storage::redis::{ClusterRedis, SingleRedis};
use crate::storage::sled::{OpenError, SledStore};
use crate::storage::{ColdStore, HotStore, Storage};
use crate::wasm::{LoadError, Runtime};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A started host: everything a request handler can reach.
pub struct App {
    sessions: Sessions,
    storage: Storage,
    config: Config,
    /// Kept alive for the plugins' instances (its epoch ticker).
    _runtime: Runtime,
}

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] OpenError),
    #[error("hot storage: {0}")]
    Redis(#[from] crate::storage::redis::ConnectError),
    #[error("cold storage: {0}")]
    Postgres(#[from] crate::storage::postgres::ConnectError),
    #[error("plugin {name:?}: {source}")]
    Plugin { name: String, source: LoadError },
    #[error(transparent)]
    Runtime(LoadError),
    #[error("cannot serve HTTP: {0}")]
    Io(#[from] std::io::Error),
}

impl App {
    /// Opens storage and loads every configured plugin.
    pub async fn start(config: Config) -> Result<App, StartError> {
        let storage = open_storage(&config).await?;
        let runtime =
            Runtime::new(config.wasm.clone(), storage.clone()).map_err(StartError::Runtime)?;
        let mut plugins = Vec::with_capacity(config.plugins.len());
        for plugin in &config.plugins {
            let loaded = runtime
                .load(&plugin.name, &plugin.path)
                .await
                .map_err(|source| StartError::Plugin {
                    name: plugin.name.clone(),
                    source,
                })?;
            tracing::info!(plugin = %plugin.name, game = %loaded.info().name, version = %loaded.info().version, "plugin loaded");
            plugins.push(loaded);
        }
        let sessions = Sessions::new(plugins, storage.hot.clone(), config.sessions.clone());
        Ok(App {
            sessions,
            storage,
            config,
            _runtime: runtime,
        })
    }

    /// The storage this host serves plugins from (tests read it directly).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// Opens each capability's backend. Sled opens only if a capability uses it;
/// Redis and Postgres are checked now, so a missing server stops the start
/// with a message naming it.
pub async fn open_storage(config: &Config) -> Result<Storage, StartError> {
    let uses_sled =
        config.storage.hot == HotBackend::Sled || config.storage.cold == ColdBackend::Sled;
    let sled = if uses_sled {
        Some(SledStore::open(&config.storage.sled)?)
    } else {
        None
    };
    let sled_for = |capability| {
        sled.clone()
            .unwrap_or_else(|| unreachable!("sled is open when {capability} uses it"))
    };
    let hot: Arc<dyn HotStore> = match config.storage.hot {
        HotBackend::Sled => sled_for("hot"),
        HotBackend::Redis => Arc::new(SingleRedis::connect(&config.storage.redis).await?),
        HotBackend::RedisCluster => Arc::new(ClusterRedis::connect(&config.storage.redis).await?),
    };
    let cold: Arc<dyn ColdStore> = match config.storage.cold {
        ColdBackend::Sled => sled_for("cold"),
        ColdBackend::Postgres => Arc::new(PostgresStore::connect(&config.storage.postgres).await?),
    };
    Ok(Storage {
        hot,
        cold,
        limits: config.storage.limits.clone(),
    })
}

/// Starts the host on `listener` and serves until `shutdown` resolves, then
/// lets requests in flight finish (up to `server.shutdown_grace_ms`).
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let app = Arc::new(App::start(config).await?);
    crate::api::serve(app, listener, shutdown).await;
    Ok(())
}
