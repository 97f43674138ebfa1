//! Several host instances on one Redis (or Redis Cluster) and PostgreSQL:
//! who is up, and which instance owns each session.
//!
//! **Membership.** Each instance heartbeats every `heartbeat_ms`: its
//! record (`<prefix>:{_hoard:cluster}:instance:<id>`, id, URL, start time,
//! sessions and sockets, kept three beats) and its place in a sorted set of
//! instances by last beat. Both share one hash slot, so one `MGET` reads
//! every record; `hoard cluster status` lists them.
//!
//! **Ownership.** One instance owns a session at a time: it holds the
//! session's lease (`<record key>:lease`, `<instance> <fence>`, living
//! `lease_ms` and renewed while the instance keeps the session in memory).
//! The fence goes up at every claim. The session record is stored only
//! through `hoard_fenced_set`, which checks in the same atomic step that
//! the lease is still the writer's under the same fence: an instance that
//! was paused or cut off past its lease cannot store a stale change, and an
//! instance that takes a lease back under a new fence reloads the record
//! first. A request for a session another live instance owns is forwarded
//! to it (`api`); when the owner is gone its lease runs out and the next
//! instance asked takes it.
//!
//! While Redis is down nobody can prove ownership, so sessions answer 503
//! in cluster mode (a single instance rides the outage on its outbox).

use crate::config::{ClusterConfig, HotBackend};
use crate::metrics::Metrics;
use crate::storage::redis::{RedisConfig, key};
use crate::storage::{Error, Namespace, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LIBRARY: &str = include_str!("cluster.lua");

/// A connection to a single Redis or to a Redis Cluster.
#[derive(Clone)]
enum Link {
    Single(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Link {
    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T> {
        let result = match self.clone() {
            Link::Single(mut connection) => command.query_async(&mut connection).await,
            Link::Cluster(mut connection) => command.query_async(&mut connection).await,
        };
        result.map_err(|e| Error::Unavailable(format!("redis: {e}")))
    }
}

/// A lease this instance holds on a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub fence: u64,
    /// Until when it is surely still ours (a margin before Redis lets it
    /// go).
    pub valid_until: Instant,
}

impl Lease {
    pub fn is_valid(&self) -> bool {
        Instant::now() < self.valid_until
    }
}

/// What claiming a session's lease gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    Ours(Lease),
    /// Another instance holds it: its id.
    Held(String),
    /// There is no such session (and nothing was written for it).
    Missing,
}

/// What an instance says of itself at each heartbeat.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Member {
    pub id: String,
    /// Where other instances (and operators) reach it.
    pub url: String,
    pub started_ms: u64,
    pub beat_ms: u64,
    pub live_sessions: usize,
    pub sockets: i64,
}

/// This instance's view of the cluster.
pub struct Cluster {
    link: Link,
    prefix: String,
    id: String,
    url: String,
    started_ms: u64,
    config: ClusterConfig,
    /// How long a fence counter outlives its last claim: the sessions'
    /// own time to live.
    fence_retention_ms: u64,
    /// The instances seen at the last heartbeat, by id.
    members: Mutex<HashMap<String, Member>>,
    metrics: Arc<Metrics>,
}

impl Cluster {
    /// Connects to the Redis of `storage.redis` (`hot` says which kind)
    /// as instance `config.instance_id` (random if unset), reachable at
    /// `url`.
    pub async fn connect(
        redis_config: &RedisConfig,
        hot: HotBackend,
        config: &ClusterConfig,
        url: String,
        fence_retention_ms: u64,
        metrics: Arc<Metrics>,
    ) -> std::result::Result<Arc<Cluster>, String> {
        let failed = |e: redis::RedisError| format!("cluster: cannot reach Redis: {e}");
        let link = match hot {
            HotBackend::Redis => {
                let client = redis::Client::open(redis_config.url.as_str()).map_err(failed)?;
                let manager = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_millis(
                        redis_config.connect_timeout_ms,
                    )))
                    .set_response_timeout(Some(Duration::from_millis(
                        redis_config.response_timeout_ms,
                    )));
                Link::Single(
                    client
                        .get_connection_manager_with_config(manager)
                        .await
                        .map_err(failed)?,
                )
            }
            HotBackend::RedisCluster => {
                let client =
                    redis::cluster::ClusterClient::builder(redis_config.cluster_nodes.clone())
                        .connection_timeout(Duration::from_millis(redis_config.connect_timeout_ms))
                        .response_timeout(Duration::from_millis(redis_config.response_timeout_ms))
                        .build()
                        .map_err(failed)?;
                Link::Cluster(client.get_async_connection().await.map_err(failed)?)
            }
            HotBackend::Sled => {
                return Err("cluster.enabled needs storage.hot = \"redis\" or \"redis-cluster\": instances meet in Redis".into());
            }
        };
        let id = config
            .instance_id
            .clone()
            .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
        let cluster = Arc::new(Cluster {
            link,
            prefix: redis_config.key_prefix.clone(),
            id,
            url,
            started_ms: now_ms(),
            config: config.clone(),
            fence_retention_ms,
            members: Mutex::new(HashMap::new()),
            metrics,
        });
        cluster
            .load_library()
            .await
            .map_err(|e| format!("cluster: loading hoard's cluster functions: {e}"))?;
        Ok(cluster)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn load_library(&self) -> Result<()> {
        let mut command = redis::cmd("FUNCTION");
        command.arg("LOAD").arg("REPLACE").arg(LIBRARY);
        self.link.query::<redis::Value>(&command).await.map(drop)
    }

    /// Calls one of the cluster functions, loading the library again if
    /// the server lost it.
    async fn call<T: redis::FromRedisValue>(
        &self,
        function: &str,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<T> {
        let mut command = redis::cmd("FCALL");
        command.arg(function).arg(keys.len());
        for key in keys {
            command.arg(*key);
        }
        for arg in args {
            command.arg(*arg);
        }
        match self.link.query(&command).await {
            Err(Error::Unavailable(text)) if text.contains("Function not found") => {
                self.load_library().await?;
                self.link.query(&command).await
            }
            result => result,
        }
    }

    /// The session record's key, as the hot store keeps it.
    fn record_key(&self, session: &str) -> Vec<u8> {
        key(
            &self.prefix,
            &Namespace::host(),
            "v",
            &crate::session::record_key(session),
        )
    }

    fn lease_key(&self, session: &str) -> Vec<u8> {
        [self.record_key(session), b":lease".to_vec()].concat()
    }

    fn fence_key(&self, session: &str) -> Vec<u8> {
        [self.record_key(session), b":fence".to_vec()].concat()
    }

    pub fn lease_ms(&self) -> u64 {
        self.config.lease_ms
    }

    /// How long a claim is surely ours: the lease less a margin for the
    /// round trip and clock drift.
    fn lease_margin(&self) -> Duration {
        Duration::from_millis(self.config.lease_ms * 3 / 4)
    }

    /// Takes `session`'s lease, or renews it if it is ours already. A
    /// session must exist unless it is `new` (being created).
    pub async fn claim(&self, session: &str, new: bool) -> Result<Claim> {
        let started = Instant::now();
        let (ours, value): (u8, String) = self
            .call(
                "hoard_claim",
                &[
                    &self.lease_key(session),
                    &self.fence_key(session),
                    &self.record_key(session),
                ],
                &[
                    self.id.as_bytes(),
                    self.config.lease_ms.to_string().as_bytes(),
                    self.fence_retention_ms.to_string().as_bytes(),
                    if new { b"new" } else { b"existing" },
                ],
            )
            .await?;
        if ours == 3 {
            return Ok(Claim::Missing);
        }
        if ours != 0 {
            let fence: u64 = value
                .parse()
                .map_err(|_| Error::Unavailable(format!("cluster: a fence of {value:?}")))?;
            match ours {
                1 => self.metrics.lease_claimed("renewed", false),
                _ => self.metrics.lease_claimed("taken", fence > 1),
            }
            // Counted from before the call: Redis's clock started later.
            Ok(Claim::Ours(Lease {
                fence,
                valid_until: started + self.lease_margin(),
            }))
        } else {
            self.metrics.lease_claimed("held", false);
            Ok(Claim::Held(value))
        }
    }

    /// Lets `session`'s lease go, if it is still `fence`'s.
    pub async fn release(&self, session: &str, fence: u64) {
        let lease_key = self.lease_key(session);
        let released = self
            .call::<i64>(
                "hoard_release",
                &[&lease_key],
                &[self.id.as_bytes(), fence.to_string().as_bytes()],
            )
            .await;
        if let Err(error) = released {
            tracing::debug!(%error, session, "a lease could not be released; it runs out");
        }
    }

    /// Stores `session`'s record if the lease is still ours under
    /// `fence`, renewing it: the renewed lease, or `None` if it has moved
    /// (nothing was stored).
    pub async fn store(
        &self,
        session: &str,
        fence: u64,
        record: &[u8],
        ttl_ms: u64,
    ) -> Result<Option<Lease>> {
        let started = Instant::now();
        let stored: i64 = self
            .call(
                "hoard_fenced_set",
                &[
                    &self.record_key(session),
                    &self.lease_key(session),
                    &self.fence_key(session),
                ],
                &[
                    self.id.as_bytes(),
                    fence.to_string().as_bytes(),
                    record,
                    ttl_ms.max(1).to_string().as_bytes(),
                    self.config.lease_ms.to_string().as_bytes(),
                ],
            )
            .await?;
        Ok((stored == 1).then(|| Lease {
            fence,
            valid_until: started + self.lease_margin(),
        }))
    }

    fn members_key(&self) -> String {
        format!("{}:{{_hoard:cluster}}:instances", self.prefix)
    }

    fn member_key(&self, id: &str) -> String {
        format!("{}:{{_hoard:cluster}}:instance:{id}", self.prefix)
    }

    /// Says this instance is up, with `live_sessions` and `sockets`, and
    /// refreshes what it knows of the others.
    async fn beat(&self, live_sessions: usize, sockets: i64) -> Result<()> {
        let now = now_ms();
        let me = Member {
            id: self.id.clone(),
            url: self.url.clone(),
            started_ms: self.started_ms,
            beat_ms: now,
            live_sessions,
            sockets,
        };
        let record = serde_json::to_string(&me).expect("a member serializes");
        let keep_ms = self.config.heartbeat_ms * 3;
        let mut set = redis::cmd("SET");
        set.arg(self.member_key(&self.id))
            .arg(record)
            .arg("PX")
            .arg(keep_ms);
        self.link.query::<()>(&set).await?;
        let mut add = redis::cmd("ZADD");
        add.arg(self.members_key()).arg(now).arg(&self.id);
        self.link.query::<i64>(&add).await?;
        let mut trim = redis::cmd("ZREMRANGEBYSCORE");
        trim.arg(self.members_key())
            .arg("-inf")
            .arg(now.saturating_sub(keep_ms * 10));
        self.link.query::<i64>(&trim).await?;
        let members = self.read_members().await?;
        *self.members.lock().expect("members poisoned") =
            members.into_iter().map(|m| (m.id.clone(), m)).collect();
        Ok(())
    }

    /// Every instance that has beaten lately, by id.
    pub async fn read_members(&self) -> Result<Vec<Member>> {
        let mut range = redis::cmd("ZRANGE");
        range.arg(self.members_key()).arg(0).arg(-1);
        let ids: Vec<String> = self.link.query(&range).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut get = redis::cmd("MGET");
        for id in &ids {
            get.arg(self.member_key(id));
        }
        let records: Vec<Option<String>> = self.link.query(&get).await?;
        let mut members: Vec<Member> = records
            .into_iter()
            .flatten()
            .filter_map(|r| serde_json::from_str(&r).ok())
            .collect();
        members.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(members)
    }

    /// Whether `ip` is an instance of this cluster (by the address in its
    /// URL): requests it forwards were limited where they came in.
    pub fn is_peer(&self, ip: std::net::IpAddr) -> bool {
        self.members
            .lock()
            .expect("members poisoned")
            .values()
            .any(|m| host_ip(&m.url) == Some(ip))
    }

    /// The URL of instance `id`, if it has beaten lately.
    pub fn url_of(&self, id: &str) -> Option<String> {
        self.members
            .lock()
            .expect("members poisoned")
            .get(id)
            .map(|m| m.url.clone())
    }

    /// Heartbeats until the cluster is dropped; `status` says how many
    /// sessions and sockets this instance has.
    pub fn start(self: &Arc<Self>, status: impl Fn() -> (usize, i64) + Send + 'static) {
        let cluster: Weak<Cluster> = Arc::downgrade(self);
        let every = Duration::from_millis(self.config.heartbeat_ms);
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                let Some(this) = cluster.upgrade() else {
                    return;
                };
                let (sessions, sockets) = status();
                match this.beat(sessions, sockets).await {
                    Ok(()) if failing => {
                        tracing::info!("heartbeats reach Redis again");
                        failing = false;
                    }
                    Ok(()) => {}
                    Err(error) if !failing => {
                        tracing::warn!(%error, "a heartbeat failed");
                        failing = true;
                    }
                    Err(_) => {}
                }
                drop(this);
                tokio::time::sleep(every).await;
            }
        });
    }
}

/// The IP address in `http://ADDRESS:PORT`, if it is one (not a name).
fn host_ip(url: &str) -> Option<std::net::IpAddr> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    authority
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| authority.parse())
        .ok()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_members_address_is_read_from_its_url() {
        assert_eq!(
            super::host_ip("http://10.0.0.5:7878"),
            "10.0.0.5".parse().ok()
        );
        assert_eq!(super::host_ip("http://[::1]:7878/x"), "::1".parse().ok());
        assert_eq!(super::host_ip("http://game.example:7878"), None);
    }
}
