//! The Redis hot backend: every hot capability mapped to native Redis.
//!
//! One code path serves a single Redis (through a `ConnectionManager`, which
//! reconnects in the background) and a Redis Cluster (through the `redis`
//! crate's cluster client): both are `ConnectionLike`.
//!
//! Key layout: `<prefix>:{<namespace>:<kind>:<name>}` with kind `v`
//! (values), `h` (hashes), `b` (leaderboards), `c` (publish channels). Keys
//! are binary safe, so guest names need no escaping.
//!
//! The braces are a Redis Cluster hash tag, opened by the host: the slot is
//! chosen by what follows the first `{`, so the tag always begins with the
//! namespace and kind, and a guest's `{x}` cannot replace it (a `}` in a
//! name can only end it early). Any key the host derives by appending to a
//! key, such as a marker written in the same script as the write it
//! records, lands on that key's slot. Every hot call touches one key today,
//! so whatever a call does atomically happens on one slot. Tags are per key,
//! not per plugin, so a plugin's keys spread over the whole cluster.
//!
//! Leaderboards store the negated score, so Redis's natural order (score
//! ascending, then member ascending) reads best first with ties by member
//! ascending: the order every backend promises.

use crate::storage::{Applied, Entry, Error, HotStore, HotWrite, Namespace, Op, Result};
use async_trait::async_trait;
use redis::aio::ConnectionLike;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;
use std::time::Duration;

/// Settings of the Redis backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// The server, for `hot = "redis"`.
    pub url: String,
    /// Seed nodes, for `hot = "redis-cluster"`.
    pub cluster_nodes: Vec<String>,
    /// Starts every key, so several hosts (or tests) can share one Redis.
    /// No `{` or `}`: the host opens each key's hash tag after it.
    pub key_prefix: String,
    /// Longest wait to connect.
    pub connect_timeout_ms: u64,
    /// Longest wait for an answer; a command that times out may still have
    /// been applied (its outcome is unknown) and is reported `unavailable`.
    pub response_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            cluster_nodes: Vec::new(),
            key_prefix: "hoard".into(),
            connect_timeout_ms: 2000,
            response_timeout_ms: 2000,
        }
    }
}

/// Why Redis could not be reached at start.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot reach Redis at {address}: {reason} (is redis-server running? start one with `redis-server --port 6379`, or set storage.redis.url)"
)]
pub struct ConnectError {
    pub address: String,
    pub reason: String,
}

/// Hot storage on Redis or Redis Cluster.
pub struct RedisStore<C> {
    connection: C,
    key_prefix: String,
}

/// The backend on one Redis server.
pub type SingleRedis = RedisStore<redis::aio::ConnectionManager>;
/// The backend on a Redis Cluster.
pub type ClusterRedis = RedisStore<redis::cluster_async::ClusterConnection>;

impl SingleRedis {
    /// Connects and checks the server answers.
    pub async fn connect(config: &RedisConfig) -> std::result::Result<Self, ConnectError> {
        let failed = |e: redis::RedisError| ConnectError {
            address: config.url.clone(),
            reason: e.to_string(),
        };
        let client = redis::Client::open(config.url.as_str()).map_err(failed)?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(config.connect_timeout_ms)))
            .set_response_timeout(Some(Duration::from_millis(config.response_timeout_ms)))
            .set_number_of_retries(2);
        let connection = client
            .get_connection_manager_with_config(manager_config)
            .await
            .map_err(failed)?;
        let store = RedisStore {
            connection,
            key_prefix: config.key_prefix.clone(),
        };
        store.ping().await.map_err(|e| ConnectError {
            address: config.url.clone(),
            reason: e.to_string(),
        })?;
        Ok(store)
    }
}

impl ClusterRedis {
    /// Connects to a cluster through its seed nodes.
    pub async fn connect(config: &RedisConfig) -> std::result::Result<Self, ConnectError> {
        let address = config.cluster_nodes.join(",");
        let failed = |e: redis::RedisError| ConnectError {
            address: address.clone(),
            reason: e.to_string(),
        };
        let client = redis::cluster::ClusterClient::builder(config.cluster_nodes.clone())
            .connection_timeout(Duration::from_millis(config.connect_timeout_ms))
            .response_timeout(Duration::from_millis(config.response_timeout_ms))
            .build()
            .map_err(failed)?;
        let connection = client.get_async_connection().await.map_err(failed)?;
        let store = RedisStore {
            connection,
            key_prefix: config.key_prefix.clone(),
        };
        store.ping().await.map_err(|e| ConnectError {
            address: address.clone(),
            reason: e.to_string(),
        })?;
        Ok(store)
    }
}

/// Rank and neighbours in one round trip: the member's rank, then the rows
/// from `rank - n` to `rank + n`.
static AROUND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then return {} end
local n = tonumber(ARGV[2])
local first = rank - n
if first < 0 then first = 0 end
return {first, redis.call('ZRANGE', KEYS[1], first, rank + n, 'WITHSCORES')}
",
    )
});

/// Adds to a score only if the result stays finite, as every backend does.
static INCR_SCORE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local old = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
local new = old + tonumber(ARGV[2])
if new ~= new or new == math.huge or new == -math.huge then return redis.error_reply('HOARD_NOT_FINITE') end
redis.call('ZADD', KEYS[1], new, ARGV[1])
return tostring(new)
",
    )
});

impl<C: ConnectionLike + Clone + Send + Sync + 'static> RedisStore<C> {
    fn key(&self, ns: &Namespace, kind: &str, name: &str) -> Vec<u8> {
        key(&self.key_prefix, ns, kind, name)
    }

    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T> {
        let mut connection = self.connection.clone();
        command.query_async(&mut connection).await.map_err(convert)
    }

    fn rows(raw: &[(String, f64)], first_rank: u64) -> Vec<Entry> {
        raw.iter()
            .enumerate()
            .map(|(i, (member, stored))| Entry {
                member: member.clone(),
                score: -stored + 0.0,
                rank: first_rank + i as u64,
            })
            .collect()
    }
}

/// `<prefix>:{<namespace>:<kind>:<name>}`; see the module docs for the tag.
/// Public so that a client beside the host (the benchmark's baseline) can
/// touch the host's keys without spelling the layout again.
pub fn key(prefix: &str, ns: &Namespace, kind: &str, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + ns.as_str().len() + name.len() + 6);
    key.extend_from_slice(prefix.as_bytes());
    key.extend_from_slice(b":{");
    key.extend_from_slice(ns.as_str().as_bytes());
    key.push(b':');
    key.extend_from_slice(kind.as_bytes());
    key.push(b':');
    key.extend_from_slice(name.as_bytes());
    key.push(b'}');
    key
}

/// Maps Redis errors onto the guest's error: a refused command (not an
/// integer, overflow) is the guest's `invalid`, anything else `unavailable`.
fn convert(error: redis::RedisError) -> Error {
    let text = error.to_string();
    if text.contains("HOARD_NOT_FINITE") {
        // Raised by INCR_SCORE; Redis reports a script's error as a plain reply.
        return Error::invalid("delta", "the new score would not be finite");
    }
    let detail = error.detail().unwrap_or_default().to_owned();
    match error.code() {
        Some(_) if detail.contains("not an integer") || detail.contains("overflow") => {
            Error::invalid("key", format!("redis refused the increment: {detail}"))
        }
        Some("WRONGTYPE") => Error::invalid("key", "the key holds another kind of value"),
        _ => Error::Unavailable(format!("redis: {text}")),
    }
}

#[async_trait]
impl<C: ConnectionLike + Clone + Send + Sync + 'static> HotStore for RedisStore<C> {
    async fn apply(&self, op: &Op<HotWrite>) -> Result<Applied> {
        let ns = &op.namespace;
        match &op.write {
            HotWrite::Set { key, value, ttl_ms } => {
                let mut command = redis::cmd("SET");
                command.arg(self.key(ns, "v", key)).arg(value.as_slice());
                if let Some(ttl_ms) = ttl_ms {
                    command.arg("PX").arg((*ttl_ms).max(1));
                }
                self.query::<()>(&command).await.map(|()| Applied::Done)
            }
            HotWrite::Delete { key } => {
                let removed: u64 = self
                    .query(redis::cmd("DEL").arg(self.key(ns, "v", key)))
                    .await?;
                Ok(Applied::Existed(removed > 0))
            }
            HotWrite::Incr { key, delta } => self
                .query(redis::cmd("INCRBY").arg(self.key(ns, "v", key)).arg(*delta))
                .await
                .map(Applied::Integer),
            HotWrite::HashSet { key, field, value } => {
                let command = redis::cmd("HSET")
                    .arg(self.key(ns, "h", key))
                    .arg(field.as_bytes())
                    .arg(value.as_slice())
                    .clone();
                self.query::<u64>(&command).await.map(|_| Applied::Done)
            }
            HotWrite::LeaderboardSet {
                board,
                member,
                score,
            } => {
                let command = redis::cmd("ZADD")
                    .arg(self.key(ns, "b", board))
                    .arg(-score)
                    .arg(member.as_bytes())
                    .clone();
                self.query::<u64>(&command).await.map(|_| Applied::Done)
            }
            HotWrite::LeaderboardIncr {
                board,
                member,
                delta,
            } => {
                let mut connection = self.connection.clone();
                let stored: String = INCR_SCORE
                    .key(self.key(ns, "b", board))
                    .arg(member.as_bytes())
                    .arg(-delta)
                    .invoke_async(&mut connection)
                    .await
                    .map_err(convert)?;
                let stored: f64 = stored
                    .parse()
                    .map_err(|_| Error::Unavailable(format!("redis returned score {stored:?}")))?;
                Ok(Applied::Score(-stored + 0.0))
            }
            HotWrite::Publish { channel, message } => {
                let command = redis::cmd("PUBLISH")
                    .arg(self.key(ns, "c", channel))
                    .arg(message.as_slice())
                    .clone();
                self.query::<u64>(&command).await.map(|_| Applied::Done)
            }
        }
    }

    async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Vec<u8>>> {
        self.query(redis::cmd("GET").arg(self.key(ns, "v", key)))
            .await
    }

    async fn hash_get(&self, ns: &Namespace, key: &str, field: &str) -> Result<Option<Vec<u8>>> {
        self.query(
            redis::cmd("HGET")
                .arg(self.key(ns, "h", key))
                .arg(field.as_bytes()),
        )
        .await
    }

    async fn hash_get_all(&self, ns: &Namespace, key: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let mut fields: Vec<(String, Vec<u8>)> = self
            .query(redis::cmd("HGETALL").arg(self.key(ns, "h", key)))
            .await?;
        fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Ok(fields)
    }

    async fn leaderboard_top(&self, ns: &Namespace, board: &str, n: u32) -> Result<Vec<Entry>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let command = redis::cmd("ZRANGE")
            .arg(self.key(ns, "b", board))
            .arg(0)
            .arg(i64::from(n) - 1)
            .arg("WITHSCORES")
            .clone();
        let raw: Vec<(String, f64)> = self.query(&command).await?;
        Ok(Self::rows(&raw, 0))
    }

    async fn leaderboard_around(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
        n: u32,
    ) -> Result<Vec<Entry>> {
        let mut connection = self.connection.clone();
        let reply: redis::Value = AROUND
            .key(self.key(ns, "b", board))
            .arg(member.as_bytes())
            .arg(n)
            .invoke_async(&mut connection)
            .await
            .map_err(convert)?;
        let (first, raw): (u64, Vec<(String, f64)>) = match reply {
            redis::Value::Array(ref items) if items.is_empty() => return Ok(Vec::new()),
            other => redis::from_redis_value(other)
                .map_err(|e| Error::Unavailable(format!("redis: {e}")))?,
        };
        Ok(Self::rows(&raw, first))
    }

    async fn ping(&self) -> Result<()> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::cluster_routing::Slot;

    #[test]
    fn the_host_picks_each_keys_hash_slot() {
        let ns = Namespace::plugin("probe").unwrap();
        let names = ["k", "{x}", "a{x}", "}", "}{", "{", "*:'\0", "ключ"];
        for name in names {
            let key = key("hoard", &ns, "v", name);
            // A key derived by appending lands on the same slot, braces in
            // the guest's name or not.
            let mut derived = key.clone();
            derived.extend_from_slice(b":op:{7}");
            assert_eq!(Slot::for_key(&key), Slot::for_key(&derived), "{name:?}");
        }
        // Were the guest's braces the tag, both would hash "x" alone.
        let (a, b) = (
            key("hoard", &ns, "v", "a{x}"),
            key("hoard", &ns, "v", "b{x}"),
        );
        assert_eq!(&a[..7], b"hoard:{");
        assert_ne!(Slot::for_key(&a), Slot::for_key(&b));
    }
}
