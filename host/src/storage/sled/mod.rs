//! The embedded backend: hot and cold storage in one sled 0.34 database.
//!
//! It needs no server, so it is the default for offline play. Writes go to
//! sled in memory and are acknowledged only after a flush (see [`commit`]).
//! TTLs are stored with each value as an absolute wall-clock expiry: reads
//! treat an expired value as absent at once, and a sweeper task deletes
//! expired values in bounded batches.
//!
//! Trees (each key starts with the namespace, see [`keys`]):
//! - `hot_values`: ns|key -> expires_at_ms (u64, 0 = never) ++ the marks of
//!   the ops that wrote it ++ bytes (see [`stamped`]); a delete leaves a
//!   tombstone until the sweeper removes it
//! - `hot_expiry`: expires_at_ms ++ (ns|key) -> () (the sweeper's index; at
//!   most one entry per key, give or take a crash: see `set_value`)
//! - `hot_hashes`: ns|key ++ field -> bytes
//! - `board_scores`: ns|board ++ member -> score (f64 bits)
//! - `board_order`: ns|board ++ score_order ++ member -> ()
//! - `records`: ns|collection ++ key -> version (u64) ++ JSON body
//! - `history`: ns|stream ++ seq (u64) -> JSON body
//! - `history_heads`: ns|stream -> last seq (u64)
//! - `applied_ops`: period ++ op id -> result: markers of applied ops (see
//!   [`write`])

pub(crate) mod commit;
mod keys;
mod stamped;
mod write;

use crate::storage::{
    Applied, ColdStore, ColdWrite, Condition, Entry, Error, ExportView, HistoryEntry, HotStore,
    HotWrite, Item, ItemSink, Namespace, Op, Page, Record, Result,
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
use write::{Applier, Write, WriteTrees};

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
    /// How long the marker of an applied op is kept, so the op is not
    /// applied twice. Nothing queues writes in front of sled: a duplicate
    /// can come only from a client retrying an action, within minutes.
    pub dedupe_retention_ms: u64,
}

impl Default for SledConfig {
    fn default() -> Self {
        SledConfig {
            path: PathBuf::from("data/hoard.sled"),
            sweep_interval_ms: 1000,
            sweep_batch_max: 1000,
            publish_buffer_max: 1024,
            cache_bytes: 64 * 1024 * 1024,
            dedupe_retention_ms: 3600 * 1000,
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
    applied_ops: sled::Tree,
    /// How long an op's marker is kept, at least (see [`write`]).
    dedupe_retention_ms: u64,
    /// Applies every write that is not a one-key `set`, `delete` or
    /// `incr` (see [`write`]).
    applier: Applier,
    /// The trees the one-key writes use.
    write_trees: WriteTrees,
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
        "sled database at {path} is corrupt ({reason}); it was moved to {moved_to} and nothing was deleted: start again for a fresh database, or restore a backup there"
    )]
    Corrupt {
        path: PathBuf,
        moved_to: PathBuf,
        reason: String,
    },
    #[error("cannot start sled's commit or apply thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Opens (or creates) a sled database for hoard: hoard flushes before every
/// acknowledgement (see [`commit`]), so sled's own timer-driven flush is
/// off.
///
/// sled opens a database whose files it cannot read as an empty one,
/// silently, and starts writing over them. So every database hoard makes
/// holds a marker, `format` in the tree `meta`: a directory that holds
/// files but no marker (or another format's) is damaged, or not hoard's.
/// Such a database, like one sled itself finds corrupt, is moved aside,
/// never deleted, and the error says where. A database of at most
/// `preserve_bytes_max` is copied before sled opens it, so what is moved
/// aside is exactly what was found, not what sled made of it.
pub(crate) fn open_db(
    path: &std::path::Path,
    cache_bytes: u64,
    format: &str,
    preserve_bytes_max: u64,
) -> std::result::Result<sled::Db, OpenError> {
    let held_files = std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_some());
    let pristine = match held_files && folder_bytes(path)? <= preserve_bytes_max {
        true => {
            let copy = path.with_extension("opening");
            if copy.exists() {
                std::fs::remove_dir_all(&copy)?;
            }
            copy_folder(path, &copy)?;
            Some(copy)
        }
        false => None,
    };
    let opened = sled::Config::new()
        .path(path)
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(cache_bytes)
        .flush_every_ms(None)
        .open();
    let problem = match opened {
        Ok(db) => {
            let meta = db.open_tree("meta").map_err(|source| OpenError::Open {
                path: path.to_owned(),
                source,
            })?;
            let marker = meta.get("format").map_err(|source| OpenError::Open {
                path: path.to_owned(),
                source,
            })?;
            match marker {
                Some(marker) if marker.as_ref() == format.as_bytes() => {
                    if let Some(copy) = &pristine {
                        std::fs::remove_dir_all(copy)?;
                    }
                    return Ok(db);
                }
                Some(marker) => format!(
                    "it holds {:?}, not {format:?}",
                    String::from_utf8_lossy(&marker)
                ),
                None if held_files => {
                    "its files are there but sled read nothing of hoard's in them".to_owned()
                }
                None => {
                    meta.insert("format", format.as_bytes())
                        .and_then(|_| db.flush())
                        .map_err(|source| OpenError::Open {
                            path: path.to_owned(),
                            source,
                        })?;
                    return Ok(db);
                }
            }
        }
        Err(source @ sled::Error::Corruption { .. }) => source.to_string(),
        Err(source) => {
            return Err(OpenError::Open {
                path: path.to_owned(),
                source,
            });
        }
    };
    let moved_to = path.with_extension(format!("corrupt-{}", now_ms()));
    match pristine {
        // What was found goes aside; what sled made of it, beside it.
        Some(copy) => {
            std::fs::rename(
                path,
                moved_to.with_extension(format!(
                    "{}-as-opened",
                    moved_to
                        .extension()
                        .and_then(|e| e.to_str())
                        .unwrap_or("corrupt")
                )),
            )?;
            std::fs::rename(copy, &moved_to)?;
        }
        None => std::fs::rename(path, &moved_to)?,
    }
    tracing::error!(path = %path.display(), moved_to = %moved_to.display(), %problem, "a damaged database was moved aside");
    Err(OpenError::Corrupt {
        path: path.to_owned(),
        moved_to,
        reason: problem,
    })
}

fn folder_bytes(path: &std::path::Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            folder_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

fn copy_folder(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.metadata()?.is_dir() {
            copy_folder(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The format marker of hoard's main database: version 2 keeps op marks
/// in hot values (see `stamped`).
const DATA_FORMAT: &str = "hoard-data-v2";

impl SledStore {
    /// Opens (or creates) the database and starts its commit thread and, when
    /// called inside a tokio runtime, its TTL sweeper.
    pub fn open(config: &SledConfig) -> std::result::Result<Arc<Self>, OpenError> {
        // The main database can be large: no copy before opening.
        let db = open_db(&config.path, config.cache_bytes, DATA_FORMAT, 0)?;
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
        let trees = WriteTrees {
            hot_values: tree("hot_values")?,
            hot_expiry: tree("hot_expiry")?,
            hot_hashes: tree("hot_hashes")?,
            board_scores: tree("board_scores")?,
            board_order: tree("board_order")?,
            records: tree("records")?,
            history: tree("history")?,
            history_heads: tree("history_heads")?,
            applied_ops: tree("applied_ops")?,
        };
        let store = Arc::new(SledStore {
            hot_values: trees.hot_values.clone(),
            hot_expiry: trees.hot_expiry.clone(),
            hot_hashes: trees.hot_hashes.clone(),
            board_scores: trees.board_scores.clone(),
            board_order: trees.board_order.clone(),
            records: trees.records.clone(),
            history: trees.history.clone(),
            history_heads: trees.history_heads.clone(),
            applied_ops: trees.applied_ops.clone(),
            dedupe_retention_ms: config.dedupe_retention_ms,
            applier: Applier::new(trees.clone(), config.dedupe_retention_ms),
            write_trees: trees,
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

    /// Deletes up to `batch_max` values whose TTL has passed, and up to
    /// `batch_max` op markers past their retention; returns how many index
    /// entries it went through.
    pub fn sweep_expired(&self, batch_max: usize) -> Result<usize> {
        let now_end = (now_ms() + 1).to_be_bytes().to_vec();
        let mut swept = 0;
        for item in self.hot_expiry.range(..now_end).take(batch_max) {
            let (index_key, _) = item.map_err(unavailable)?;
            // One transaction: a `set` racing with the sweep either comes
            // before (and the entry no longer describes the value, which
            // stays) or after (and finds it gone).
            (&self.hot_values, &self.hot_expiry)
                .transaction(|(values, index)| {
                    let (expires_at, value_key) = index_key.split_at(8);
                    if let Some(value) = values.get(value_key)?
                        && value.len() >= 8
                        && value[..8] == *expires_at
                    {
                        values.remove(value_key)?;
                    }
                    index.remove(&index_key)?;
                    Ok::<_, ConflictableTransactionError<Error>>(())
                })
                .map_err(|error| match error {
                    TransactionError::Abort(error) => error,
                    TransactionError::Storage(error) => unavailable(error),
                })?;
            swept += 1;
        }
        // Markers of periods before the last two are past their retention.
        let kept_from = write::marker_period(now_ms(), self.dedupe_retention_ms).saturating_sub(1);
        for item in self
            .applied_ops
            .range(..kept_from.to_be_bytes().to_vec())
            .take(batch_max)
        {
            let (key, _) = item.map_err(unavailable)?;
            self.applied_ops.remove(&key).map_err(unavailable)?;
            swept += 1;
        }
        Ok(swept)
    }

    /// How many entries the expiry index holds (for tests and diagnostics;
    /// O(n)).
    pub fn expiry_index_len(&self) -> usize {
        self.hot_expiry.len()
    }

    /// How many op markers are kept (for tests and diagnostics; O(n)).
    pub fn op_markers(&self) -> usize {
        self.applied_ops.len()
    }

    /// How many hot values are stored, expired or not (for tests and
    /// diagnostics; O(n)).
    pub fn stored_hot_values(&self) -> usize {
        self.hot_values.len()
    }

    /// The value at `key` as reads see it: `None` if absent, deleted or
    /// expired.
    fn live_value(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(stored) = self.hot_values.get(key).map_err(unavailable)? else {
            return Ok(None);
        };
        Ok(stamped::Stamped::decode(&stored)?
            .live(now_ms())
            .map(<[u8]>::to_vec))
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
}

#[async_trait]
impl HotStore for SledStore {
    async fn apply(&self, op: &Op<HotWrite>) -> Result<Applied> {
        if let HotWrite::Publish { channel, message } = &op.write {
            // No listener is not an error: publish is fire and forget.
            let _ = self.published.send(Published {
                namespace: op.namespace.clone(),
                channel: channel.clone(),
                message: message.clone(),
            });
            return Ok(Applied::Done);
        }
        let applied = if write::is_value_write(&op.write) {
            write::apply_value(&self.write_trees, op, self.dedupe_retention_ms)?
        } else {
            self.applier.apply(Write::Hot(op.clone())).await?
        };
        self.commit.durable().await?;
        Ok(applied)
    }

    async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Vec<u8>>> {
        let key = Key::new(ns).part(key.as_bytes()).done();
        self.live_value(&key)
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

    async fn leaderboard_score(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
    ) -> Result<Option<f64>> {
        let key = Key::new(ns).part(board.as_bytes()).raw(member.as_bytes());
        self.board_scores
            .get(key)
            .map_err(unavailable)?
            .map(|bits| decode_f64(&bits))
            .transpose()
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

    async fn export(&self, ns: &Namespace, sink: ItemSink<'_>) -> Result<ExportView> {
        let prefix = Key::new(ns).done();
        let now = now_ms();
        for item in self.hot_values.scan_prefix(&prefix) {
            let (key, stored) = item.map_err(unavailable)?;
            let stamped = stamped::Stamped::decode(&stored)?;
            let Some(value) = stamped.live(now) else {
                continue;
            };
            let (name, _) = named_part(&key[prefix.len()..])?;
            sink(Item::Value {
                key: utf8(name)?,
                value: value.to_vec(),
                ttl_ms: (stamped.expires_at != 0).then(|| stamped.expires_at - now),
            })?;
        }
        for item in self.hot_hashes.scan_prefix(&prefix) {
            let (key, value) = item.map_err(unavailable)?;
            let (name, field) = named_part(&key[prefix.len()..])?;
            sink(Item::HashField {
                key: utf8(name)?,
                field: utf8(field)?,
                value: value.to_vec(),
            })?;
        }
        for item in self.board_scores.scan_prefix(&prefix) {
            let (key, bits) = item.map_err(unavailable)?;
            let (board, member) = named_part(&key[prefix.len()..])?;
            sink(Item::Score {
                board: utf8(board)?,
                member: utf8(member)?,
                score: decode_f64(&bits)?,
            })?;
        }
        Ok(SLED_VIEW)
    }

    async fn ping(&self) -> Result<()> {
        self.db.was_recovered();
        Ok(())
    }
}

/// How consistent a sled export is.
const SLED_VIEW: ExportView = ExportView::Live(
    "sled has no snapshots, so items are read one by one: by `hoard data export`, which holds the database's lock, while nothing else writes; by a host's own scheduled backup, while its plugins may",
);

/// Splits a key's tail after the namespace into its length-prefixed name
/// and the raw rest (a field, a member, a sequence number).
fn named_part(tail: &[u8]) -> Result<(&[u8], &[u8])> {
    let (len, rest) = tail.split_at_checked(4).ok_or_else(|| corrupt("key"))?;
    let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
    rest.split_at_checked(len).ok_or_else(|| corrupt("key"))
}

#[async_trait]
impl ColdStore for SledStore {
    async fn apply(&self, op: &Op<ColdWrite>) -> Result<Applied> {
        let applied = self.applier.apply(Write::Cold(op.clone())).await?;
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

    async fn export(&self, ns: &Namespace, sink: ItemSink<'_>) -> Result<ExportView> {
        let prefix = Key::new(ns).done();
        for item in self.records.scan_prefix(&prefix) {
            let (key, stored) = item.map_err(unavailable)?;
            let (collection, record_key) = named_part(&key[prefix.len()..])?;
            let (version, body) = split_record(&stored)?;
            sink(Item::Record {
                collection: utf8(collection)?,
                key: utf8(record_key)?,
                version,
                body: utf8(body)?,
            })?;
        }
        for item in self.history.scan_prefix(&prefix) {
            let (key, body) = item.map_err(unavailable)?;
            let (stream, seq) = named_part(&key[prefix.len()..])?;
            sink(Item::History {
                stream: utf8(stream)?,
                seq: decode_u64(seq)?,
                body: utf8(&body)?,
            })?;
        }
        Ok(SLED_VIEW)
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

pub(crate) fn now_ms() -> u64 {
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
