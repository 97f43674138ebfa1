//! The embedded backend: hot and cold storage in one sled 0.34 database.
//!
//! It needs no server, so it is the default for offline play. Writes go to
//! sled in memory and are acknowledged only after a flush (see [`commit`]).
//! TTLs are stored with each value as an absolute wall-clock expiry: reads
//! treat an expired value as absent at once, and a sweeper task deletes
//! expired values in bounded batches.
//!
//! Trees (each key starts with the namespace, see [`keys`]):
//! - `hot_values`: ns|key -> expires_at_ms (u64, 0 = never) ++ bytes
//! - `hot_expiry`: expires_at_ms ++ (ns|key) -> () (the sweeper's index; at
//!   most one entry per key, give or take a crash: see `set_value`)
//! - `hot_hashes`: ns|key ++ field -> bytes
//! - `board_scores`: ns|board ++ member -> score (f64 bits)
//! - `board_order`: ns|board ++ score_order ++ member -> ()
//! - `records`: ns|collection ++ key -> version (u64) ++ JSON body
//! - `history`: ns|stream ++ seq (u64) -> JSON body
//! - `history_heads`: ns|stream -> last seq (u64)

mod commit;
mod keys;

use crate::storage::{
    Applied, ColdStore, ColdWrite, Condition, Entry, Error, HistoryEntry, HotStore, HotWrite,
    Namespace, Op, Page, Record, RecordWrite, Result,
};
use async_trait::async_trait;
use commit::GroupCommit;
use keys::{Key, score_from_order, score_order};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// Settings of the embedded backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SledConfig {
    /// The database directory; created if missing.
    pub path: PathBuf,
    /// How often the sweeper deletes expired hot values.
    pub sweep_interval_ms: u64,
    /// Most expired values one sweep deletes, so a sweep never stalls writers.
    pub sweep_batch_max: usize,
    /// Most published messages buffered for slow listeners (they then skip).
    pub publish_buffer_max: usize,
    /// Most memory sled's page cache may use (sled's own default is 1 GiB).
    pub cache_bytes: u64,
}

impl Default for SledConfig {
    fn default() -> Self {
        SledConfig {
            path: PathBuf::from("data/hoard.sled"),
            sweep_interval_ms: 1000,
            sweep_batch_max: 1000,
            publish_buffer_max: 1024,
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A message published on a channel, as listeners receive it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub namespace: Namespace,
    pub channel: String,
    pub message: Vec<u8>,
}

/// Hot and cold storage on one sled database. Cheap to share: wrap in `Arc`.
pub struct SledStore {
    db: sled::Db,
    hot_values: sled::Tree,
    hot_expiry: sled::Tree,
    hot_hashes: sled::Tree,
    board_scores: sled::Tree,
    board_order: sled::Tree,
    records: sled::Tree,
    history: sled::Tree,
    history_heads: sled::Tree,
    commit: GroupCommit,
    /// In-process delivery of `publish`; listeners subscribe with
    /// [`SledStore::subscribe`].
    published: broadcast::Sender<Published>,
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open sled database at {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    /// sled found damage it cannot repair. The directory is moved aside, never
    /// deleted, so an operator can inspect or recover it.
    #[error(
        "sled database at {path} is corrupt ({source}); it was moved to {moved_to} and nothing was deleted: start again for a fresh database, or restore a backup there"
    )]
    Corrupt {
        path: PathBuf,
        moved_to: PathBuf,
        source: sled::Error,
    },
    #[error("cannot start the sled commit thread: {0}")]
    Thread(#[from] std::io::Error),
}

impl SledStore {
    /// Opens (or creates) the database and starts its commit thread and, when
    /// called inside a tokio runtime, its TTL sweeper.
    pub fn open(config: &SledConfig) -> std::result::Result<Arc<Self>, OpenError> {
        // hoard flushes before every acknowledgement (see `commit`), so sled's
        // own timer-driven flush would only compete with it.
        let opened = sled::Config::new()
            .path(&config.path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(config.cache_bytes)
            .flush_every_ms(None)
            .open();
        let db = match opened {
            Ok(db) => db,
            Err(source @ sled::Error::Corruption { .. }) => {
                let moved_to = config.path.with_extension(format!("corrupt-{}", now_ms()));
                std::fs::rename(&config.path, &moved_to)?;
                return Err(OpenError::Corrupt {
                    path: config.path.clone(),
                    moved_to,
                    source,
                });
            }
            Err(source) => {
                return Err(OpenError::Open {
                    path: config.path.clone(),
                    source,
                });
            }
        };
        Self::with_db(db, config)
    }

    /// A database that lives in memory and a temporary file, deleted on drop:
    /// for checking plugins without touching real data.
    pub fn open_temporary() -> std::result::Result<Arc<Self>, OpenError> {
        let config = SledConfig::default();
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .map_err(|source| OpenError::Open {
                path: "(temporary)".into(),
                source,
            })?;
        Self::with_db(db, &config)
    }

    fn with_db(db: sled::Db, config: &SledConfig) -> std::result::Result<Arc<Self>, OpenError> {
        let tree = |name: &str| {
            db.open_tree(name).map_err(|source| OpenError::Open {
                path: config.path.clone(),
                source,
            })
        };
        let store = Arc::new(SledStore {
            hot_values: tree("hot_values")?,
            hot_expiry: tree("hot_expiry")?,
            hot_hashes: tree("hot_hashes")?,
            board_scores: tree("board_scores")?,
            board_order: tree("board_order")?,
            records: tree("records")?,
            history: tree("history")?,
            history_heads: tree("history_heads")?,
            commit: GroupCommit::start(db.clone())?,
            published: broadcast::channel(config.publish_buffer_max.max(1)).0,
            db,
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(sweep_forever(
                Arc::downgrade(&store),
                Duration::from_millis(config.sweep_interval_ms.max(1)),
                config.sweep_batch_max,
            ));
        }
        Ok(store)
    }

    /// Listens to every message published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.published.subscribe()
    }

    /// Deletes up to `batch_max` values whose TTL has passed; returns how many.
    pub fn sweep_expired(&self, batch_max: usize) -> Result<usize> {
        let now = now_ms();
        let mut swept = 0;
        for item in self
            .hot_expiry
            .range(..(now + 1).to_be_bytes().to_vec())
            .take(batch_max)
        {
            let (index_key, _) = item.map_err(unavailable)?;
            let (expires_at, value_key) = index_key.split_at(8);
            // Only delete the value if this index entry still describes it: a
            // later `set` may have changed or removed its TTL.
            if let Some(value) = self.hot_values.get(value_key).map_err(unavailable)?
                && value.len() >= 8
                && value[..8] == *expires_at
            {
                let _ = self
                    .hot_values
                    .compare_and_swap(value_key, Some(value), None::<&[u8]>);
            }
            self.hot_expiry.remove(&index_key).map_err(unavailable)?;
            swept += 1;
        }
        Ok(swept)
    }

    /// How many hot values are stored, expired or not (for tests and
    /// diagnostics; O(n)).
    pub fn stored_hot_values(&self) -> usize {
        self.hot_values.len()
    }

    fn live_value(&self, key: &[u8]) -> Result<Option<(u64, sled::IVec)>> {
        let Some(stored) = self.hot_values.get(key).map_err(unavailable)? else {
            return Ok(None);
        };
        let (expires_at, _) = split_value(&stored)?;
        if expires_at != 0 && expires_at <= now_ms() {
            return Ok(None);
        }
        Ok(Some((expires_at, stored)))
    }

    /// Replaces (or with `None` removes) the stored value at `key` and
    /// keeps the expiry index at one entry per key: the new value's entry
    /// goes in first, and the entry of the value it replaced comes out once
    /// the swap has succeeded. Exactly one writer replaces each value, so
    /// each old entry is removed exactly once, however many write the key
    /// at the same time. A crash between the steps leaves a stray entry,
    /// which the sweeper drops when its time comes. Returns the old value.
    fn replace_value(&self, key: &[u8], new: Option<Vec<u8>>) -> Result<Option<sled::IVec>> {
        let new_expiry = match &new {
            Some(value) => split_value(value)?.0,
            None => 0,
        };
        let new_index = (new_expiry != 0).then(|| expiry_index_key(new_expiry, key));
        if let Some(index) = &new_index {
            self.hot_expiry
                .insert(index.as_slice(), &[])
                .map_err(unavailable)?;
        }
        loop {
            let old = self.hot_values.get(key).map_err(unavailable)?;
            let swapped = self
                .hot_values
                .compare_and_swap(key, old.as_ref(), new.as_deref())
                .map_err(unavailable)?;
            if swapped.is_err() {
                continue;
            }
            if let Some(old) = &old {
                let old_expiry = split_value(old)?.0;
                // The same expiry (two writes in one millisecond) shares
                // one entry, which the new value still needs.
                if old_expiry != 0 && old_expiry != new_expiry {
                    self.hot_expiry
                        .remove(expiry_index_key(old_expiry, key))
                        .map_err(unavailable)?;
                }
            }
            return Ok(old);
        }
    }

    /// How many entries the expiry index holds (for tests and diagnostics;
    /// O(n)).
    pub fn expiry_index_len(&self) -> usize {
        self.hot_expiry.len()
    }

    fn apply_hot(&self, ns: &Namespace, write: &HotWrite) -> Result<Applied> {
        match write {
            HotWrite::Set { key, value, ttl_ms } => {
                let key = Key::new(ns).part(key.as_bytes()).done();
                let expires_at = match ttl_ms {
                    Some(ttl_ms) => now_ms().saturating_add((*ttl_ms).max(1)),
                    None => 0,
                };
                self.replace_value(&key, Some(join_value(expires_at, value)))?;
                Ok(Applied::Done)
            }
            HotWrite::Delete { key } => {
                let key = Key::new(ns).part(key.as_bytes()).done();
                let replaced = self.replace_value(&key, None)?;
                let now = now_ms();
                let existed = match replaced {
                    Some(old) => matches!(split_value(&old)?, (at, _) if at == 0 || at > now),
                    None => false,
                };
                Ok(Applied::Existed(existed))
            }
            HotWrite::Incr { key, delta } => {
                let key = Key::new(ns).part(key.as_bytes()).done();
                let now = now_ms();
                loop {
                    let stored = self.hot_values.get(&key).map_err(unavailable)?;
                    // An expired value counts as absent (and loses its TTL),
                    // but it is still stored until swept: swap against it.
                    let (expires_at, number) = match &stored {
                        None => (0, 0),
                        Some(stored) => match split_value(stored)? {
                            (expires_at, _) if expires_at != 0 && expires_at <= now => (0, 0),
                            (expires_at, digits) => (expires_at, parse_integer(digits)?),
                        },
                    };
                    let next = number.checked_add(*delta).ok_or_else(|| {
                        Error::invalid("delta", "the result would overflow a 64-bit integer")
                    })?;
                    let next_value = join_value(expires_at, next.to_string().as_bytes());
                    let swapped = self
                        .hot_values
                        .compare_and_swap(&key, stored, Some(next_value))
                        .map_err(unavailable)?;
                    if swapped.is_ok() {
                        return Ok(Applied::Integer(next));
                    }
                }
            }
            HotWrite::HashSet { key, field, value } => {
                let key = Key::new(ns).part(key.as_bytes()).raw(field.as_bytes());
                self.hot_hashes
                    .insert(key, value.as_slice())
                    .map_err(unavailable)?;
                Ok(Applied::Done)
            }
            HotWrite::LeaderboardSet {
                board,
                member,
                score,
            } => self
                .update_score(ns, board, member, |_| Ok(*score))
                .map(|_| Applied::Done),
            HotWrite::LeaderboardIncr {
                board,
                member,
                delta,
            } => self
                .update_score(ns, board, member, |old| {
                    let new = old.unwrap_or(0.0) + delta;
                    if new.is_finite() {
                        Ok(new)
                    } else {
                        Err(Error::invalid("delta", "the new score would not be finite"))
                    }
                })
                .map(Applied::Score),
            HotWrite::Publish { channel, message } => {
                // No listener is not an error: publish is fire and forget.
                let _ = self.published.send(Published {
                    namespace: ns.clone(),
                    channel: channel.clone(),
                    message: message.clone(),
                });
                Ok(Applied::Done)
            }
        }
    }

    /// Changes a member's score and its place in the order, atomically.
    fn update_score(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
        next: impl Fn(Option<f64>) -> Result<f64>,
    ) -> Result<f64> {
        let board_key = Key::new(ns).part(board.as_bytes());
        let board_prefix = board_key.done();
        let member_key = [&board_prefix[..], member.as_bytes()].concat();
        let order_key = |score: f64| {
            [
                &board_prefix[..],
                &score_order(score)[..],
                member.as_bytes(),
            ]
            .concat()
        };
        (&self.board_scores, &self.board_order)
            .transaction(|(scores, order)| {
                let old = scores
                    .get(&member_key)?
                    .map(|bits| decode_f64(&bits))
                    .transpose();
                let old = old.map_err(ConflictableTransactionError::Abort)?;
                let new = next(old).map_err(ConflictableTransactionError::Abort)?;
                if let Some(old) = old {
                    order.remove(order_key(old))?;
                }
                scores.insert(member_key.as_slice(), &new.to_bits().to_be_bytes())?;
                order.insert(order_key(new), &[])?;
                Ok(new)
            })
            .map_err(transaction_error)
    }

    fn board_entries(
        &self,
        board_prefix: &[u8],
        range: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
        first_rank: u64,
        n: usize,
    ) -> Result<Vec<Entry>> {
        range
            .take(n)
            .enumerate()
            .map(|(i, item)| {
                let (key, _) = item.map_err(unavailable)?;
                let rest = &key[board_prefix.len()..];
                let (order, member) = rest.split_at(8);
                Ok(Entry {
                    member: utf8(member)?,
                    score: score_from_order(order.try_into().expect("split at 8")),
                    rank: first_rank + i as u64,
                })
            })
            .collect()
    }

    fn apply_records(&self, ns: &Namespace, writes: &[RecordWrite]) -> Result<Vec<u64>> {
        self.records
            .transaction(|records| {
                let mut versions = Vec::with_capacity(writes.len());
                for write in writes {
                    let key = Key::new(ns)
                        .part(write.collection().as_bytes())
                        .raw(write.key().as_bytes());
                    let current = match records.get(&key)? {
                        Some(stored) => {
                            split_record(&stored)
                                .map_err(ConflictableTransactionError::Abort)?
                                .0
                        }
                        None => 0,
                    };
                    if let Some(expected) = write.expected_version()
                        && expected != current
                    {
                        return Err(ConflictableTransactionError::Abort(Error::Conflict {
                            expected,
                            current,
                        }));
                    }
                    match write {
                        RecordWrite::Put { body, .. } => {
                            let version = current + 1;
                            records.insert(key, join_value(version, body.as_bytes()))?;
                            versions.push(version);
                        }
                        RecordWrite::Delete { .. } => {
                            records.remove(key)?;
                            // Existence, for a lone delete; 0 in a transaction.
                            versions.push(u64::from(current != 0));
                        }
                    }
                }
                Ok(versions)
            })
            .map_err(transaction_error)
    }

    fn apply_cold(&self, ns: &Namespace, write: &ColdWrite) -> Result<Applied> {
        match write {
            ColdWrite::Record(record @ RecordWrite::Put { .. }) => Ok(Applied::Version(
                self.apply_records(ns, std::slice::from_ref(record))?[0],
            )),
            ColdWrite::Record(record @ RecordWrite::Delete { .. }) => Ok(Applied::Existed(
                self.apply_records(ns, std::slice::from_ref(record))?[0] == 1,
            )),
            ColdWrite::Transaction(writes) => {
                let mut versions = self.apply_records(ns, writes)?;
                for (version, write) in versions.iter_mut().zip(writes) {
                    if matches!(write, RecordWrite::Delete { .. }) {
                        *version = 0;
                    }
                }
                Ok(Applied::Versions(versions))
            }
            ColdWrite::AppendHistory { stream, body } => {
                let head_key = Key::new(ns).part(stream.as_bytes()).done();
                (&self.history, &self.history_heads)
                    .transaction(|(history, heads)| {
                        let last = match heads.get(&head_key)? {
                            Some(bytes) => {
                                decode_u64(&bytes).map_err(ConflictableTransactionError::Abort)?
                            }
                            None => 0,
                        };
                        let seq = last + 1;
                        heads.insert(head_key.as_slice(), &seq.to_be_bytes())?;
                        history.insert(
                            [&head_key[..], &seq.to_be_bytes()].concat(),
                            body.as_bytes(),
                        )?;
                        Ok(Applied::Seq(seq))
                    })
                    .map_err(transaction_error)
            }
        }
    }
}

#[async_trait]
impl HotStore for SledStore {
    async fn apply(&self, op: &Op<HotWrite>) -> Result<Applied> {
        let applied = self.apply_hot(&op.namespace, &op.write)?;
        if !matches!(op.write, HotWrite::Publish { .. }) {
            self.commit.durable().await?;
        }
        Ok(applied)
    }

    async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Vec<u8>>> {
        let key = Key::new(ns).part(key.as_bytes()).done();
        Ok(self
            .live_value(&key)?
            .map(|(_, stored)| stored[8..].to_vec()))
    }

    async fn hash_get(&self, ns: &Namespace, key: &str, field: &str) -> Result<Option<Vec<u8>>> {
        let key = Key::new(ns).part(key.as_bytes()).raw(field.as_bytes());
        Ok(self
            .hot_hashes
            .get(key)
            .map_err(unavailable)?
            .map(|v| v.to_vec()))
    }

    async fn hash_get_all(&self, ns: &Namespace, key: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let prefix = Key::new(ns).part(key.as_bytes()).done();
        self.hot_hashes
            .scan_prefix(&prefix)
            .map(|item| {
                let (k, v) = item.map_err(unavailable)?;
                Ok((utf8(&k[prefix.len()..])?, v.to_vec()))
            })
            .collect()
    }

    async fn leaderboard_top(&self, ns: &Namespace, board: &str, n: u32) -> Result<Vec<Entry>> {
        let prefix = Key::new(ns).part(board.as_bytes()).done();
        self.board_entries(
            &prefix,
            self.board_order.scan_prefix(&prefix),
            0,
            n as usize,
        )
    }

    async fn leaderboard_around(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
        n: u32,
    ) -> Result<Vec<Entry>> {
        let prefix = Key::new(ns).part(board.as_bytes()).done();
        let member_key = [&prefix[..], member.as_bytes()].concat();
        let Some(bits) = self.board_scores.get(member_key).map_err(unavailable)? else {
            return Ok(Vec::new());
        };
        let order_key = [
            &prefix[..],
            &score_order(decode_f64(&bits)?)[..],
            member.as_bytes(),
        ]
        .concat();
        // Counting what sorts first is O(rank): fine for an embedded backend.
        let rank = self
            .board_order
            .range(prefix.clone()..order_key.clone())
            .count() as u64;
        // Walk back from the member to find where the window starts.
        let above: Vec<sled::IVec> = self
            .board_order
            .range(prefix.clone()..order_key.clone())
            .rev()
            .take(n as usize)
            .map(|item| item.map(|(key, _)| key).map_err(unavailable))
            .collect::<Result<_>>()?;
        let start = above.last().map(|key| key.to_vec()).unwrap_or(order_key);
        let above = above.len() as u64;
        let range = self.board_order.range(start..).take_while(|item| {
            item.as_ref()
                .map(|(key, _)| key.starts_with(&prefix))
                .unwrap_or(true)
        });
        self.board_entries(
            &prefix,
            range,
            rank - above,
            (above + 1 + n as u64) as usize,
        )
    }

    async fn ping(&self) -> Result<()> {
        self.db.was_recovered();
        Ok(())
    }
}

#[async_trait]
impl ColdStore for SledStore {
    async fn apply(&self, op: &Op<ColdWrite>) -> Result<Applied> {
        let applied = self.apply_cold(&op.namespace, &op.write)?;
        self.commit.durable().await?;
        Ok(applied)
    }

    async fn get(&self, ns: &Namespace, collection: &str, key: &str) -> Result<Option<Record>> {
        let full_key = Key::new(ns).part(collection.as_bytes()).raw(key.as_bytes());
        let Some(stored) = self.records.get(full_key).map_err(unavailable)? else {
            return Ok(None);
        };
        let (version, body) = split_record(&stored)?;
        Ok(Some(Record {
            key: key.to_owned(),
            version,
            body: utf8(body)?,
        }))
    }

    async fn list(
        &self,
        ns: &Namespace,
        collection: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page> {
        let collection_prefix = Key::new(ns).part(collection.as_bytes()).done();
        let scan_prefix = [&collection_prefix[..], prefix.as_bytes()].concat();
        let range = match cursor {
            Some(cursor) => {
                let after = crate::storage::cursor::decode(cursor)?;
                let after = [&collection_prefix[..], &after[..]].concat();
                self.records
                    .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            }
            None => self.records.range(scan_prefix.clone()..),
        };
        // One record past the limit tells whether another page follows.
        let mut records = Vec::with_capacity(limit as usize + 1);
        for item in range {
            let (key, stored) = item.map_err(unavailable)?;
            if !key.starts_with(&scan_prefix) {
                // A cursor before the prefix (a hostile one) skips ahead.
                if key.as_ref() < scan_prefix.as_slice() {
                    continue;
                }
                break;
            }
            if records.len() > limit as usize {
                break;
            }
            let (version, body) = split_record(&stored)?;
            records.push(Record {
                key: utf8(&key[collection_prefix.len()..])?,
                version,
                body: utf8(body)?,
            });
        }
        Ok(Page::from_overfetch(records, limit))
    }

    async fn query(
        &self,
        ns: &Namespace,
        collection: &str,
        conditions: &[Condition],
        limit: u32,
    ) -> Result<Vec<Record>> {
        let prefix = Key::new(ns).part(collection.as_bytes()).done();
        let mut found = Vec::new();
        // A full scan of the collection: the embedded backend has no indexes.
        for item in self.records.scan_prefix(&prefix) {
            let (key, stored) = item.map_err(unavailable)?;
            let (version, body) = split_record(&stored)?;
            let document: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| Error::Unavailable(format!("stored record is not JSON: {e}")))?;
            if conditions.iter().all(|c| c.matches(&document)) {
                found.push(Record {
                    key: utf8(&key[prefix.len()..])?,
                    version,
                    body: utf8(body)?,
                });
                if found.len() == limit as usize {
                    break;
                }
            }
        }
        Ok(found)
    }

    async fn read_history(
        &self,
        ns: &Namespace,
        stream: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        let head_key = Key::new(ns).part(stream.as_bytes()).done();
        if self
            .history_heads
            .get(&head_key)
            .map_err(unavailable)?
            .is_none()
        {
            return Err(Error::NotFound);
        }
        let start = [&head_key[..], &after.saturating_add(1).to_be_bytes()].concat();
        self.history
            .range(start..)
            .take_while(|item| {
                item.as_ref()
                    .map(|(k, _)| k.starts_with(&head_key))
                    .unwrap_or(true)
            })
            .take(limit as usize)
            .map(|item| {
                let (key, body) = item.map_err(unavailable)?;
                Ok(HistoryEntry {
                    seq: decode_u64(&key[head_key.len()..])?,
                    body: utf8(&body)?,
                })
            })
            .collect()
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

async fn sweep_forever(store: Weak<SledStore>, interval: Duration, batch_max: usize) {
    // The first sweep comes one interval after opening, not at once.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(store) = store.upgrade() else { return };
        if let Err(error) = store.sweep_expired(batch_max) {
            tracing::warn!(%error, "sweeping expired hot values failed");
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn unavailable(error: sled::Error) -> Error {
    Error::Unavailable(format!("sled: {error}"))
}

fn corrupt(what: &str) -> Error {
    Error::Unavailable(format!("sled: stored {what} is malformed"))
}

fn transaction_error(error: TransactionError<Error>) -> Error {
    match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => unavailable(error),
    }
}

/// The expiry index's key for a value at `key` that expires at `expires_at`.
fn expiry_index_key(expires_at: u64, key: &[u8]) -> Vec<u8> {
    [&expires_at.to_be_bytes()[..], key].concat()
}

/// A u64 header (expiry or version) followed by bytes.
fn join_value(header: u64, bytes: &[u8]) -> Vec<u8> {
    [&header.to_be_bytes()[..], bytes].concat()
}

fn split_value(stored: &[u8]) -> Result<(u64, &[u8])> {
    if stored.len() < 8 {
        return Err(corrupt("value"));
    }
    let (header, rest) = stored.split_at(8);
    Ok((
        u64::from_be_bytes(header.try_into().expect("8 bytes")),
        rest,
    ))
}

fn split_record(stored: &[u8]) -> Result<(u64, &[u8])> {
    split_value(stored)
}

fn decode_u64(bytes: &[u8]) -> Result<u64> {
    Ok(u64::from_be_bytes(
        bytes.try_into().map_err(|_| corrupt("number"))?,
    ))
}

fn decode_f64(bytes: &[u8]) -> Result<f64> {
    decode_u64(bytes).map(f64::from_bits)
}

fn parse_integer(bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| Error::invalid("key", "the value is not a decimal integer"))
}

fn utf8(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("name"))
}
