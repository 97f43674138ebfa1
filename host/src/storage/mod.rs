//! Storage: the two capabilities hoard gives plugins, and their backends.
//!
//! - [`HotStore`]: Redis-like state (values with TTL, counters, hashes,
//!   leaderboards, publish).
//! - [`ColdStore`]: Postgres-like records (versioned JSON documents, queries,
//!   transactions, history streams).
//!
//! **Every write is a value.** Reads are plain trait methods; every write is
//! an [`Op`] (an id, a namespace and a [`HotWrite`] or [`ColdWrite`]) passed
//! to `apply`. The same value can therefore be applied, queued, replayed and
//! deduplicated by a layer that wraps a backend without knowing its insides;
//! every backend applies an op id once, so replaying is always safe.
//!
//! Backends are siblings that only implement the traits: [`sled`] (embedded,
//! both capabilities), [`redis`] (hot, on Redis or Redis Cluster) and
//! [`postgres`] (cold). Every backend passes the same conformance suite
//! (`tests/src/conformance.rs`). A write is acknowledged (its `apply` returns) only once
//! it is durable.
//!
//! **Invariant:** this module knows nothing of wasmtime, HTTP, JSON wire
//! formats of the API, or figment. Namespaces keep plugins apart: every key is
//! scoped by the [`Namespace`] of the op or read.

mod closed;
mod cursor;
mod error;
mod limits;
pub mod measured;
mod op;
pub mod postgres;
pub mod query;
pub mod redis;
pub mod resilient;
pub mod sled;

pub use closed::Closed;
pub use error::Error;
pub use limits::Limits;
pub use op::{Applied, ColdWrite, HotWrite, Namespace, NamespaceError, Op, OpId, RecordWrite};
pub use query::{Compare, Condition};

use async_trait::async_trait;

/// A storage result: the error is the one guests see.
pub type Result<T> = std::result::Result<T, Error>;

/// A leaderboard row.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub member: String,
    pub score: f64,
    /// 0 is the top.
    pub rank: u64,
}

/// A cold record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    /// 1 after the first write, +1 for every later write.
    pub version: u64,
    /// A JSON document.
    pub body: String,
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub records: Vec<Record>,
    /// Opaque; pass back to continue after the last record.
    pub next_cursor: Option<String>,
}

impl Page {
    /// A page from up to `limit + 1` records read in key order: the extra
    /// one only tells that more follow, and the cursor points after the last
    /// record kept.
    pub fn from_overfetch(mut records: Vec<Record>, limit: u32) -> Page {
        let more = records.len() > limit as usize;
        records.truncate(limit as usize);
        let next_cursor = match (more, records.last()) {
            (true, Some(last)) => Some(cursor::encode(last.key.as_bytes())),
            _ => None,
        };
        Page {
            records,
            next_cursor,
        }
    }
}

/// One entry of a history stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub seq: u64,
    pub body: String,
}

/// One piece of a namespace's data, as an export reads it and an import
/// writes it back: each is one write (see `data`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Item {
    /// A hot value (counters too), with the time it had left to live.
    Value {
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    HashField {
        key: String,
        field: String,
        value: Vec<u8>,
    },
    Score {
        board: String,
        member: String,
        score: f64,
    },
    Record {
        collection: String,
        key: String,
        version: u64,
        body: String,
    },
    History {
        stream: String,
        seq: u64,
        body: String,
    },
}

/// How consistent an export's reads were.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportView {
    /// Every item as it was at one moment: the text says how.
    Snapshot(&'static str),
    /// Items read one after another while writes may go on: the text says
    /// why no snapshot was taken.
    Live(&'static str),
}

/// Where an export hands its items, one at a time; an error stops it.
pub type ItemSink<'a> = &'a mut (dyn FnMut(Item) -> Result<()> + Send);

/// Hot storage: fast, Redis-like. Values, hashes and leaderboards are three
/// separate keyspaces inside each namespace.
#[async_trait]
pub trait HotStore: Send + Sync + 'static {
    /// Applies one write durably, returning its result. Once per op id: an
    /// op applied before (within the backend's retention) changes nothing
    /// and returns its first result. `Publish` is the exception: it is
    /// delivered to whoever listens now, each time.
    async fn apply(&self, op: &Op<HotWrite>) -> Result<Applied>;

    async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Vec<u8>>>;
    async fn hash_get(&self, ns: &Namespace, key: &str, field: &str) -> Result<Option<Vec<u8>>>;
    /// Every field, sorted by field name.
    async fn hash_get_all(&self, ns: &Namespace, key: &str) -> Result<Vec<(String, Vec<u8>)>>;
    async fn leaderboard_top(&self, ns: &Namespace, board: &str, n: u32) -> Result<Vec<Entry>>;
    /// `member`'s entry, or `None` if it has no score.
    async fn leaderboard_rank(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
    ) -> Result<Option<Entry>> {
        Ok(self.leaderboard_around(ns, board, member, 0).await?.pop())
    }
    /// `member`'s score, or `None` if it has none: without its rank,
    /// which some backends count (sled: O(rank)).
    async fn leaderboard_score(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
    ) -> Result<Option<f64>> {
        Ok(self
            .leaderboard_rank(ns, board, member)
            .await?
            .map(|entry| entry.score))
    }
    /// Up to `n` entries above `member`, the member, up to `n` below.
    async fn leaderboard_around(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
        n: u32,
    ) -> Result<Vec<Entry>>;

    /// Every value, hash field and leaderboard score of `ns`, handed to
    /// `sink` one by one (expired values left out).
    async fn export(&self, ns: &Namespace, sink: ItemSink<'_>) -> Result<ExportView>;

    /// Checks the backend answers; used by `/readyz`.
    async fn ping(&self) -> Result<()>;
}

/// Cold storage: durable, Postgres-like.
#[async_trait]
pub trait ColdStore: Send + Sync + 'static {
    /// Applies one write (or one transaction) durably and atomically, once
    /// per op id, as [`HotStore::apply`] does.
    async fn apply(&self, op: &Op<ColdWrite>) -> Result<Applied>;

    /// Applies `ops` in order and commits them together: `Ok` holds each
    /// op's result, and all of them are applied. `Err` means none may be
    /// taken as applied (one was refused, or the commit's outcome is
    /// unknown): the caller applies them one by one, which op ids make
    /// safe. The outage layer's replay pays one commit for many ops so; a
    /// backend without such a commit applies none.
    async fn apply_batch(&self, ops: &[&Op<ColdWrite>]) -> Result<Vec<Applied>> {
        let _ = ops;
        Err(Error::Unavailable(
            "this backend does not commit batches".into(),
        ))
    }

    async fn get(&self, ns: &Namespace, collection: &str, key: &str) -> Result<Option<Record>>;
    async fn list(
        &self,
        ns: &Namespace,
        collection: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page>;
    async fn query(
        &self,
        ns: &Namespace,
        collection: &str,
        conditions: &[Condition],
        limit: u32,
    ) -> Result<Vec<Record>>;
    /// Entries after `after`, oldest first; `NotFound` if the stream was never
    /// appended to.
    async fn read_history(
        &self,
        ns: &Namespace,
        stream: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>>;

    /// Every record and history entry of `ns`, handed to `sink` one by one.
    async fn export(&self, ns: &Namespace, sink: ItemSink<'_>) -> Result<ExportView>;

    async fn ping(&self) -> Result<()>;
}

/// The storage a host hands out: both capabilities and the limits on them.
#[derive(Clone)]
pub struct Storage {
    pub hot: std::sync::Arc<dyn HotStore>,
    pub cold: std::sync::Arc<dyn ColdStore>,
    pub limits: Limits,
}
