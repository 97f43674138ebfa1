//! The outage layer over hot storage (Redis or Redis Cluster).
//!
//! What the local view knows, per key: a value and its TTL, a hash field,
//! a leaderboard member's score; or, for a counter or score the host never
//! saw, only the sum of the increments queued on it. It knows a key while
//! writes to it are queued (their effect, in order: read-your-writes) and,
//! in a bounded local copy, what was recently read or written.
//!
//! While the backend is down:
//! - `set`, `hash-set`, `leaderboard-set` answer as they always do;
//! - `delete` answers whether the key existed as far as the host knows
//!   (`false` for a key it never saw);
//! - `incr` and `leaderboard-incr` answer the last known value plus the
//!   queued increments (0 for a key the host never saw, so the answer can
//!   be lower than the truth); each replays as an increment, so the stored
//!   value ends right;
//! - `get` and `hash-get` answer from the queued writes or the local copy
//!   (a copied value may outlive its TTL), or `unavailable`; a counter
//!   known only by its queued increments is `unavailable` until replayed;
//! - `hash-get-all` and the leaderboard reads are `unavailable`;
//! - `publish` is `unavailable`: a message is for who listens now, and is
//!   never queued.

use super::guarded::{Backend, Guarded, Lanes, View};
use super::local::{Footprint, Knowledge};
use crate::storage::sled::now_ms;
use crate::storage::{
    Applied, Entry, Error, ExportView, HotStore, HotWrite, ItemSink, Namespace, Op, Result,
};
use async_trait::async_trait;
use std::sync::Arc;

pub(super) struct HotBackend(pub(super) Arc<dyn HotStore>);

#[async_trait]
impl Backend for HotBackend {
    type Write = HotWrite;

    async fn apply(&self, op: &Op<HotWrite>) -> Result<Applied> {
        self.0.apply(op).await
    }

    async fn ping(&self) -> Result<()> {
        self.0.ping().await
    }
}

/// A key of the view: what one write touches.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(super) enum Key {
    Value(Namespace, String),
    Field(Namespace, String, String),
    Member(Namespace, String, String),
}

impl Key {
    fn of(op: &Op<HotWrite>) -> Option<Key> {
        let ns = op.namespace.clone();
        Some(match &op.write {
            HotWrite::Set { key, .. } | HotWrite::Delete { key } | HotWrite::Incr { key, .. } => {
                Key::Value(ns, key.clone())
            }
            HotWrite::HashSet { key, field, .. } => Key::Field(ns, key.clone(), field.clone()),
            HotWrite::LeaderboardSet { board, member, .. }
            | HotWrite::LeaderboardIncr { board, member, .. } => {
                Key::Member(ns, board.clone(), member.clone())
            }
            HotWrite::Publish { .. } => return None,
        })
    }
}

impl Lanes for HotWrite {
    fn lanes(&self, ns: &Namespace) -> Vec<Vec<u8>> {
        // One lane per data key: a hash and a board are one key each.
        let (kind, name) = match self {
            HotWrite::Set { key, .. } | HotWrite::Delete { key } | HotWrite::Incr { key, .. } => {
                (b'v', key)
            }
            HotWrite::HashSet { key, .. } => (b'h', key),
            HotWrite::LeaderboardSet { board, .. } | HotWrite::LeaderboardIncr { board, .. } => {
                (b'b', board)
            }
            HotWrite::Publish { channel, .. } => (b'c', channel),
        };
        let mut lane = vec![kind];
        lane.extend_from_slice(&(ns.as_str().len() as u32).to_be_bytes());
        lane.extend_from_slice(ns.as_str().as_bytes());
        lane.extend_from_slice(name.as_bytes());
        vec![lane]
    }
}

/// What the view knows of one key.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Known {
    /// A value (`None`: absent) and when it expires (0: never).
    Value(Option<Vec<u8>>, u64),
    /// Only increments are known, on a value the host never saw: their sum.
    Counting(i64),
    Field(Option<Vec<u8>>),
    Score(Option<f64>),
    /// Only increments are known, on a score the host never saw.
    ScoreCounting(f64),
}

impl Footprint for Known {
    fn footprint(&self) -> usize {
        match self {
            Known::Value(Some(bytes), _) | Known::Field(Some(bytes)) => bytes.len() + 64,
            _ => 64,
        }
    }
}

impl Known {
    /// Whether it says what the key holds (not only a sum of increments).
    fn definite(&self) -> bool {
        !matches!(self, Known::Counting(_) | Known::ScoreCounting(_))
    }
}

/// The hot view: keys with queued writes, and the local copy.
pub(super) type HotView = Knowledge<Key, Known>;

fn live(bytes: &Option<Vec<u8>>, expires_at_ms: u64, now: u64) -> Option<Vec<u8>> {
    let expired = expires_at_ms != 0 && expires_at_ms <= now;
    if expired { None } else { bytes.clone() }
}

fn integer(bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| Error::invalid("key", "the value is not a decimal integer"))
}

impl View for HotView {
    type Write = HotWrite;

    fn predict(&mut self, op: &Op<HotWrite>) -> Result<Applied> {
        let Some(key) = Key::of(op) else {
            return Err(Error::Unavailable(
                "publish is never queued: hot storage is down".into(),
            ));
        };
        let now = now_ms();
        let known = self.known(&key);
        let (next, answer) = match &op.write {
            HotWrite::Set { value, ttl_ms, .. } => {
                let expires_at = ttl_ms
                    .map(|ttl| now.saturating_add(ttl.max(1)))
                    .unwrap_or(0);
                (Known::Value(Some(value.clone()), expires_at), Applied::Done)
            }
            HotWrite::Delete { .. } => {
                let existed = match &known {
                    Some(Known::Value(bytes, expires_at)) => {
                        live(bytes, *expires_at, now).is_some()
                    }
                    Some(Known::Counting(_)) => true,
                    _ => false,
                };
                (Known::Value(None, 0), Applied::Existed(existed))
            }
            HotWrite::Incr { delta, .. } => {
                let overflow =
                    || Error::invalid("delta", "the result would overflow a 64-bit integer");
                match &known {
                    Some(Known::Value(bytes, expires_at)) => {
                        let (number, expires_at) = match live(bytes, *expires_at, now) {
                            Some(bytes) => (integer(&bytes)?, *expires_at),
                            None => (0, 0),
                        };
                        let next = number.checked_add(*delta).ok_or_else(overflow)?;
                        (
                            Known::Value(Some(next.to_string().into_bytes()), expires_at),
                            Applied::Integer(next),
                        )
                    }
                    Some(Known::Counting(sum)) => {
                        let next = sum.checked_add(*delta).ok_or_else(overflow)?;
                        (Known::Counting(next), Applied::Integer(next))
                    }
                    _ => (Known::Counting(*delta), Applied::Integer(*delta)),
                }
            }
            HotWrite::HashSet { value, .. } => (Known::Field(Some(value.clone())), Applied::Done),
            HotWrite::LeaderboardSet { score, .. } => (Known::Score(Some(*score)), Applied::Done),
            HotWrite::LeaderboardIncr { delta, .. } => {
                let (next, known) = match &known {
                    Some(Known::Score(score)) => {
                        let next = score.unwrap_or(0.0) + delta;
                        (next, Known::Score(Some(next)))
                    }
                    Some(Known::ScoreCounting(sum)) => {
                        (sum + delta, Known::ScoreCounting(sum + delta))
                    }
                    _ => (*delta, Known::ScoreCounting(*delta)),
                };
                if !next.is_finite() {
                    return Err(Error::invalid("delta", "the new score would not be finite"));
                }
                (known, Applied::Score(next))
            }
            HotWrite::Publish { .. } => unreachable!("no key"),
        };
        self.queue(key, next);
        Ok(answer)
    }

    fn settled(&mut self, op: &Op<HotWrite>, applied: Option<&Applied>) {
        let Some(key) = Key::of(op) else { return };
        // A sum of increments on an unseen value becomes a value when the
        // backend answers one of them: its answer, plus those still queued.
        let last = self.settle(&key, |known| match (&op.write, applied, &*known) {
            (HotWrite::Incr { delta, .. }, Some(Applied::Integer(value)), Known::Counting(sum)) => {
                let queued = sum - delta;
                *known = Known::Value(Some((value + queued).to_string().into_bytes()), 0);
            }
            (
                HotWrite::LeaderboardIncr { delta, .. },
                Some(Applied::Score(score)),
                Known::ScoreCounting(sum),
            ) => {
                *known = Known::Score(Some(score + (sum - delta)));
            }
            _ => {}
        });
        match last {
            Some(known) if applied.is_some() && known.definite() => self.keep(key, known),
            Some(_) => self.forget(&key),
            None => {}
        }
    }

    fn applied(&mut self, op: &Op<HotWrite>, applied: &Applied) {
        let Some(key) = Key::of(op) else { return };
        let now = now_ms();
        let known = match (&op.write, applied) {
            (HotWrite::Set { value, ttl_ms, .. }, _) => Known::Value(
                Some(value.clone()),
                ttl_ms
                    .map(|ttl| now.saturating_add(ttl.max(1)))
                    .unwrap_or(0),
            ),
            (HotWrite::Delete { .. }, _) => Known::Value(None, 0),
            (HotWrite::Incr { .. }, Applied::Integer(value)) => {
                let expires_at = match self.copied(&key) {
                    Some(Known::Value(_, expires_at)) => expires_at,
                    _ => 0,
                };
                Known::Value(Some(value.to_string().into_bytes()), expires_at)
            }
            (HotWrite::HashSet { value, .. }, _) => Known::Field(Some(value.clone())),
            (HotWrite::LeaderboardSet { score, .. }, _) => Known::Score(Some(*score)),
            (HotWrite::LeaderboardIncr { .. }, Applied::Score(score)) => Known::Score(Some(*score)),
            _ => {
                self.forget(&key);
                return;
            }
        };
        self.keep(key, known);
    }
}

/// Hot storage through the outage layer.
pub struct ResilientHot {
    pub(super) core: Arc<Guarded<HotBackend, HotView>>,
}

impl ResilientHot {
    /// Reads `key` through the layer: its queued writes if any, else the
    /// backend (keeping what it answered), else the local copy.
    async fn read(
        &self,
        key: Key,
        answer: impl Fn(&Known) -> Option<Result<Option<Vec<u8>>>>,
        remote: impl Future<Output = Result<Option<Vec<u8>>>>,
        keep: impl Fn(Option<Vec<u8>>) -> Known,
    ) -> Result<Option<Vec<u8>>> {
        let pending = self.core.view().pending(&key).cloned();
        if let Some(known) = pending {
            match answer(&known) {
                Some(answer) => return answer,
                // Only increments are known: the backend must answer, once
                // they have replayed.
                None if self.core.reads_go_through() => self.core.barrier().await?,
                None => return Err(not_known()),
            }
        }
        if self.core.reads_go_through() {
            match self.core.call(remote).await {
                Ok(value) => {
                    self.core.view().keep(key, keep(value.clone()));
                    return Ok(value);
                }
                Err(Error::Unavailable(_)) => {}
                Err(error) => return Err(error),
            }
        }
        let copied = self.core.view().copied(&key);
        copied
            .and_then(|known| answer(&known))
            .unwrap_or_else(|| Err(not_known()))
    }

    /// Reads that only the backend can answer.
    async fn remote<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        if !self.core.reads_go_through() {
            return Err(Error::Unavailable(format!(
                "hot storage ({}) is down",
                self.core.backend_name
            )));
        }
        // Only the backend answers this read: it must have what was queued.
        self.core.barrier().await?;
        self.core.call(call).await
    }
}

fn not_known() -> Error {
    Error::Unavailable("hot storage is down and the host does not know this key".into())
}

#[async_trait]
impl HotStore for ResilientHot {
    async fn apply(&self, op: &Op<HotWrite>) -> Result<Applied> {
        if matches!(op.write, HotWrite::Publish { .. }) {
            return self.remote(self.core.backend.apply(op)).await;
        }
        self.core.apply(op).await
    }

    async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Vec<u8>>> {
        let now = now_ms();
        self.read(
            Key::Value(ns.clone(), key.to_owned()),
            |known| match known {
                Known::Value(bytes, expires_at) => Some(Ok(live(bytes, *expires_at, now))),
                _ => None,
            },
            self.core.backend.0.get(ns, key),
            |value| Known::Value(value, 0),
        )
        .await
    }

    async fn hash_get(&self, ns: &Namespace, key: &str, field: &str) -> Result<Option<Vec<u8>>> {
        self.read(
            Key::Field(ns.clone(), key.to_owned(), field.to_owned()),
            |known| match known {
                Known::Field(bytes) => Some(Ok(bytes.clone())),
                _ => None,
            },
            self.core.backend.0.hash_get(ns, key, field),
            Known::Field,
        )
        .await
    }

    async fn hash_get_all(&self, ns: &Namespace, key: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.remote(self.core.backend.0.hash_get_all(ns, key)).await
    }

    async fn leaderboard_top(&self, ns: &Namespace, board: &str, n: u32) -> Result<Vec<Entry>> {
        self.remote(self.core.backend.0.leaderboard_top(ns, board, n))
            .await
    }

    async fn leaderboard_score(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
    ) -> Result<Option<f64>> {
        self.remote(self.core.backend.0.leaderboard_score(ns, board, member))
            .await
    }

    async fn leaderboard_around(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
        n: u32,
    ) -> Result<Vec<Entry>> {
        self.remote(self.core.backend.0.leaderboard_around(ns, board, member, n))
            .await
    }

    async fn export(&self, ns: &Namespace, sink: ItemSink<'_>) -> Result<ExportView> {
        self.core.long_read().await?;
        self.core.backend.0.export(ns, sink).await
    }

    async fn ping(&self) -> Result<()> {
        self.core.call(self.core.backend.0.ping()).await
    }
}
