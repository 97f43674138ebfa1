//! Backends that connect on first use. With the outage layer on, a host
//! starts even while Redis or PostgreSQL is down: it serves from the
//! outbox and the local view, and connects when the server answers (the
//! replayer's probes ask). Each failed attempt is remembered, so calls do
//! not hammer a dead server: the next attempt waits `retry_every`.

use crate::storage::{
    Applied, ColdStore, ColdWrite, Condition, Entry, Error, ExportView, HistoryEntry, HotStore,
    HotWrite, ItemSink, Namespace, Op, Page, Record, Result,
};
use async_trait::async_trait;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// A connection under way: the backend, or why not.
pub type Connecting<T> = Pin<Box<dyn Future<Output = std::result::Result<Arc<T>, String>> + Send>>;

/// How to connect: a function starting a [`Connecting`].
pub type Connect<T> = Box<dyn Fn() -> Connecting<T> + Send + Sync>;

struct Lazy<T: ?Sized> {
    connect: Connect<T>,
    connected: OnceCell<Arc<T>>,
    /// When the last attempt failed, and why.
    failed: Mutex<Option<(Instant, String)>>,
    retry_every: Duration,
}

impl<T: ?Sized + Send + Sync> Lazy<T> {
    async fn get(&self) -> Result<Arc<T>> {
        if let Some(backend) = self.connected.get() {
            return Ok(backend.clone());
        }
        if let Some((at, reason)) = &*self.failed.lock().expect("lazy poisoned")
            && at.elapsed() < self.retry_every
        {
            return Err(Error::Unavailable(reason.clone()));
        }
        let connected = self
            .connected
            .get_or_try_init(|| (self.connect)())
            .await
            .cloned();
        match connected {
            Ok(backend) => {
                *self.failed.lock().expect("lazy poisoned") = None;
                Ok(backend)
            }
            Err(reason) => {
                *self.failed.lock().expect("lazy poisoned") =
                    Some((Instant::now(), reason.clone()));
                Err(Error::Unavailable(reason))
            }
        }
    }
}

/// Hot storage that connects on first use.
pub struct LazyHot(Lazy<dyn HotStore>);

impl LazyHot {
    pub fn new(connect: Connect<dyn HotStore>, retry_every: Duration) -> Self {
        LazyHot(Lazy {
            connect,
            connected: OnceCell::new(),
            failed: Mutex::new(None),
            retry_every,
        })
    }
}

#[async_trait]
impl HotStore for LazyHot {
    async fn apply(&self, op: &Op<HotWrite>) -> Result<Applied> {
        self.0.get().await?.apply(op).await
    }
    async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Vec<u8>>> {
        self.0.get().await?.get(ns, key).await
    }
    async fn hash_get(&self, ns: &Namespace, key: &str, field: &str) -> Result<Option<Vec<u8>>> {
        self.0.get().await?.hash_get(ns, key, field).await
    }
    async fn hash_get_all(&self, ns: &Namespace, key: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.0.get().await?.hash_get_all(ns, key).await
    }
    async fn leaderboard_top(&self, ns: &Namespace, board: &str, n: u32) -> Result<Vec<Entry>> {
        self.0.get().await?.leaderboard_top(ns, board, n).await
    }
    async fn leaderboard_score(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
    ) -> Result<Option<f64>> {
        self.0
            .get()
            .await?
            .leaderboard_score(ns, board, member)
            .await
    }
    async fn leaderboard_around(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
        n: u32,
    ) -> Result<Vec<Entry>> {
        self.0
            .get()
            .await?
            .leaderboard_around(ns, board, member, n)
            .await
    }
    async fn export(&self, ns: &Namespace, sink: ItemSink<'_>) -> Result<ExportView> {
        self.0.get().await?.export(ns, sink).await
    }
    async fn ping(&self) -> Result<()> {
        self.0.get().await?.ping().await
    }
}

/// Cold storage that connects on first use.
pub struct LazyCold(Lazy<dyn ColdStore>);

impl LazyCold {
    pub fn new(connect: Connect<dyn ColdStore>, retry_every: Duration) -> Self {
        LazyCold(Lazy {
            connect,
            connected: OnceCell::new(),
            failed: Mutex::new(None),
            retry_every,
        })
    }
}

#[async_trait]
impl ColdStore for LazyCold {
    async fn apply(&self, op: &Op<ColdWrite>) -> Result<Applied> {
        self.0.get().await?.apply(op).await
    }

    async fn apply_batch(&self, ops: &[&Op<ColdWrite>]) -> Result<Vec<Applied>> {
        self.0.get().await?.apply_batch(ops).await
    }
    async fn get(&self, ns: &Namespace, collection: &str, key: &str) -> Result<Option<Record>> {
        self.0.get().await?.get(ns, collection, key).await
    }
    async fn list(
        &self,
        ns: &Namespace,
        collection: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page> {
        self.0
            .get()
            .await?
            .list(ns, collection, prefix, cursor, limit)
            .await
    }
    async fn query(
        &self,
        ns: &Namespace,
        collection: &str,
        conditions: &[Condition],
        limit: u32,
    ) -> Result<Vec<Record>> {
        self.0
            .get()
            .await?
            .query(ns, collection, conditions, limit)
            .await
    }
    async fn read_history(
        &self,
        ns: &Namespace,
        stream: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        self.0
            .get()
            .await?
            .read_history(ns, stream, after, limit)
            .await
    }
    async fn export(&self, ns: &Namespace, sink: ItemSink<'_>) -> Result<ExportView> {
        self.0.get().await?.export(ns, sink).await
    }
    async fn ping(&self) -> Result<()> {
        self.0.get().await?.ping().await
    }
}
