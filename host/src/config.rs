//! Configuration: built-in defaults, then a TOML file, then `HOARD_*`
//! environment variables (nested keys joined by `__`, e.g.
//! `HOARD_SERVER__LISTEN=0.0.0.0:7878`), then command-line flags.
//!
//! The defaults are the offline mode of `configs/offline.toml`: embedded sled
//! storage, no server needed. Unknown keys are refused, and every error names
//! the key at fault.

use crate::storage::Limits;
use crate::storage::postgres::PostgresConfig;
use crate::storage::redis::RedisConfig;
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
    /// The game plugins to load, in order.
    pub plugins: Vec<PluginConfig>,
}

/// The HTTP server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted; larger ones get 413.
    pub body_bytes_max: u64,
    /// Most client connections served at once; more wait to be accepted.
    pub connections_max: usize,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            body_bytes_max: 64 * 1024,
            connections_max: 4096,
            shutdown_grace_ms: 5000,
        }
    }
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
        }
    }
}

/// Game sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// A session is forgotten this long after its last change.
    pub ttl_ms: u64,
    /// Most sessions kept in memory with a live plugin instance; beyond it the
    /// least recently used idle one is dropped (it reloads from storage).
    pub live_max: usize,
    /// Largest state a plugin may return for one session.
    pub state_bytes_max: u64,
    /// Largest action or config document a client may send.
    pub document_bytes_max: u64,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            ttl_ms: 7 * 24 * 3600 * 1000,
            live_max: 1000,
            state_bytes_max: 1024 * 1024,
            document_bytes_max: 16 * 1024,
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
        positive(
            "storage.limits.key_bytes_max",
            self.storage.limits.key_bytes_max,
        )?;
        positive(
            "storage.limits.value_bytes_max",
            self.storage.limits.value_bytes_max,
        )?;
        positive(
            "storage.limits.read_rows_max",
            self.storage.limits.read_rows_max,
        )?;
        positive("wasm.memory_bytes_max", self.wasm.memory_bytes_max)?;
        positive("wasm.call_timeout_ms", self.wasm.call_timeout_ms)?;
        positive("wasm.call_wall_timeout_ms", self.wasm.call_wall_timeout_ms)?;
        positive("wasm.epoch_tick_ms", self.wasm.epoch_tick_ms)?;
        if self.wasm.call_wall_timeout_ms < self.wasm.call_timeout_ms {
            return Err(ConfigError::Key {
                key: "wasm.call_wall_timeout_ms",
                reason: format!(
                    "must be at least wasm.call_timeout_ms ({})",
                    self.wasm.call_timeout_ms
                ),
            });
        }
        positive("sessions.ttl_ms", self.sessions.ttl_ms)?;
        positive("sessions.live_max", self.sessions.live_max as u64)?;
        positive("sessions.state_bytes_max", self.sessions.state_bytes_max)?;
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
        if (self.wasm.instances_max as usize) < self.sessions.live_max + 8 {
            return Err(ConfigError::Key {
                key: "wasm.instances_max",
                reason: format!(
                    "must be at least sessions.live_max + 8 = {} (one instance per live session, plus room to load plugins)",
                    self.sessions.live_max + 8
                ),
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
    }
}
