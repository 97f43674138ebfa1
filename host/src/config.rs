//! Configuration: built-in defaults, then a TOML file, then `HOARD_*`
//! environment variables (nested keys joined by `__`, e.g.
//! `HOARD_SERVER__LISTEN=0.0.0.0:7878`), then command-line flags.
//!
//! The defaults are the offline mode of `configs/offline.toml`: embedded sled
//! storage, no server needed. Unknown keys are refused, and every error names
//! the key at fault.

use crate::accounts::AccountsConfig;
use crate::storage::Limits;
use crate::storage::postgres::PostgresConfig;
use crate::storage::redis::RedisConfig;
use crate::storage::resilient::ResilienceConfig;
use crate::storage::sled::SledConfig;
use crate::wasm::WasmConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration of a hoard host.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub wasm: WasmConfig,
    pub sessions: SessionsConfig,
    pub accounts: AccountsConfig,
    pub admin: AdminConfig,
    pub realtime: RealtimeConfig,
    pub cluster: ClusterConfig,
    pub backup: BackupConfig,
    /// The game plugins to load, in order.
    pub plugins: Vec<PluginConfig>,
}

/// Scheduled backups: a dump (as `hoard data export` writes it) of every
/// configured plugin's data, every `interval_ms`, into `folder`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// How often; 0 (the default) turns scheduled backups off.
    pub interval_ms: u64,
    /// Where the dumps go, as `hoard-<Unix time in ms>.dump`; created if
    /// missing.
    pub folder: PathBuf,
    /// How many dumps are kept: the newest; older ones are deleted after
    /// a new one is written. At least 1.
    pub keep: usize,
    /// Whether dumps hold the host's own data too (accounts, sessions).
    pub include_host: bool,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            interval_ms: 0,
            folder: PathBuf::from("data/backups"),
            keep: 7,
            include_host: true,
        }
    }
}

/// The admin API (`/admin/v1`) and the CLI verbs that call it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The bearer token the admin API asks for: at least 16 characters.
    /// Unset, the admin API is off. Best given as `HOARD_ADMIN__TOKEN`
    /// rather than in a file.
    pub token: Option<String>,
    /// Largest plugin component a deploy may send
    /// (`POST /admin/v1/plugins/{name}`).
    pub component_bytes_max: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            token: None,
            component_bytes_max: 32 * 1024 * 1024,
        }
    }
}

/// The HTTP server, and what one client may hold of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted; larger ones get 413.
    pub body_bytes_max: u64,
    /// Most bytes of a request head (request line and headers) a connection
    /// buffers; a larger head gets 431. At least 8192.
    pub header_bytes_max: usize,
    /// Most client connections served at once; more wait to be accepted.
    pub connections_max: usize,
    /// Most connections one client (an IPv4 address, or an IPv6 /64) may
    /// hold at once; more are closed as they arrive. Behind a reverse proxy
    /// every client is the proxy: raise it to `connections_max` there.
    pub connections_per_client_max: usize,
    /// Longest wait for a request's headers, counted from when the
    /// connection is ready for its next request: so also how long an idle
    /// keep-alive connection stays open.
    pub header_read_timeout_ms: u64,
    /// Longest a request body may take to arrive in full; past it the
    /// client gets 408 and the connection closes.
    pub body_read_timeout_ms: u64,
    /// Longest one response write may wait for the client to take bytes;
    /// past it the connection closes.
    pub write_timeout_ms: u64,
    /// How often one client may create a session.
    pub creates_per_client: RateLimit,
    /// How often one client may join a session.
    pub joins_per_client: RateLimit,
    /// How often one client may register an account.
    pub registrations_per_client: RateLimit,
    /// How often one client may try to log in (to any account; each
    /// account has its own limit too, `accounts.logins_per_account`).
    pub logins_per_client: RateLimit,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            body_bytes_max: 64 * 1024,
            header_bytes_max: 16 * 1024,
            connections_max: 4096,
            connections_per_client_max: 256,
            header_read_timeout_ms: 15_000,
            body_read_timeout_ms: 10_000,
            write_timeout_ms: 10_000,
            creates_per_client: RateLimit {
                per_minute: 60,
                burst: 20,
            },
            joins_per_client: RateLimit {
                per_minute: 240,
                burst: 40,
            },
            registrations_per_client: RateLimit {
                per_minute: 10,
                burst: 10,
            },
            logins_per_client: RateLimit {
                per_minute: 30,
                burst: 10,
            },
            shutdown_grace_ms: 5000,
        }
    }
}

/// A rate per client: a bucket of `burst` calls that refills at
/// `per_minute`. A call when it is empty gets 429 with `Retry-After`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

/// Which backend serves each capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HotBackend {
    /// Embedded, in `storage.sled`.
    Sled,
    /// One Redis server at `storage.redis.url`.
    Redis,
    /// A Redis Cluster through `storage.redis.cluster_nodes`.
    RedisCluster,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColdBackend {
    /// Embedded, in `storage.sled`.
    Sled,
    /// PostgreSQL at `storage.postgres.url`.
    Postgres,
}

/// Storage backends and limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub hot: HotBackend,
    pub cold: ColdBackend,
    pub sled: SledConfig,
    pub redis: RedisConfig,
    pub postgres: PostgresConfig,
    pub limits: Limits,
    /// The outage layer over Redis and PostgreSQL.
    pub resilience: ResilienceConfig,
    /// Refuse to start against a Redis that does not keep its data on disk
    /// (`appendonly no`) or a PostgreSQL that acknowledges commits before
    /// they are durable (`synchronous_commit = off`, `fsync = off`): session
    /// records live in hot storage, so a Redis that forgets loses games.
    /// Off for development against a throwaway server.
    pub require_durable: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            hot: HotBackend::Sled,
            cold: ColdBackend::Sled,
            sled: SledConfig::default(),
            redis: RedisConfig::default(),
            postgres: PostgresConfig::default(),
            limits: Limits::default(),
            resilience: ResilienceConfig::default(),
            require_durable: false,
        }
    }
}

/// Game sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// A session is forgotten this long after its last change.
    pub ttl_ms: u64,
    /// A session nobody has joined is forgotten this long after it was
    /// created: an unplayed session should not cost storage for `ttl_ms`.
    pub unjoined_ttl_ms: u64,
    /// Most sessions kept in memory, each with its plugin instance; beyond
    /// it the least recently used idle one is dropped (it reloads from
    /// storage). Sessions being created count too, so creating never runs
    /// the instance pool dry: `wasm.instances_max` must be at least
    /// `live_max + 8` (the 8 load and check plugins).
    pub live_max: usize,
    /// Most sessions that keep their plugin instance between calls (an
    /// instance holds some 90 to 250 KB of wasm memory); past it, the
    /// least recently used idle session lets its instance go, keeps its
    /// record, and makes a new instance at its next call (tens of
    /// microseconds). Lower it to trade CPU for memory.
    pub instances_kept_max: usize,
    /// Largest state a plugin may return for one session.
    pub state_bytes_max: u64,
    /// Largest action or config document a client may send.
    pub document_bytes_max: u64,
    /// Most answers kept per session for actions sent with an
    /// `Idempotency-Key` (the oldest goes first).
    pub idempotency_keys_max: usize,
    /// Whether the creator of a session may choose its seed
    /// (`{"seed": n}`), for replays, tests and practice. Such a session is
    /// not fair play (its creator can replay every shuffle) and its summary
    /// says so. Off: the host chooses every seed, publishes a commitment to
    /// it, and reveals it when the game ends.
    pub client_seeds: bool,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            ttl_ms: 7 * 24 * 3600 * 1000,
            unjoined_ttl_ms: 10 * 60 * 1000,
            live_max: 1000,
            instances_kept_max: 1000,
            state_bytes_max: 1024 * 1024,
            document_bytes_max: 16 * 1024,
            idempotency_keys_max: 16,
            client_seeds: false,
        }
    }
}

/// Several instances sharing Redis and PostgreSQL (see `cluster`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Off: this host owns every session it serves. On: instances meet in
    /// the Redis of `storage.redis` (`storage.hot` must be Redis), each
    /// session is owned by one instance at a time, and requests for it
    /// are forwarded there.
    pub enabled: bool,
    /// This instance's id, unique in the cluster; random when unset (a
    /// restarted instance is then a new one).
    pub instance_id: Option<String>,
    /// Where the other instances reach this one, e.g.
    /// `http://10.0.0.5:7878`; unset, `http://` and the listening address
    /// (which must then not be a wildcard address).
    pub advertise_url: Option<String>,
    /// How long a session's lease lasts unrenewed: how long the sessions of
    /// an instance that died wait before another takes them.
    pub lease_ms: u64,
    /// How often an instance says it is up.
    pub heartbeat_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            enabled: false,
            instance_id: None,
            advertise_url: None,
            lease_ms: 5000,
            heartbeat_ms: 1000,
        }
    }
}

/// WebSocket events (`GET /v1/sessions/{id}/events`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealtimeConfig {
    /// Events kept per watched session for clients that reconnect; a
    /// client that missed more gets the full state instead.
    pub backlog_max: usize,
    /// Bytes of views and messages one session's backlog may hold.
    pub backlog_bytes_max: usize,
    /// Events waiting to be sent on one socket. A client that lets more
    /// pile up is disconnected (close code 4008): a slow client never
    /// grows the host's memory.
    pub send_queue_max: usize,
    /// Largest message a client may send on a socket; a larger one closes
    /// the socket (1009).
    pub frame_bytes_max: usize,
    /// Time a client has to send its `hello` after connecting.
    pub hello_timeout_ms: u64,
    /// How often the host pings a socket.
    pub ping_interval_ms: u64,
    /// A socket from which nothing arrives (not even a pong) for this long
    /// is closed (4009).
    pub idle_timeout_ms: u64,
    /// How long a session's events are kept for a reconnect after its last
    /// socket closed.
    pub resume_window_ms: u64,
    /// How often one player may act over sockets.
    pub actions_per_player: RateLimit,
    /// How often one client may open a socket.
    pub sockets_per_client: RateLimit,
    /// Most messages a plugin may publish to its session in one call.
    pub messages_per_call_max: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            backlog_max: 64,
            backlog_bytes_max: 64 * 1024,
            send_queue_max: 64,
            frame_bytes_max: 32 * 1024,
            hello_timeout_ms: 10_000,
            ping_interval_ms: 20_000,
            idle_timeout_ms: 60_000,
            resume_window_ms: 120_000,
            actions_per_player: RateLimit {
                per_minute: 1200,
                burst: 40,
            },
            sockets_per_client: RateLimit {
                per_minute: 120,
                burst: 30,
            },
            messages_per_call_max: 32,
        }
    }
}

/// One plugin: its name (also its storage namespace) and its component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Lowercase letters, digits and '-', starting with a letter.
    pub name: String,
    /// The `.wasm` component, relative to the working directory.
    pub path: PathBuf,
}

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("invalid configuration: key `{key}`: {reason}")]
    Key { key: &'static str, reason: String },
}

impl Config {
    /// The default config file, used when no `--config` is given and it exists.
    pub const DEFAULT_FILE: &'static str = "configs/offline.toml";

    /// Loads defaults, then `file` (or the default file if present), then the
    /// `HOARD_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(file) if !file.exists() => return Err(ConfigError::MissingFile(file.to_owned())),
            Some(file) => figment = figment.merge(Toml::file_exact(file)),
            None => figment = figment.merge(Toml::file(Self::DEFAULT_FILE)),
        }
        figment = figment.merge(Env::prefixed("HOARD_").split("__"));
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types cannot: sizes that must be positive, names, pools.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |key: &'static str, value: u64| {
            if value == 0 {
                Err(ConfigError::Key {
                    key,
                    reason: "must be greater than 0".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("server.body_bytes_max", self.server.body_bytes_max)?;
        positive("server.connections_max", self.server.connections_max as u64)?;
        if self.server.header_bytes_max < 8192 {
            return Err(ConfigError::Key {
                key: "server.header_bytes_max",
                reason: "must be at least 8192 (HTTP/1's own minimum in hyper)".into(),
            });
        }
        if !(1..=self.server.connections_max).contains(&self.server.connections_per_client_max) {
            return Err(ConfigError::Key {
                key: "server.connections_per_client_max",
                reason: format!(
                    "must be 1 to server.connections_max ({})",
                    self.server.connections_max
                ),
            });
        }
        positive(
            "server.header_read_timeout_ms",
            self.server.header_read_timeout_ms,
        )?;
        positive(
            "server.body_read_timeout_ms",
            self.server.body_read_timeout_ms,
        )?;
        positive("server.write_timeout_ms", self.server.write_timeout_ms)?;
        positive("backup.keep", self.backup.keep as u64)?;
        for (key, limit) in [
            ("server.creates_per_client", &self.server.creates_per_client),
            ("server.joins_per_client", &self.server.joins_per_client),
            (
                "server.registrations_per_client",
                &self.server.registrations_per_client,
            ),
            ("server.logins_per_client", &self.server.logins_per_client),
            (
                "accounts.logins_per_account",
                &self.accounts.logins_per_account,
            ),
            (
                "realtime.actions_per_player",
                &self.realtime.actions_per_player,
            ),
            (
                "realtime.sockets_per_client",
                &self.realtime.sockets_per_client,
            ),
        ] {
            if limit.per_minute == 0 || limit.burst == 0 {
                return Err(ConfigError::Key {
                    key,
                    reason: "per_minute and burst must both be greater than 0".into(),
                });
            }
        }
        positive(
            "storage.limits.key_bytes_max",
            self.storage.limits.key_bytes_max,
        )?;
        positive(
            "storage.limits.value_bytes_max",
            self.storage.limits.value_bytes_max,
        )?;
        // A dump line holds a value hex-encoded, or a body escaped: these
        // keep every item within what a dump reader takes.
        for (key, value, max) in [
            (
                "storage.limits.value_bytes_max",
                self.storage.limits.value_bytes_max,
                crate::data::dump::VALUE_BYTES_MAX,
            ),
            (
                "storage.limits.key_bytes_max",
                self.storage.limits.key_bytes_max,
                crate::data::dump::KEY_BYTES_MAX,
            ),
        ] {
            if value > max {
                return Err(ConfigError::Key {
                    key,
                    reason: format!("must be at most {max}, so dumps can hold every item"),
                });
            }
        }
        positive("accounts.import_bytes_max", self.accounts.import_bytes_max)?;
        positive(
            "storage.limits.read_rows_max",
            self.storage.limits.read_rows_max,
        )?;
        positive("wasm.memory_bytes_max", self.wasm.memory_bytes_max)?;
        positive("wasm.call_timeout_ms", self.wasm.call_timeout_ms)?;
        positive("wasm.call_wall_timeout_ms", self.wasm.call_wall_timeout_ms)?;
        positive("wasm.epoch_tick_ms", self.wasm.epoch_tick_ms)?;
        positive("wasm.log_lines_per_s", u64::from(self.wasm.log_lines_per_s))?;
        positive("admin.component_bytes_max", self.admin.component_bytes_max)?;
        positive(
            "wasm.plugin_versions_max",
            u64::from(self.wasm.plugin_versions_max),
        )?;
        positive(
            "wasm.log_line_bytes_max",
            u64::from(self.wasm.log_line_bytes_max),
        )?;
        if self.wasm.call_wall_timeout_ms < self.wasm.call_timeout_ms {
            return Err(ConfigError::Key {
                key: "wasm.call_wall_timeout_ms",
                reason: format!(
                    "must be at least wasm.call_timeout_ms ({})",
                    self.wasm.call_timeout_ms
                ),
            });
        }
        positive("accounts.token_ttl_ms", self.accounts.token_ttl_ms)?;
        positive("accounts.tokens_max", self.accounts.tokens_max as u64)?;
        if !(1..=crate::accounts::SECRET_BYTES_MAX).contains(&self.accounts.secret_bytes_min) {
            return Err(ConfigError::Key {
                key: "accounts.secret_bytes_min",
                reason: format!("must be 1 to {}", crate::accounts::SECRET_BYTES_MAX),
            });
        }
        positive("sessions.ttl_ms", self.sessions.ttl_ms)?;
        if !(1..=self.sessions.ttl_ms).contains(&self.sessions.unjoined_ttl_ms) {
            return Err(ConfigError::Key {
                key: "sessions.unjoined_ttl_ms",
                reason: format!("must be 1 to sessions.ttl_ms ({})", self.sessions.ttl_ms),
            });
        }
        positive("sessions.live_max", self.sessions.live_max as u64)?;
        positive(
            "sessions.instances_kept_max",
            self.sessions.instances_kept_max as u64,
        )?;
        positive("sessions.state_bytes_max", self.sessions.state_bytes_max)?;
        positive(
            "sessions.idempotency_keys_max",
            self.sessions.idempotency_keys_max as u64,
        )?;
        positive("storage.sled.cache_bytes", self.storage.sled.cache_bytes)?;
        if self.cluster.enabled {
            if self.storage.hot == HotBackend::Sled {
                return Err(ConfigError::Key {
                    key: "cluster.enabled",
                    reason:
                        "instances meet in Redis: set storage.hot to \"redis\" or \"redis-cluster\""
                            .into(),
                });
            }
            if self.storage.cold == ColdBackend::Sled {
                return Err(ConfigError::Key {
                    key: "cluster.enabled",
                    reason: "instances share cold storage: set storage.cold to \"postgres\"".into(),
                });
            }
            if self.cluster.lease_ms < 200 {
                return Err(ConfigError::Key {
                    key: "cluster.lease_ms",
                    reason: "must be at least 200".into(),
                });
            }
            positive("cluster.heartbeat_ms", self.cluster.heartbeat_ms)?;
        }
        let realtime = &self.realtime;
        positive("realtime.backlog_max", realtime.backlog_max as u64)?;
        positive("realtime.send_queue_max", realtime.send_queue_max as u64)?;
        positive("realtime.hello_timeout_ms", realtime.hello_timeout_ms)?;
        positive("realtime.ping_interval_ms", realtime.ping_interval_ms)?;
        if realtime.idle_timeout_ms <= realtime.ping_interval_ms {
            return Err(ConfigError::Key {
                key: "realtime.idle_timeout_ms",
                reason: format!(
                    "must be more than realtime.ping_interval_ms ({}), or every quiet client is closed",
                    realtime.ping_interval_ms
                ),
            });
        }
        if (realtime.frame_bytes_max as u64) < self.sessions.document_bytes_max {
            return Err(ConfigError::Key {
                key: "realtime.frame_bytes_max",
                reason: format!(
                    "must be at least sessions.document_bytes_max ({}), or an action the host accepts over HTTP could not be sent on a socket",
                    self.sessions.document_bytes_max
                ),
            });
        }
        let resilience = &self.storage.resilience;
        positive(
            "storage.resilience.call_timeout_ms",
            resilience.call_timeout_ms,
        )?;
        positive(
            "storage.resilience.failure_threshold",
            u64::from(resilience.failure_threshold),
        )?;
        positive(
            "storage.resilience.probe_interval_ms",
            resilience.probe_interval_ms,
        )?;
        if resilience.probe_interval_max_ms < resilience.probe_interval_ms {
            return Err(ConfigError::Key {
                key: "storage.resilience.probe_interval_max_ms",
                reason: "must be at least storage.resilience.probe_interval_ms".into(),
            });
        }
        positive(
            "storage.resilience.replay_batch_max",
            resilience.replay_batch_max as u64,
        )?;
        positive(
            "storage.resilience.replay_lanes_max",
            resilience.replay_lanes_max as u64,
        )?;
        positive(
            "storage.resilience.replay_commit_max",
            resilience.replay_commit_max as u64,
        )?;
        positive(
            "storage.resilience.outbox_ops_max",
            resilience.outbox_ops_max,
        )?;
        positive(
            "storage.resilience.outbox_bytes_max",
            resilience.outbox_bytes_max,
        )?;
        if !(1..=100).contains(&resilience.ready_fill_percent) {
            return Err(ConfigError::Key {
                key: "storage.resilience.ready_fill_percent",
                reason: "must be 1 to 100".into(),
            });
        }
        if self.storage.hot == HotBackend::RedisCluster
            && self.storage.redis.cluster_nodes.is_empty()
        {
            return Err(ConfigError::Key {
                key: "storage.redis.cluster_nodes",
                reason: "hot = \"redis-cluster\" needs at least one seed node".into(),
            });
        }
        if self.storage.redis.key_prefix.contains(['{', '}']) {
            return Err(ConfigError::Key {
                key: "storage.redis.key_prefix",
                reason: "may not contain `{` or `}`: the host opens a hash tag after it".into(),
            });
        }
        positive(
            "storage.postgres.pool_max",
            u64::from(self.storage.postgres.pool_max),
        )?;
        positive(
            "storage.postgres.statement_timeout_ms",
            self.storage.postgres.statement_timeout_ms,
        )?;
        positive(
            "wasm.rpc_instances_max",
            u64::from(self.wasm.rpc_instances_max),
        )?;
        let rpc_instances = self.plugins.len() * self.wasm.rpc_instances_max as usize;
        let needed = self.sessions.live_max + rpc_instances + 8;
        if (self.wasm.instances_max as usize) < needed {
            return Err(ConfigError::Key {
                key: "wasm.instances_max",
                reason: format!(
                    "must be at least sessions.live_max + plugins x wasm.rpc_instances_max + 8 = {needed} (one instance per live session, those answering RPCs, and room to load plugins)"
                ),
            });
        }
        if let Some(token) = &self.admin.token
            && token.chars().count() < 16
        {
            return Err(ConfigError::Key {
                key: "admin.token",
                reason: "must be at least 16 characters".into(),
            });
        }
        let mut names = std::collections::HashSet::new();
        for plugin in &self.plugins {
            crate::storage::Namespace::plugin(&plugin.name).map_err(|e| ConfigError::Key {
                key: "plugins.name",
                reason: e.to_string(),
            })?;
            if !names.insert(&plugin.name) {
                return Err(ConfigError::Key {
                    key: "plugins.name",
                    reason: format!("plugin {:?} is listed twice", plugin.name),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configs_are_refused_with_the_key_named() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
            (
                "[server]\nbody_bytes_max = \"big\"\n",
                "server.body_bytes_max",
            ),
            ("[server]\nbody_bytes_max = 0\n", "server.body_bytes_max"),
            (
                "[storage.limits]\nvalue_bytes_max = 100000000\n",
                "storage.limits.value_bytes_max",
            ),
            ("[backup]\nkeep = 0\n", "backup.keep"),
            ("[server]\nlisen = \"127.0.0.1:1\"\n", "lisen"),
            ("[storage]\nhot = \"memcached\"\n", "storage.hot"),
            (
                "[[plugins]]\nname = \"Bad Name\"\npath = \"x.wasm\"\n",
                "plugins.name",
            ),
            ("[sessions]\nlive_max = 5000\n", "wasm.instances_max"),
            (
                "[wasm]\ncall_timeout_ms = 500\ncall_wall_timeout_ms = 100\n",
                "wasm.call_wall_timeout_ms",
            ),
            (
                "[storage.redis]\nkey_prefix = \"game{1}\"\n",
                "storage.redis.key_prefix",
            ),
            (
                "[server]\nheader_bytes_max = 100\n",
                "server.header_bytes_max",
            ),
            (
                "[server]\nconnections_max = 10\nconnections_per_client_max = 11\n",
                "server.connections_per_client_max",
            ),
            (
                "[server]\nwrite_timeout_ms = 0\n",
                "server.write_timeout_ms",
            ),
            (
                "[server.creates_per_client]\nper_minute = 0\nburst = 1\n",
                "server.creates_per_client",
            ),
            (
                "[sessions]\nttl_ms = 1000\nunjoined_ttl_ms = 5000\n",
                "sessions.unjoined_ttl_ms",
            ),
            (
                "[storage.sled]\ncache_bytes = 0\n",
                "storage.sled.cache_bytes",
            ),
        ];
        for (i, (text, key)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("{i}.toml"));
            std::fs::write(&path, text).unwrap();
            let error = Config::load(Some(&path)).expect_err(text).to_string();
            assert!(
                error.contains(key),
                "error for {text:?} should name {key}: {error}"
            );
        }
        let missing = Config::load(Some(&dir.path().join("absent.toml"))).unwrap_err();
        assert!(matches!(missing, ConfigError::MissingFile(_)));
    }

    #[test]
    fn the_offline_file_is_the_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/offline.toml");
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.storage.hot, HotBackend::Sled);
        assert_eq!(config.plugins[0].name, "hokm");
        assert_eq!(config.backup.interval_ms, 0, "no scheduled backups offline");
    }

    #[test]
    fn the_service_file_loads_with_hourly_backups() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/service.toml");
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.storage.cold, ColdBackend::Postgres);
        assert_eq!(
            (config.backup.interval_ms, config.backup.keep),
            (3_600_000, 24)
        );
    }
}
