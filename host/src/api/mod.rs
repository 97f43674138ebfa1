//! The HTTP API on hyper 1, and [`run`], the host's one entry point.
//!
//! Routes (JSON in and out; see `routes` for each):
//! - `GET /healthz`, `GET /readyz`
//! - `GET /v1/games`
//! - `POST /v1/games/{game}/sessions`
//! - `GET /v1/sessions/{id}`
//! - `POST /v1/sessions/{id}/join`
//! - `POST /v1/sessions/{id}/actions` (bearer token)
//! - `GET /v1/sessions/{id}/view` (bearer token)
//!
//! **Invariant:** this is the only module that knows the API's JSON wire
//! format, and errors leave it as `{"error": {"code", "message"}}` with a
//! stable code and no backend text.

mod error;
mod routes;

pub use error::ApiError;

use crate::config::{ColdBackend, Config, HotBackend};
use crate::session::Sessions;
use crate::storage::postgres::PostgresStore;
use crate::storage::redis::{ClusterRedis, SingleRedis};
use crate::storage::sled::{OpenError, SledStore};
use crate::storage::{ColdStore, HotStore, Storage};
use crate::wasm::{LoadError, Runtime};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Everything a request handler can reach.
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
}

impl App {
    /// The storage this host serves plugins from (tests read it directly).
    pub fn storage(&self) -> &Storage {
        &self.storage
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
    serve(app, listener, shutdown).await;
    Ok(())
}

/// Accepts connections until `shutdown`, each served on its own task.
pub async fn serve(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let connections = Arc::new(Semaphore::new(app.config.server.connections_max));
    let graceful = GracefulShutdown::new();
    let grace = Duration::from_millis(app.config.server.shutdown_grace_ms);
    tokio::pin!(shutdown);
    tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving");
    loop {
        // Wait for room before accepting: past connections_max, clients queue
        // in the kernel's backlog instead of in our memory.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("semaphore never closed"),
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request| {
            let app = app.clone();
            async move { Ok::<_, std::convert::Infallible>(routes::handle(&app, request).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period passed with requests still in flight");
    }
}
