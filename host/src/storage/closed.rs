//! Storage that is not at hand: every call is refused. A plugin's
//! `upgrade` runs on it, so that a function the host may call again (after
//! a restart, or a view that stored nothing) cannot write twice, or at all.

use super::{
    Applied, ColdStore, ColdWrite, Condition, Entry, Error, ExportView, HistoryEntry, HotStore,
    HotWrite, ItemSink, Namespace, Op, Page, Record, Result,
};
use async_trait::async_trait;

/// Refuses every read and write with `invalid`, naming why.
pub struct Closed {
    /// What the plugin is doing, for the refusal: `upgrade`.
    pub during: &'static str,
}

impl Closed {
    fn refuse<T>(&self) -> Result<T> {
        Err(Error::Invalid {
            field: "storage",
            reason: format!("storage is not at hand during {}", self.during),
        })
    }
}

#[async_trait]
impl HotStore for Closed {
    async fn apply(&self, _: &Op<HotWrite>) -> Result<Applied> {
        self.refuse()
    }
    async fn get(&self, _: &Namespace, _: &str) -> Result<Option<Vec<u8>>> {
        self.refuse()
    }
    async fn hash_get(&self, _: &Namespace, _: &str, _: &str) -> Result<Option<Vec<u8>>> {
        self.refuse()
    }
    async fn hash_get_all(&self, _: &Namespace, _: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.refuse()
    }
    async fn leaderboard_top(&self, _: &Namespace, _: &str, _: u32) -> Result<Vec<Entry>> {
        self.refuse()
    }
    async fn leaderboard_around(
        &self,
        _: &Namespace,
        _: &str,
        _: &str,
        _: u32,
    ) -> Result<Vec<Entry>> {
        self.refuse()
    }
    async fn export(&self, _: &Namespace, _: ItemSink<'_>) -> Result<ExportView> {
        self.refuse()
    }
    async fn ping(&self) -> Result<()> {
        self.refuse()
    }
}

#[async_trait]
impl ColdStore for Closed {
    async fn apply(&self, _: &Op<ColdWrite>) -> Result<Applied> {
        self.refuse()
    }
    async fn get(&self, _: &Namespace, _: &str, _: &str) -> Result<Option<Record>> {
        self.refuse()
    }
    async fn list(&self, _: &Namespace, _: &str, _: &str, _: Option<&str>, _: u32) -> Result<Page> {
        self.refuse()
    }
    async fn query(&self, _: &Namespace, _: &str, _: &[Condition], _: u32) -> Result<Vec<Record>> {
        self.refuse()
    }
    async fn read_history(
        &self,
        _: &Namespace,
        _: &str,
        _: u64,
        _: u32,
    ) -> Result<Vec<HistoryEntry>> {
        self.refuse()
    }
    async fn export(&self, _: &Namespace, _: ItemSink<'_>) -> Result<ExportView> {
        self.refuse()
    }
    async fn ping(&self) -> Result<()> {
        self.refuse()
    }
}
