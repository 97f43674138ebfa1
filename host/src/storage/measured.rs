//! A decorator that times every storage call and hands the time to an
//! [`Observe`]r (the host's metrics), by backend, capability and operation.
//! It sits outermost, so it times what plugins and sessions see, the outage
//! layer included.

use crate::storage::{
    Applied, ColdStore, ColdWrite, Condition, Entry, ExportView, HistoryEntry, HotStore, HotWrite,
    ItemSink, Namespace, Op, Page, Record, RecordWrite, Result,
};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where call times go.
pub trait Observe: Send + Sync + 'static {
    fn storage_call(
        &self,
        backend: &'static str,
        capability: &'static str,
        operation: &'static str,
        took: Duration,
    );
}

/// What an op is, as an operation name.
pub fn hot_operation(write: &HotWrite) -> &'static str {
    match write {
        HotWrite::Set { .. } => "set",
        HotWrite::Delete { .. } => "delete",
        HotWrite::Incr { .. } => "incr",
        HotWrite::HashSet { .. } => "hash-set",
        HotWrite::LeaderboardSet { .. } => "leaderboard-set",
        HotWrite::LeaderboardIncr { .. } => "leaderboard-incr",
        HotWrite::Publish { .. } => "publish",
    }
}

pub fn cold_operation(write: &ColdWrite) -> &'static str {
    match write {
        ColdWrite::Record(RecordWrite::Put { .. }) => "put",
        ColdWrite::Record(RecordWrite::Delete { .. }) => "delete",
        ColdWrite::Transaction(_) => "transact",
        ColdWrite::AppendHistory { .. } => "append-history",
        ColdWrite::RestoreRecord { .. } => "restore-record",
        ColdWrite::RestoreHistory { .. } => "restore-history",
    }
}

/// Hot storage, timed.
pub struct MeasuredHot {
    pub inner: Arc<dyn HotStore>,
    pub backend: &'static str,
    pub observe: Arc<dyn Observe>,
}

/// Cold storage, timed.
pub struct MeasuredCold {
    pub inner: Arc<dyn ColdStore>,
    pub backend: &'static str,
    pub observe: Arc<dyn Observe>,
}

macro_rules! timed {
    ($self:ident, $capability:literal, $operation:expr, $call:expr) => {{
        let started = Instant::now();
        let result = $call.await;
        $self
            .observe
            .storage_call($self.backend, $capability, $operation, started.elapsed());
        result
    }};
}

#[async_trait]
impl HotStore for MeasuredHot {
    async fn apply(&self, op: &Op<HotWrite>) -> Result<Applied> {
        timed!(self, "hot", hot_operation(&op.write), self.inner.apply(op))
    }
    async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Vec<u8>>> {
        timed!(self, "hot", "get", self.inner.get(ns, key))
    }
    async fn hash_get(&self, ns: &Namespace, key: &str, field: &str) -> Result<Option<Vec<u8>>> {
        timed!(self, "hot", "hash-get", self.inner.hash_get(ns, key, field))
    }
    async fn hash_get_all(&self, ns: &Namespace, key: &str) -> Result<Vec<(String, Vec<u8>)>> {
        timed!(
            self,
            "hot",
            "hash-get-all",
            self.inner.hash_get_all(ns, key)
        )
    }
    async fn leaderboard_top(&self, ns: &Namespace, board: &str, n: u32) -> Result<Vec<Entry>> {
        timed!(
            self,
            "hot",
            "leaderboard-top",
            self.inner.leaderboard_top(ns, board, n)
        )
    }
    async fn leaderboard_rank(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
    ) -> Result<Option<Entry>> {
        timed!(
            self,
            "hot",
            "leaderboard-rank",
            self.inner.leaderboard_rank(ns, board, member)
        )
    }
    async fn leaderboard_score(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
    ) -> Result<Option<f64>> {
        timed!(
            self,
            "hot",
            "leaderboard-score",
            self.inner.leaderboard_score(ns, board, member)
        )
    }
    async fn leaderboard_around(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
        n: u32,
    ) -> Result<Vec<Entry>> {
        timed!(
            self,
            "hot",
            "leaderboard-around",
            self.inner.leaderboard_around(ns, board, member, n)
        )
    }
    async fn export(&self, ns: &Namespace, sink: ItemSink<'_>) -> Result<ExportView> {
        timed!(self, "hot", "export", self.inner.export(ns, sink))
    }
    async fn ping(&self) -> Result<()> {
        timed!(self, "hot", "ping", self.inner.ping())
    }
}

#[async_trait]
impl ColdStore for MeasuredCold {
    async fn apply(&self, op: &Op<ColdWrite>) -> Result<Applied> {
        timed!(
            self,
            "cold",
            cold_operation(&op.write),
            self.inner.apply(op)
        )
    }
    async fn apply_batch(&self, ops: &[&Op<ColdWrite>]) -> Result<Vec<Applied>> {
        timed!(self, "cold", "batch", self.inner.apply_batch(ops))
    }
    async fn get(&self, ns: &Namespace, collection: &str, key: &str) -> Result<Option<Record>> {
        timed!(self, "cold", "get", self.inner.get(ns, collection, key))
    }
    async fn list(
        &self,
        ns: &Namespace,
        collection: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page> {
        timed!(
            self,
            "cold",
            "list",
            self.inner.list(ns, collection, prefix, cursor, limit)
        )
    }
    async fn query(
        &self,
        ns: &Namespace,
        collection: &str,
        conditions: &[Condition],
        limit: u32,
    ) -> Result<Vec<Record>> {
        timed!(
            self,
            "cold",
            "query",
            self.inner.query(ns, collection, conditions, limit)
        )
    }
    async fn read_history(
        &self,
        ns: &Namespace,
        stream: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        timed!(
            self,
            "cold",
            "read-history",
            self.inner.read_history(ns, stream, after, limit)
        )
    }
    async fn export(&self, ns: &Namespace, sink: ItemSink<'_>) -> Result<ExportView> {
        timed!(self, "cold", "export", self.inner.export(ns, sink))
    }
    async fn ping(&self) -> Result<()> {
        timed!(self, "cold", "ping", self.inner.ping())
    }
}
