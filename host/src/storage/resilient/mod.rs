//! The outage layer: keeps games running while Redis or PostgreSQL is down.
//!
//! A decorator over a service backend ([`ResilientHot`] over Redis or
//! Redis Cluster, [`ResilientCold`] over PostgreSQL) that implements the
//! same trait, so nothing above storage knows it is there. Sled, embedded,
//! needs none.
//!
//! - **Breaker** (`breaker`): closed, open or half-open per backend; every
//!   backend call has `call_timeout_ms`, and a timeout counts as a failure
//!   whose outcome is unknown.
//! - **Outbox** (`outbox`): while a backend is down, and until everything
//!   queued for it has replayed, its writes go to a durable queue in a sled
//!   database of its own (`outbox_path`), and are acknowledged once flushed
//!   (group commit across writers). A write that timed out is queued too:
//!   every backend applies an op id once, so replaying it is safe.
//! - **Replay** (`guarded`): in order per key, several keys at once (on a
//!   backend that commits batches, a group of keys per commit), with
//!   backoff and jitter; an op leaves the outbox only once the backend
//!   confirmed it. One that fails for good goes to the dead letters, and
//!   the rest flow on.
//! - **Local view** (`hot`, `cold`, `local`): a key with queued writes is
//!   read through them; other reads fall back to a bounded copy of what was
//!   recently read or written; what cannot be answered is `unavailable`.
//!   What a plugin can rely on while a backend is down is in `hot` and
//!   `cold` (and in the WIT and the README).
//! - **Bounds**: the outbox holds at most `outbox_ops_max` ops and
//!   `outbox_bytes_max` bytes; past that a write gets `limit-exceeded`. The
//!   dead letters and the local copies are bounded too.
//!
//! Operators see it through [`Resilience::health`] (readiness, the
//! `Hoard-Degraded` header, `/metrics`, the admin API) and manage dead
//! letters through [`Resilience::dead_letters`], [`Resilience::retry`] and
//! [`Resilience::drop_dead_letter`].

mod breaker;
mod cold;
mod guarded;
mod hot;
mod lazy;
mod local;
mod outbox;

pub use breaker::BreakerState;
pub use cold::ResilientCold;
pub use hot::ResilientHot;
pub use lazy::{Connect, Connecting, LazyCold, LazyHot};

use crate::storage::sled::commit::GroupCommit;
use crate::storage::sled::{OpenError, now_ms, open_db};
use crate::storage::{ColdStore, ColdWrite, HotStore, HotWrite, Result};
use async_trait::async_trait;
use breaker::{Breaker, BreakerConfig};
use guarded::{Backend, Guarded, Guarding, Tuning, View};
use outbox::{Outbox, OutboxLimits};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Settings of the outage layer (`storage.resilience`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResilienceConfig {
    /// Put the layer over Redis and PostgreSQL. Off, a backend that is down
    /// fails every call with `unavailable`.
    pub enabled: bool,
    /// The outbox's sled database; created if missing.
    pub outbox_path: PathBuf,
    /// sled's page cache for the outbox.
    pub outbox_cache_bytes: u64,
    /// Longest wait for any one backend call; past it the outcome is
    /// unknown, and a write is queued.
    pub call_timeout_ms: u64,
    /// Failures in a row that open a breaker.
    pub failure_threshold: u32,
    /// First wait before probing an open breaker's backend; it doubles (with
    /// jitter) while probes fail, up to `probe_interval_max_ms`.
    pub probe_interval_ms: u64,
    pub probe_interval_max_ms: u64,
    /// Most ops one replay round takes from the outbox.
    pub replay_batch_max: usize,
    /// Most keys replayed at once.
    pub replay_lanes_max: usize,
    /// Most ops replay commits together on PostgreSQL (one transaction);
    /// 1 commits each alone. Replay holds about `replay_lanes_max /
    /// replay_commit_max` connections of the pool at once.
    pub replay_commit_max: usize,
    /// Most ops and bytes the outbox holds per backend; past them, writes
    /// get `limit-exceeded`.
    pub outbox_ops_max: u64,
    pub outbox_bytes_max: u64,
    /// `/readyz` answers 503 once an outbox is this full (percent).
    pub ready_fill_percent: u8,
    /// Most dead letters kept per backend; the oldest go first.
    pub dead_letters_max: u64,
    /// Most entries and bytes of the local copy per backend.
    pub local_copy_entries_max: usize,
    pub local_copy_bytes_max: u64,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        ResilienceConfig {
            enabled: true,
            outbox_path: PathBuf::from("data/outbox.sled"),
            outbox_cache_bytes: 16 * 1024 * 1024,
            call_timeout_ms: 500,
            failure_threshold: 3,
            probe_interval_ms: 200,
            probe_interval_max_ms: 5000,
            replay_batch_max: 512,
            replay_lanes_max: 64,
            replay_commit_max: 8,
            outbox_ops_max: 1_000_000,
            outbox_bytes_max: 1024 * 1024 * 1024,
            ready_fill_percent: 80,
            dead_letters_max: 100_000,
            local_copy_entries_max: 100_000,
            local_copy_bytes_max: 64 * 1024 * 1024,
        }
    }
}

/// How one guarded backend is doing.
#[derive(Clone, Debug)]
pub struct CapabilityHealth {
    /// `hot` or `cold`.
    pub capability: &'static str,
    /// `redis`, `redis-cluster` or `postgres`.
    pub backend: &'static str,
    pub breaker: BreakerState,
    /// Why the breaker opened, while it is not closed.
    pub reason: Option<String>,
    pub queued_ops: u64,
    pub queued_bytes: u64,
    pub outbox_ops_max: u64,
    pub outbox_bytes_max: u64,
    /// How long the oldest queued op has waited.
    pub oldest_queued_ms: Option<u64>,
    /// Queued ops by plugin (namespace).
    pub queued_by_namespace: Vec<(String, u64)>,
    pub replayed_total: u64,
    /// Ops replayed per second lately.
    pub replay_rate: f64,
    pub dead_letters: u64,
    pub last_error: Option<String>,
}

impl CapabilityHealth {
    /// Not running normally: the breaker is not closed, or writes wait.
    pub fn degraded(&self) -> bool {
        self.breaker != BreakerState::Closed || self.queued_ops > 0
    }

    /// How full the outbox is, 0 to 1, by the fuller of its two limits.
    pub fn fill(&self) -> f64 {
        let ops = self.queued_ops as f64 / self.outbox_ops_max.max(1) as f64;
        let bytes = self.queued_bytes as f64 / self.outbox_bytes_max.max(1) as f64;
        ops.max(bytes)
    }
}

/// A dead letter, as operators see it.
#[derive(Clone, Debug)]
pub struct DeadLetterInfo {
    /// Its id within its capability, for `retry` and `drop`.
    pub id: u64,
    pub capability: &'static str,
    pub namespace: String,
    /// What the write was, in a few words.
    pub write: String,
    pub error: String,
    pub attempts: u32,
    pub enqueued_at_ms: u64,
    pub failed_at_ms: u64,
}

/// What the admin side needs of a guarded backend, whatever its kind.
#[async_trait]
trait Guard: Send + Sync {
    fn capability(&self) -> &'static str;
    /// Cheaply: whether the breaker is not closed or writes wait.
    fn degraded(&self) -> bool;
    fn health(&self) -> CapabilityHealth;
    fn dead_letters(&self, after: u64, limit: usize) -> Result<Vec<DeadLetterInfo>>;
    async fn retry(&self, id: u64) -> Result<bool>;
    async fn drop_dead_letter(&self, id: u64) -> Result<bool>;
}

/// A write, in a few words, for operators.
trait Describe {
    fn describe(&self) -> String;
}

impl Describe for HotWrite {
    fn describe(&self) -> String {
        match self {
            HotWrite::Set { key, ttl_ms, .. } => match ttl_ms {
                Some(ttl) => format!("set {key:?} (ttl {ttl} ms)"),
                None => format!("set {key:?}"),
            },
            HotWrite::Delete { key } => format!("delete {key:?}"),
            HotWrite::Incr { key, delta } => format!("incr {key:?} by {delta}"),
            HotWrite::HashSet { key, field, .. } => format!("hash-set {key:?} {field:?}"),
            HotWrite::LeaderboardSet {
                board,
                member,
                score,
            } => {
                format!("leaderboard-set {board:?} {member:?} {score}")
            }
            HotWrite::LeaderboardIncr {
                board,
                member,
                delta,
            } => {
                format!("leaderboard-incr {board:?} {member:?} by {delta}")
            }
            HotWrite::Publish { channel, .. } => format!("publish {channel:?}"),
        }
    }
}

impl Describe for ColdWrite {
    fn describe(&self) -> String {
        let record = |write: &crate::storage::RecordWrite| {
            let verb = match write {
                crate::storage::RecordWrite::Put { .. } => "put",
                crate::storage::RecordWrite::Delete { .. } => "delete",
            };
            match write.expected_version() {
                Some(v) => format!(
                    "{verb} {:?}/{:?} expecting version {v}",
                    write.collection(),
                    write.key()
                ),
                None => format!("{verb} {:?}/{:?}", write.collection(), write.key()),
            }
        };
        match self {
            ColdWrite::Record(write) => record(write),
            ColdWrite::Transaction(writes) => format!(
                "transaction: {}",
                writes.iter().map(record).collect::<Vec<_>>().join("; ")
            ),
            ColdWrite::AppendHistory { stream, .. } => format!("append-history {stream:?}"),
            ColdWrite::RestoreRecord {
                collection,
                key,
                version,
                ..
            } => format!("restore {collection:?}/{key:?} at version {version}"),
            ColdWrite::RestoreHistory { stream, seq, .. } => {
                format!("restore-history {stream:?} entry {seq}")
            }
        }
    }
}

#[async_trait]
impl<B, V> Guard for Guarded<B, V>
where
    B: Backend,
    B::Write: Describe,
    V: View<Write = B::Write>,
{
    fn capability(&self) -> &'static str {
        self.capability
    }

    fn degraded(&self) -> bool {
        self.breaker.state() != BreakerState::Closed || !self.outbox.is_empty()
    }

    fn health(&self) -> CapabilityHealth {
        let stats = self.outbox_stats();
        let limits = self.outbox.limits();
        CapabilityHealth {
            capability: self.capability,
            backend: self.backend_name,
            breaker: self.breaker.state(),
            reason: self.breaker.reason(),
            queued_ops: stats.ops,
            queued_bytes: stats.bytes,
            outbox_ops_max: limits.ops_max,
            outbox_bytes_max: limits.bytes_max,
            oldest_queued_ms: stats
                .oldest_enqueued_at_ms
                .map(|at| now_ms().saturating_sub(at)),
            queued_by_namespace: stats
                .by_namespace
                .into_iter()
                .map(|(ns, n)| (ns.as_str().to_owned(), n))
                .collect(),
            replayed_total: self.replayed(),
            replay_rate: self.replay_rate(),
            dead_letters: stats.dead_letters,
            last_error: self.last_error(),
        }
    }

    fn dead_letters(&self, after: u64, limit: usize) -> Result<Vec<DeadLetterInfo>> {
        Ok(Guarded::dead_letters(self, after, limit)?
            .into_iter()
            .map(|(id, letter)| DeadLetterInfo {
                id,
                capability: self.capability,
                namespace: letter.op.namespace.as_str().to_owned(),
                write: letter.op.write.describe(),
                error: letter.error,
                attempts: letter.attempts,
                enqueued_at_ms: letter.enqueued_at_ms,
                failed_at_ms: letter.failed_at_ms,
            })
            .collect())
    }

    async fn retry(&self, id: u64) -> Result<bool> {
        self.retry_dead_letter(id).await
    }

    async fn drop_dead_letter(&self, id: u64) -> Result<bool> {
        Guarded::drop_dead_letter(self, id).await
    }
}

/// The format marker of the outbox database.
const OUTBOX_FORMAT: &str = "hoard-outbox-v1";

/// An outbox up to this size is copied before it is opened (see
/// `sled::open_db`); a larger one (an outbox full after a long outage) is
/// opened as it is.
const OUTBOX_PRESERVE_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// The outage layer of one host: its outbox database and every backend it
/// guards.
pub struct Resilience {
    db: sled::Db,
    commit: Arc<GroupCommit>,
    config: ResilienceConfig,
    guards: Mutex<Vec<Arc<dyn Guard>>>,
}

impl Resilience {
    /// Opens the outbox database (a corrupt one is moved aside and
    /// reported, never wiped).
    pub fn open(config: &ResilienceConfig) -> std::result::Result<Arc<Resilience>, OpenError> {
        // The outbox is small but for an outage: keep it exactly as found
        // if it turns out damaged.
        let db = open_db(
            &config.outbox_path,
            config.outbox_cache_bytes,
            OUTBOX_FORMAT,
            OUTBOX_PRESERVE_BYTES_MAX,
        )?;
        let commit = Arc::new(GroupCommit::start(db.clone())?);
        Ok(Arc::new(Resilience {
            db,
            commit,
            config: config.clone(),
            guards: Mutex::new(Vec::new()),
        }))
    }

    fn parts(&self) -> (BreakerConfig, Tuning, OutboxLimits) {
        let config = &self.config;
        (
            BreakerConfig {
                failure_threshold: config.failure_threshold.max(1),
                probe_interval: Duration::from_millis(config.probe_interval_ms.max(1)),
                probe_interval_max: Duration::from_millis(config.probe_interval_max_ms.max(1)),
            },
            Tuning {
                call_timeout: Duration::from_millis(config.call_timeout_ms.max(1)),
                replay_batch_max: config.replay_batch_max.max(1),
                replay_lanes_max: config.replay_lanes_max.max(1),
                replay_commit_max: config.replay_commit_max.max(1),
                probe_interval: Duration::from_millis(config.probe_interval_ms.max(1)),
            },
            OutboxLimits {
                ops_max: config.outbox_ops_max,
                bytes_max: config.outbox_bytes_max,
                dead_letters_max: config.dead_letters_max,
            },
        )
    }

    /// Puts the layer over hot storage on `backend` (named `backend_name`).
    pub fn guard_hot(
        &self,
        backend: Arc<dyn HotStore>,
        backend_name: &'static str,
    ) -> Result<Arc<ResilientHot>> {
        let core = self.start_guard(
            "hot",
            backend_name,
            hot::HotBackend(backend),
            hot::HotView::new,
        )?;
        Ok(Arc::new(ResilientHot { core }))
    }

    /// Puts the layer over cold storage on `backend`.
    pub fn guard_cold(
        &self,
        backend: Arc<dyn ColdStore>,
        backend_name: &'static str,
    ) -> Result<Arc<ResilientCold>> {
        let core = self.start_guard(
            "cold",
            backend_name,
            cold::ColdBackend(backend),
            cold::ColdView::new,
        )?;
        Ok(Arc::new(ResilientCold { core }))
    }

    /// Opens `capability`'s outbox, starts its replayer and keeps it among
    /// the guards; `view` makes the local copy from its entry and byte
    /// limits.
    fn start_guard<B, V>(
        &self,
        capability: &'static str,
        backend_name: &'static str,
        backend: B,
        view: impl FnOnce(usize, usize) -> V,
    ) -> Result<Arc<Guarded<B, V>>>
    where
        B: Backend,
        B::Write: Describe,
        V: View<Write = B::Write>,
    {
        let (breaker, tuning, limits) = self.parts();
        let (outbox, held) = Outbox::open(&self.db, capability, self.commit.clone(), limits)?;
        let view = view(
            self.config.local_copy_entries_max,
            usize::try_from(self.config.local_copy_bytes_max).unwrap_or(usize::MAX),
        );
        let core = Guarded::start(Guarding {
            capability,
            backend_name,
            backend,
            outbox,
            held,
            breaker: Breaker::new(breaker),
            view,
            tuning,
        });
        self.guards
            .lock()
            .expect("guards poisoned")
            .push(core.clone());
        Ok(core)
    }

    fn guards(&self) -> Vec<Arc<dyn Guard>> {
        self.guards.lock().expect("guards poisoned").clone()
    }

    fn guard(&self, capability: &str) -> Option<Arc<dyn Guard>> {
        self.guards()
            .into_iter()
            .find(|g| g.capability() == capability)
    }

    /// How every guarded backend is doing.
    pub fn health(&self) -> Vec<CapabilityHealth> {
        self.guards().iter().map(|guard| guard.health()).collect()
    }

    /// The capabilities running degraded now (cheap: for every response's
    /// `Hoard-Degraded` header).
    pub fn degraded(&self) -> Vec<&'static str> {
        self.guards()
            .iter()
            .filter(|guard| guard.degraded())
            .map(|guard| guard.capability())
            .collect()
    }

    /// `/readyz` answers 503 when an outbox is this full (0 to 1).
    pub fn ready_fill(&self) -> f64 {
        f64::from(self.config.ready_fill_percent.min(100)) / 100.0
    }

    /// Dead letters of `capability` after id `after`, at most `limit`;
    /// `None` if it is not guarded.
    pub fn dead_letters(
        &self,
        capability: &str,
        after: u64,
        limit: usize,
    ) -> Option<Result<Vec<DeadLetterInfo>>> {
        self.guard(capability)
            .map(|guard| guard.dead_letters(after, limit))
    }

    /// Queues a dead letter's op again; `Ok(false)` if there is no such
    /// letter, `None` if the capability is not guarded.
    pub async fn retry(&self, capability: &str, id: u64) -> Option<Result<bool>> {
        Some(self.guard(capability)?.retry(id).await)
    }

    /// Drops a dead letter for good.
    pub async fn drop_dead_letter(&self, capability: &str, id: u64) -> Option<Result<bool>> {
        Some(self.guard(capability)?.drop_dead_letter(id).await)
    }
}
