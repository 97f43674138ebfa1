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
//!
//! **Every write once.** Each write is a Redis function (`hoard.lua`,
//! library `hoard_v1`, Redis 7+) that checks the op's marker key
//! (`<data key>:op:<op id in hex>`, on the data key's slot), returns the
//! marker's value if the op was applied before, and otherwise applies the
//! write and sets the marker, with a retention of `dedupe_retention_ms`,
//! atomically. The marker holds the function's reply, so a duplicate gets
//! the first result. `publish` is not a stored write and is sent as is.
//! Functions, not `EVALSHA` scripts: the same Lua costs the server about
//! 2 us less per call through `FCALL` (measured with `INFO commandstats`).

use crate::storage::{
    Applied, Entry, Error, ExportView, HotStore, HotWrite, Item, ItemSink, Namespace, Op, OpId,
    Result,
};
use async_trait::async_trait;
use redis::aio::ConnectionLike;
use serde::{Deserialize, Serialize};
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
    /// How long the marker of an applied op is kept: an op replayed or
    /// retried within it is not applied twice. It must outlast the longest
    /// outage the outbox rides out. Each marker costs Redis about 100
    /// bytes for this long.
    pub dedupe_retention_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            cluster_nodes: Vec::new(),
            key_prefix: "hoard".into(),
            connect_timeout_ms: 2000,
            response_timeout_ms: 2000,
            dedupe_retention_ms: 24 * 3600 * 1000,
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
    dedupe_retention_ms: u64,
    /// A cluster's keys are spread over its masters: one `SCAN` does not
    /// see them all.
    cluster: bool,
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
            dedupe_retention_ms: config.dedupe_retention_ms,
            cluster: false,
        };
        store.ping().await.map_err(|e| ConnectError {
            address: config.url.clone(),
            reason: e.to_string(),
        })?;
        store.load_library().await.map_err(|e| ConnectError {
            address: config.url.clone(),
            reason: format!("loading hoard's functions (Redis 7 or later is needed): {e}"),
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
            dedupe_retention_ms: config.dedupe_retention_ms,
            cluster: true,
        };
        store.ping().await.map_err(|e| ConnectError {
            address: address.clone(),
            reason: e.to_string(),
        })?;
        store.load_library().await.map_err(|e| ConnectError {
            address: address.clone(),
            reason: format!("loading hoard's functions (Redis 7 or later is needed): {e}"),
        })?;
        Ok(store)
    }
}

impl<C: ConnectionLike + Clone + Send + Sync + 'static> RedisStore<C> {
    /// Why this Redis would lose acknowledged writes on a restart, if it
    /// would: it must keep an append-only file (`appendonly yes`).
    pub async fn durability_problem(&self) -> Result<Option<String>> {
        let reply: Vec<String> = self
            .query(redis::cmd("CONFIG").arg("GET").arg("appendonly"))
            .await?;
        Ok(match reply.get(1).map(String::as_str) {
            Some("yes") => None,
            Some(other) => Some(format!(
                "Redis runs with appendonly {other}: it forgets every session on a restart. Start it with `--appendonly yes` (or `CONFIG SET appendonly yes`), or set storage.require_durable = false for development"
            )),
            None => Some(
                "Redis did not say whether it keeps an append-only file (CONFIG GET appendonly): set storage.require_durable = false to start anyway".into(),
            ),
        })
    }
}

/// hoard's Redis functions: every write with its op marker, and the one
/// multi-command read. Loaded at connect and again when a server has lost
/// them.
const LIBRARY: &str = include_str!("hoard.lua");

/// What a server says of a function it does not know.
const FUNCTION_NOT_FOUND: &str = "Function not found";

/// What a write function answered (its own reply, or its marker's).
fn decode_reply(reply: &str) -> Result<Applied> {
    let malformed = || Error::Unavailable(format!("redis: a write answered {reply:?}"));
    let (kind, rest) = reply.split_at_checked(1).ok_or_else(malformed)?;
    Ok(match kind {
        "d" => Applied::Done,
        "e" => Applied::Existed(rest != "0"),
        "i" => Applied::Integer(rest.parse().map_err(|_| malformed())?),
        // Stored negated: see the module docs. `+ 0.0` turns -0 into 0.
        "s" => Applied::Score(-rest.parse::<f64>().map_err(|_| malformed())? + 0.0),
        _ => return Err(malformed()),
    })
}

impl<C: ConnectionLike + Clone + Send + Sync + 'static> RedisStore<C> {
    fn key(&self, ns: &Namespace, kind: &str, name: &str) -> Vec<u8> {
        key(&self.key_prefix, ns, kind, name)
    }

    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T> {
        let mut connection = self.connection.clone();
        command.query_async(&mut connection).await.map_err(convert)
    }

    /// Loads (or replaces) hoard's functions on the server, or on every
    /// master of a cluster.
    async fn load_library(&self) -> Result<()> {
        self.query::<redis::Value>(
            redis::cmd("FUNCTION")
                .arg("LOAD")
                .arg("REPLACE")
                .arg(LIBRARY),
        )
        .await
        .map(drop)
    }

    /// Calls one of hoard's functions with `keys` and `args`; if the server
    /// has lost the library, loads it and calls once more.
    async fn call<T: redis::FromRedisValue>(
        &self,
        function: &str,
        keys: &[&[u8]],
        args: impl Fn(&mut redis::Cmd),
    ) -> Result<T> {
        let mut command = redis::cmd("FCALL");
        command.arg(function).arg(keys.len());
        for key in keys {
            command.arg(*key);
        }
        args(&mut command);
        let mut connection = self.connection.clone();
        match command.query_async(&mut connection).await {
            Err(error) if error.to_string().contains(FUNCTION_NOT_FOUND) => {
                self.load_library().await?;
                command.query_async(&mut connection).await.map_err(convert)
            }
            result => result.map_err(convert),
        }
    }

    /// Runs write function `function` for `op` on `key`, `args` then the
    /// marker's retention.
    async fn once(
        &self,
        function: &str,
        op: OpId,
        key: Vec<u8>,
        args: impl Fn(&mut redis::Cmd),
    ) -> Result<Applied> {
        let marker = [&key[..], b":op:", op.to_string().as_bytes()].concat();
        let retention_ms = self.dedupe_retention_ms.max(1);
        let reply: String = self
            .call(function, &[&key, &marker], |command| {
                args(command);
                command.arg(retention_ms);
            })
            .await?;
        decode_reply(&reply)
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
impl<C: ConnectionLike + ScanKeys + Clone + Send + Sync + 'static> HotStore for RedisStore<C> {
    async fn apply(&self, op: &Op<HotWrite>) -> Result<Applied> {
        let ns = &op.namespace;
        match &op.write {
            HotWrite::Set { key, value, ttl_ms } => {
                let ttl_ms = ttl_ms.map(|ttl| ttl.max(1).to_string()).unwrap_or_default();
                self.once("hoard_set", op.id, self.key(ns, "v", key), |command| {
                    command.arg(value.as_slice()).arg(&ttl_ms);
                })
                .await
            }
            HotWrite::Delete { key } => {
                self.once("hoard_delete", op.id, self.key(ns, "v", key), |_| {})
                    .await
            }
            HotWrite::Incr { key, delta } => {
                self.once("hoard_incr", op.id, self.key(ns, "v", key), |command| {
                    command.arg(*delta);
                })
                .await
            }
            HotWrite::HashSet { key, field, value } => {
                self.once("hoard_hash_set", op.id, self.key(ns, "h", key), |command| {
                    command.arg(field.as_bytes()).arg(value.as_slice());
                })
                .await
            }
            HotWrite::LeaderboardSet {
                board,
                member,
                score,
            } => {
                self.once(
                    "hoard_score_set",
                    op.id,
                    self.key(ns, "b", board),
                    |command| {
                        command.arg(-score).arg(member.as_bytes());
                    },
                )
                .await
            }
            HotWrite::LeaderboardIncr {
                board,
                member,
                delta,
            } => {
                self.once(
                    "hoard_score_incr",
                    op.id,
                    self.key(ns, "b", board),
                    |command| {
                        command.arg(member.as_bytes()).arg(-delta);
                    },
                )
                .await
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
        let reply: redis::Value = self
            .call("hoard_around", &[&self.key(ns, "b", board)], |command| {
                command.arg(member.as_bytes()).arg(n);
            })
            .await?;
        let (first, raw): (u64, Vec<(String, f64)>) = match reply {
            redis::Value::Array(ref items) if items.is_empty() => return Ok(Vec::new()),
            other => redis::from_redis_value(other)
                .map_err(|e| Error::Unavailable(format!("redis: {e}")))?,
        };
        Ok(Self::rows(&raw, first))
    }

    async fn leaderboard_score(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
    ) -> Result<Option<f64>> {
        let stored: Option<f64> = self
            .query(
                redis::cmd("ZSCORE")
                    .arg(self.key(ns, "b", board))
                    .arg(member.as_bytes()),
            )
            .await?;
        // Stored negated: see the module docs.
        Ok(stored.map(|score| -score + 0.0))
    }

    async fn export(&self, ns: &Namespace, sink: ItemSink<'_>) -> Result<ExportView> {
        // `<prefix>:{<ns>:` with the prefix's glob characters escaped.
        let mut pattern = Vec::new();
        for byte in self.key_prefix.bytes() {
            if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
                pattern.push(b'\\');
            }
            pattern.push(byte);
        }
        let head = [
            self.key_prefix.as_bytes(),
            b":{",
            ns.as_str().as_bytes(),
            b":",
        ]
        .concat();
        pattern.extend_from_slice(&head[self.key_prefix.len()..]);
        pattern.push(b'*');
        let keys = self.connection.clone().keys_matching(&pattern).await?;
        for key in keys {
            // Data keys end in the tag's `}`; op markers do not.
            let Some(inner) = key
                .strip_prefix(head.as_slice())
                .and_then(|rest| rest.strip_suffix(b"}"))
            else {
                continue;
            };
            let (kind, name) = match inner {
                [kind, b':', name @ ..] => (*kind, name),
                _ => continue,
            };
            let name = String::from_utf8(name.to_vec())
                .map_err(|_| Error::Unavailable("redis: a stored name is not UTF-8".into()))?;
            self.export_key(&key, kind, name, &mut *sink).await?;
        }
        Ok(ExportView::Live(if self.cluster {
            "Redis Cluster has no snapshot across its masters: keys are read one by one (SCAN on each master) while writes may go on"
        } else {
            "Redis has no snapshot of a key space: keys are read one by one (SCAN) while writes may go on"
        }))
    }

    async fn ping(&self) -> Result<()> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }
}

impl<C: ConnectionLike + Clone + Send + Sync + 'static> RedisStore<C> {
    /// Hands the items of one data key to `sink`: nothing if it went
    /// meanwhile.
    async fn export_key(
        &self,
        key: &[u8],
        kind: u8,
        name: String,
        sink: ItemSink<'_>,
    ) -> Result<()> {
        match kind {
            b'v' => {
                // One transaction: the time to live is the value's.
                let mut connection = self.connection.clone();
                let (value, ttl_ms): (Option<Vec<u8>>, i64) = redis::pipe()
                    .atomic()
                    .cmd("GET")
                    .arg(key)
                    .cmd("PTTL")
                    .arg(key)
                    .query_async(&mut connection)
                    .await
                    .map_err(convert)?;
                if let Some(value) = value {
                    sink(Item::Value {
                        key: name,
                        value,
                        ttl_ms: u64::try_from(ttl_ms).ok(),
                    })?;
                }
            }
            b'h' => {
                let fields: Vec<(Vec<u8>, Vec<u8>)> =
                    self.query(redis::cmd("HGETALL").arg(key)).await?;
                for (field, value) in fields {
                    let field = String::from_utf8(field).map_err(|_| {
                        Error::Unavailable("redis: a stored field is not UTF-8".into())
                    })?;
                    sink(Item::HashField {
                        key: name.clone(),
                        field,
                        value,
                    })?;
                }
            }
            b'b' => {
                let entries: Vec<(String, f64)> = self
                    .query(
                        redis::cmd("ZRANGE")
                            .arg(key)
                            .arg(0)
                            .arg(-1)
                            .arg("WITHSCORES"),
                    )
                    .await?;
                for entry in Self::rows(&entries, 0) {
                    sink(Item::Score {
                        board: name.clone(),
                        member: entry.member,
                        score: entry.score,
                    })?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Every key matching a `SCAN` pattern, each once: on one server, or on
/// every master of a cluster. Keys only, in memory: a namespace's values
/// are read one key at a time afterwards.
#[async_trait]
pub trait ScanKeys {
    async fn keys_matching(&mut self, pattern: &[u8]) -> Result<Vec<Vec<u8>>>;
}

/// `SCAN` to the end on whatever `scan` sends each cursor to.
async fn scan_all<F, Fut>(pattern: &[u8], mut scan: F) -> Result<Vec<Vec<u8>>>
where
    F: FnMut(redis::Cmd) -> Fut,
    Fut: Future<Output = redis::RedisResult<redis::Value>>,
{
    // SCAN may hand a key over twice.
    let mut keys = std::collections::BTreeSet::new();
    let mut cursor: u64 = 0;
    loop {
        let mut command = redis::cmd("SCAN");
        command
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000);
        let reply = scan(command).await.map_err(convert)?;
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::FromRedisValue::from_redis_value(reply)
            .map_err(|e| Error::Unavailable(format!("redis: SCAN answered something else: {e}")))?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys.into_iter().collect());
        }
        cursor = next;
    }
}

#[async_trait]
impl ScanKeys for redis::aio::ConnectionManager {
    async fn keys_matching(&mut self, pattern: &[u8]) -> Result<Vec<Vec<u8>>> {
        let connection = self.clone();
        scan_all(pattern, |command| {
            let mut connection = connection.clone();
            async move { command.query_async(&mut connection).await }
        })
        .await
    }
}

#[async_trait]
impl ScanKeys for redis::cluster_async::ClusterConnection {
    async fn keys_matching(&mut self, pattern: &[u8]) -> Result<Vec<Vec<u8>>> {
        use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
        // `<id> <host:port@bus-port[,hostname]> <flags> …` per node.
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(self)
            .await
            .map_err(convert)?;
        // A key that moves between masters during the scan is seen twice.
        let mut keys = std::collections::BTreeSet::new();
        let mut slots_scanned = 0u32;
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_id, address, flags, ..] = fields[..] else {
                continue;
            };
            let flags: Vec<&str> = flags.split(',').collect();
            if !flags.contains(&"master") {
                continue;
            }
            // Slot ranges from the ninth field: `0-5460` or `5461`
            // (`[...]` marks a slot moving, counted where it is now).
            let slots: u32 = fields
                .iter()
                .skip(8)
                .filter(|range| !range.starts_with('['))
                .filter_map(|range| match range.split_once('-') {
                    Some((from, to)) => {
                        Some(to.parse::<u32>().ok()? - from.parse::<u32>().ok()? + 1)
                    }
                    None => range.parse::<u32>().ok().map(|_| 1),
                })
                .sum();
            if slots == 0 {
                continue;
            }
            if flags.iter().any(|f| f.starts_with("fail")) {
                return Err(Error::Unavailable(format!(
                    "redis: master {address} serving {slots} slots is failing: its keys cannot be read"
                )));
            }
            let address = address.split(['@', ',']).next().unwrap_or(address);
            let Some((host, port)) = address
                .rsplit_once(':')
                .and_then(|(host, port)| Some((host.to_owned(), port.parse::<u16>().ok()?)))
            else {
                return Err(Error::Unavailable(format!(
                    "redis: CLUSTER NODES names a master at {address:?}"
                )));
            };
            let connection = self.clone();
            let found = scan_all(pattern, |command| {
                let mut connection = connection.clone();
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port,
                });
                async move { connection.route_command(command, routing).await }
            })
            .await?;
            keys.extend(found);
            slots_scanned += slots;
        }
        if slots_scanned != 16384 {
            return Err(Error::Unavailable(format!(
                "redis: the masters scanned serve {slots_scanned} of the 16384 slots"
            )));
        }
        Ok(keys.into_iter().collect())
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
