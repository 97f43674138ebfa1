//! Every write of the sled backend, applied once per op id: an op applied
//! before (within `dedupe_retention_ms`) changes nothing and returns its
//! first result. Two paths, so that each write's mark is atomic with it:
//!
//! - `set`, `delete` and `incr` change one key of `hot_values`: one
//!   compare-and-swap each, whose new value carries the op's mark (see
//!   [`stamped`](super::stamped)). Writers do this on their own thread, in
//!   parallel, as fast as a plain write.
//! - Every other write touches more than one key or tree (a leaderboard's
//!   score and order, a history head and entry, a transaction): the write
//!   and a marker in `applied_ops` go into one sled transaction, so a crash
//!   keeps both or neither.
//!
//! **Group apply.** A sled transaction costs tens of microseconds and takes
//! a lock every writer shares, so one per op would cap writes at ~10k/s.
//! Writers combine instead: each puts its op in a queue, and whoever finds
//! no one applying becomes the applier, takes every op waiting (up to
//! `APPLY_BATCH_MAX` at a time), applies them in order in one transaction,
//! and answers each; the others wait for their answer. A writer alone
//! applies its own op at once, with no hand-over to another thread. Each
//! op's checks come before any of its writes, so an op refused (a conflict,
//! an overflow) writes nothing and the others in its batch stand.
//! Durability stays with the group commit: a writer waits for the flush
//! after its op is applied.
//!
//! Markers: `applied_ops`: period ++ op id -> the encoded result, where the
//! period is the marker's time in ms divided by `dedupe_retention_ms`. An op
//! is looked for in this period and the one before, so a marker is kept for
//! one to two retentions; the sweeper deletes whole periods, in key order,
//! with no index to keep beside them.
//!
//! `publish` is not a stored write: it is delivered to whoever listens now,
//! never deduplicated or replayed, and does not pass through here.

use super::keys::{Key, score_order};
use super::stamped::{self, Mark, Stamped};
use super::{decode_f64, decode_u64, join_value, now_ms, parse_integer, split_record, unavailable};
use crate::storage::{Applied, ColdWrite, Error, HotWrite, Namespace, Op, RecordWrite, Result};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionResult, TransactionError, TransactionalTree};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Most ops one transaction applies.
const APPLY_BATCH_MAX: usize = 256;

/// A stored write for the applier: hot or cold.
pub(super) enum Write {
    Hot(Op<HotWrite>),
    Cold(Op<ColdWrite>),
}

struct Request {
    write: Write,
    reply: oneshot::Sender<Result<Applied>>,
}

/// The trees a write may touch, as one transaction sees them.
struct Trees<'a> {
    hashes: &'a TransactionalTree,
    scores: &'a TransactionalTree,
    order: &'a TransactionalTree,
    records: &'a TransactionalTree,
    history: &'a TransactionalTree,
    heads: &'a TransactionalTree,
    applied: &'a TransactionalTree,
    /// The current marker period (see the module docs).
    period: u64,
}

/// The trees themselves.
#[derive(Clone)]
pub(super) struct WriteTrees {
    pub(super) hot_values: sled::Tree,
    pub(super) hot_expiry: sled::Tree,
    pub(super) hot_hashes: sled::Tree,
    pub(super) board_scores: sled::Tree,
    pub(super) board_order: sled::Tree,
    pub(super) records: sled::Tree,
    pub(super) history: sled::Tree,
    pub(super) history_heads: sled::Tree,
    pub(super) applied_ops: sled::Tree,
}

/// Applies ops, combining concurrent writers into batches (see the module
/// docs).
pub(super) struct Applier {
    trees: WriteTrees,
    dedupe_retention_ms: u64,
    /// Ops waiting to be applied, in arrival order.
    waiting: Mutex<Vec<Request>>,
    /// Held by whoever is applying.
    applying: Mutex<()>,
}

/// Inside a transaction: `Err` is sled's (a conflict to retry, or storage),
/// `Ok(Err(_))` the op's own refusal.
type Tx<T> = ConflictableTransactionResult<Result<T>, Error>;

/// An op's own refusal: nothing of it is written.
macro_rules! refuse {
    ($error:expr) => {
        return Ok(Err($error))
    };
}

/// Unwraps a value read inside a transaction, or refuses the op.
macro_rules! or_refuse {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(error) => refuse!(error),
        }
    };
}

impl Applier {
    pub(super) fn new(trees: WriteTrees, dedupe_retention_ms: u64) -> Applier {
        Applier {
            trees,
            dedupe_retention_ms,
            waiting: Mutex::new(Vec::new()),
            applying: Mutex::new(()),
        }
    }

    /// Applies `write` (in memory; the caller waits for durability).
    pub(super) async fn apply(&self, write: Write) -> Result<Applied> {
        let (reply, answer) = oneshot::channel();
        self.waiting
            .lock()
            .expect("apply queue poisoned")
            .push(Request { write, reply });
        self.apply_waiting();
        answer
            .await
            .map_err(|_| Error::Unavailable("sled: an op was dropped unapplied".into()))?
    }

    /// Applies everything waiting, unless someone else is at it. Whoever
    /// stops applying looks at the queue once more after letting go, so an
    /// op queued while it was finishing is never left behind.
    fn apply_waiting(&self) {
        loop {
            let Ok(_applying) = self.applying.try_lock() else {
                return;
            };
            loop {
                let batch: Vec<Request> = {
                    let mut waiting = self.waiting.lock().expect("apply queue poisoned");
                    let take = waiting.len().min(APPLY_BATCH_MAX);
                    waiting.drain(..take).collect()
                };
                if batch.is_empty() {
                    break;
                }
                let writes: Vec<&Write> = batch.iter().map(|r| &r.write).collect();
                let results = apply_batch(&self.trees, &writes, self.dedupe_retention_ms);
                for (request, result) in batch.into_iter().zip(results) {
                    // A writer that stopped waiting is no one's concern.
                    let _ = request.reply.send(result);
                }
            }
            drop(_applying);
            if self
                .waiting
                .lock()
                .expect("apply queue poisoned")
                .is_empty()
            {
                return;
            }
        }
    }
}

/// Applies `writes` in order in one transaction; one result each.
fn apply_batch(trees: &WriteTrees, writes: &[&Write], retention_ms: u64) -> Vec<Result<Applied>> {
    let tuple = (
        &trees.hot_hashes,
        &trees.board_scores,
        &trees.board_order,
        &trees.records,
        &trees.history,
        &trees.history_heads,
        &trees.applied_ops,
    );
    let outcome = tuple.transaction(
        |(hashes, scores, order, records, history, heads, applied)| {
            let now = now_ms();
            let t = Trees {
                hashes,
                scores,
                order,
                records,
                history,
                heads,
                applied,
                period: marker_period(now, retention_ms),
            };
            let mut results = Vec::with_capacity(writes.len());
            for write in writes {
                let (id, result) = match write {
                    Write::Hot(op) => (op.id, t.hot(op)?),
                    Write::Cold(op) => (op.id, t.cold(op)?),
                };
                if let Ok(applied) = &result {
                    t.mark(id.to_bytes(), applied)?;
                }
                results.push(result);
            }
            Ok(results)
        },
    );
    match outcome {
        Ok(results) => results,
        Err(TransactionError::Abort(error)) => writes.iter().map(|_| Err(error.clone())).collect(),
        Err(TransactionError::Storage(error)) => {
            let error = unavailable(error);
            writes.iter().map(|_| Err(error.clone())).collect()
        }
    }
}

/// Whether `write` takes the one-key path of [`apply_value`].
pub(super) fn is_value_write(write: &HotWrite) -> bool {
    matches!(
        write,
        HotWrite::Set { .. } | HotWrite::Delete { .. } | HotWrite::Incr { .. }
    )
}

/// Applies a `set`, `delete` or `incr` as one compare-and-swap of its key,
/// the op's mark in the new value, and keeps the expiry index at one entry
/// per key: the new value's entry goes in before the swap and the replaced
/// value's comes out after it (a crash between leaves a stray entry, which
/// the sweeper drops when it comes due). In memory; the caller waits for
/// durability.
pub(super) fn apply_value(
    trees: &WriteTrees,
    op: &Op<HotWrite>,
    retention_ms: u64,
) -> Result<Applied> {
    let (values, index) = (&trees.hot_values, &trees.hot_expiry);
    let id = op.id.to_bytes();
    let key = match &op.write {
        HotWrite::Set { key, .. } | HotWrite::Delete { key } | HotWrite::Incr { key, .. } => {
            Key::new(&op.namespace).part(key.as_bytes()).done()
        }
        _ => return Err(Error::Unavailable("sled: not a one-key write".into())),
    };
    // The new value's expiry is fixed once, so every attempt of the swap
    // below shares one index entry. (An `incr` keeps the old value's.)
    let started = now_ms();
    let fixed_expiry = match &op.write {
        HotWrite::Set {
            ttl_ms: Some(ttl_ms),
            ..
        } => started.saturating_add((*ttl_ms).max(1)),
        // The tombstone keeps the marks until it is swept.
        HotWrite::Delete { .. } => started.saturating_add(retention_ms.max(1)),
        _ => 0,
    };
    if fixed_expiry != 0 {
        index
            .insert(expiry_index_key(fixed_expiry, &key), &[])
            .map_err(unavailable)?;
    }
    loop {
        let now = now_ms();
        let old = values.get(&key).map_err(unavailable)?;
        let decoded = old.as_deref().map(Stamped::decode).transpose()?;
        let old_expiry = decoded.as_ref().map(|value| value.expires_at).unwrap_or(0);
        if let Some(earlier) = decoded.as_ref().and_then(|value| value.answered(id)) {
            // Applied before: the entry added above describes nothing.
            if fixed_expiry != 0 && fixed_expiry != old_expiry {
                index
                    .remove(expiry_index_key(fixed_expiry, &key))
                    .map_err(unavailable)?;
            }
            return Ok(earlier);
        }
        let marks: &[Mark] = decoded.as_ref().map(|v| &v.marks[..]).unwrap_or(&[]);
        let live = decoded.as_ref().and_then(|value| value.live(now));
        let (new_expiry, deleted, bytes, result): (u64, bool, Vec<u8>, Applied) = match &op.write {
            HotWrite::Set { value, .. } => (fixed_expiry, false, value.clone(), Applied::Done),
            HotWrite::Delete { .. } => (
                fixed_expiry,
                true,
                Vec::new(),
                Applied::Existed(live.is_some()),
            ),
            HotWrite::Incr { delta, .. } => {
                // An absent, deleted or expired value counts as 0 and has no
                // TTL; a live one keeps its TTL (and its index entry).
                let (expires_at, number) = match live {
                    None => (0, 0),
                    Some(digits) => (old_expiry, parse_integer(digits)?),
                };
                let next = number.checked_add(*delta).ok_or_else(|| {
                    Error::invalid("delta", "the result would overflow a 64-bit integer")
                })?;
                (
                    expires_at,
                    false,
                    next.to_string().into_bytes(),
                    Applied::Integer(next),
                )
            }
            _ => unreachable!("matched above"),
        };
        let mark = Mark {
            id,
            at_ms: now,
            result: result.clone(),
        };
        let new = stamped::encode(new_expiry, deleted, marks, mark, retention_ms, &bytes);
        let swapped = values
            .compare_and_swap(&key, old.as_ref(), Some(new))
            .map_err(unavailable)?;
        if swapped.is_err() {
            // Someone wrote the key first: go again.
            continue;
        }
        if old_expiry != 0 && old_expiry != new_expiry {
            index
                .remove(expiry_index_key(old_expiry, &key))
                .map_err(unavailable)?;
        }
        return Ok(result);
    }
}

/// The expiry index's key for a value at `key` that expires at `expires_at`.
pub(super) fn expiry_index_key(expires_at: u64, key: &[u8]) -> Vec<u8> {
    [&expires_at.to_be_bytes()[..], key].concat()
}

/// The marker period of time `now_ms` (see the module docs).
pub(super) fn marker_period(now_ms: u64, retention_ms: u64) -> u64 {
    now_ms / retention_ms.max(1)
}

fn marker_key(period: u64, id: [u8; 16]) -> [u8; 24] {
    let mut key = [0; 24];
    key[..8].copy_from_slice(&period.to_be_bytes());
    key[8..].copy_from_slice(&id);
    key
}

impl Trees<'_> {
    /// The first result of op `id`, if it was applied this period or the
    /// one before.
    fn earlier(&self, id: [u8; 16]) -> Tx<Option<Applied>> {
        for period in [self.period, self.period.saturating_sub(1)] {
            let Some(stored) = self.applied.get(marker_key(period, id))? else {
                continue;
            };
            let result = std::str::from_utf8(&stored).ok().and_then(Applied::decode);
            return match result {
                Some(result) => Ok(Ok(Some(result))),
                None => refuse!(Error::Unavailable(
                    "sled: a stored op marker is malformed".into()
                )),
            };
        }
        Ok(Ok(None))
    }

    fn mark(&self, id: [u8; 16], result: &Applied) -> ConflictableTransactionResult<(), Error> {
        self.applied
            .insert(&marker_key(self.period, id), result.encode().as_bytes())?;
        Ok(())
    }

    fn hot(&self, op: &Op<HotWrite>) -> Tx<Applied> {
        if let Some(earlier) = or_refuse!(self.earlier(op.id.to_bytes())?) {
            return Ok(Ok(earlier));
        }
        let ns = &op.namespace;
        match &op.write {
            HotWrite::HashSet { key, field, value } => {
                let key = Key::new(ns).part(key.as_bytes()).raw(field.as_bytes());
                self.hashes.insert(key, value.as_slice())?;
                Ok(Ok(Applied::Done))
            }
            HotWrite::LeaderboardSet {
                board,
                member,
                score,
            } => self.update_score(ns, board, member, Ok(*score), |_| Applied::Done),
            HotWrite::LeaderboardIncr {
                board,
                member,
                delta,
            } => {
                let old = or_refuse!(self.score_of(ns, board, member)?);
                let new = old.unwrap_or(0.0) + delta;
                let new = if new.is_finite() {
                    Ok(new)
                } else {
                    Err(Error::invalid("delta", "the new score would not be finite"))
                };
                self.update_score(ns, board, member, new, Applied::Score)
            }
            HotWrite::Set { .. }
            | HotWrite::Delete { .. }
            | HotWrite::Incr { .. }
            | HotWrite::Publish { .. } => {
                refuse!(Error::Unavailable(
                    "sled: this write does not go through a transaction".into()
                ))
            }
        }
    }

    fn score_of(&self, ns: &Namespace, board: &str, member: &str) -> Tx<Option<f64>> {
        let member_key = [
            &Key::new(ns).part(board.as_bytes()).done()[..],
            member.as_bytes(),
        ]
        .concat();
        Ok(self
            .scores
            .get(&member_key)?
            .map(|bits| decode_f64(&bits))
            .transpose())
    }

    /// Sets a member's score (or refuses with `new`'s error) and moves its
    /// place in the order.
    fn update_score(
        &self,
        ns: &Namespace,
        board: &str,
        member: &str,
        new: Result<f64>,
        result: impl Fn(f64) -> Applied,
    ) -> Tx<Applied> {
        let new = or_refuse!(new);
        let old = or_refuse!(self.score_of(ns, board, member)?);
        let board_prefix = Key::new(ns).part(board.as_bytes()).done();
        let order_key = |score: f64| {
            [
                &board_prefix[..],
                &score_order(score)[..],
                member.as_bytes(),
            ]
            .concat()
        };
        if let Some(old) = old {
            self.order.remove(order_key(old))?;
        }
        let member_key = [&board_prefix[..], member.as_bytes()].concat();
        self.scores
            .insert(member_key.as_slice(), &new.to_bits().to_be_bytes())?;
        self.order.insert(order_key(new), &[])?;
        Ok(Ok(result(new)))
    }

    fn cold(&self, op: &Op<ColdWrite>) -> Tx<Applied> {
        if let Some(earlier) = or_refuse!(self.earlier(op.id.to_bytes())?) {
            return Ok(Ok(earlier));
        }
        let ns = &op.namespace;
        match &op.write {
            ColdWrite::Record(write) => {
                let outcomes = or_refuse!(self.apply_records(ns, std::slice::from_ref(write))?);
                Ok(Ok(match write {
                    RecordWrite::Put { .. } => Applied::Version(outcomes[0]),
                    RecordWrite::Delete { .. } => Applied::Existed(outcomes[0] == 1),
                }))
            }
            ColdWrite::Transaction(writes) => {
                let outcomes = or_refuse!(self.apply_records(ns, writes)?);
                Ok(Ok(Applied::Versions(
                    outcomes
                        .iter()
                        .zip(writes)
                        .map(|(outcome, write)| match write {
                            RecordWrite::Put { .. } => *outcome,
                            RecordWrite::Delete { .. } => 0,
                        })
                        .collect(),
                )))
            }
            ColdWrite::AppendHistory { stream, body } => {
                let head_key = Key::new(ns).part(stream.as_bytes()).done();
                let last = match self.heads.get(&head_key)? {
                    Some(bytes) => or_refuse!(decode_u64(&bytes)),
                    None => 0,
                };
                let seq = last + 1;
                self.heads.insert(head_key.as_slice(), &seq.to_be_bytes())?;
                self.history.insert(
                    [&head_key[..], &seq.to_be_bytes()].concat(),
                    body.as_bytes(),
                )?;
                Ok(Ok(Applied::Seq(seq)))
            }
            ColdWrite::RestoreRecord {
                collection,
                key,
                version,
                body,
                expected_version,
            } => {
                let key = Key::new(ns).part(collection.as_bytes()).raw(key.as_bytes());
                let current = match self.records.get(&key)? {
                    Some(stored) => or_refuse!(split_record(&stored)).0,
                    None => 0,
                };
                if current != *expected_version {
                    refuse!(Error::Conflict {
                        expected: *expected_version,
                        current,
                    });
                }
                self.records
                    .insert(key, join_value(*version, body.as_bytes()))?;
                Ok(Ok(Applied::Version(*version)))
            }
            ColdWrite::RestoreHistory { stream, seq, body } => {
                let head_key = Key::new(ns).part(stream.as_bytes()).done();
                let last = match self.heads.get(&head_key)? {
                    Some(bytes) => or_refuse!(decode_u64(&bytes)),
                    None => 0,
                };
                let head = last.max(*seq);
                self.heads
                    .insert(head_key.as_slice(), &head.to_be_bytes())?;
                self.history.insert(
                    [&head_key[..], &seq.to_be_bytes()].concat(),
                    body.as_bytes(),
                )?;
                Ok(Ok(Applied::Seq(head)))
            }
        }
    }

    /// Record writes, all or nothing: every version check first, then the
    /// writes. Returns per write the new version of a put, or 1 or 0 for
    /// whether a delete found its record.
    fn apply_records(&self, ns: &Namespace, writes: &[RecordWrite]) -> Tx<Vec<u64>> {
        // Versions as this op's earlier writes leave them.
        let mut versions: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut planned = Vec::with_capacity(writes.len());
        let mut outcomes = Vec::with_capacity(writes.len());
        for write in writes {
            let key = Key::new(ns)
                .part(write.collection().as_bytes())
                .raw(write.key().as_bytes());
            let current = match versions.get(&key) {
                Some(version) => *version,
                None => match self.records.get(&key)? {
                    Some(stored) => or_refuse!(split_record(&stored)).0,
                    None => 0,
                },
            };
            if let Some(expected) = write.expected_version()
                && expected != current
            {
                refuse!(Error::Conflict { expected, current });
            }
            match write {
                RecordWrite::Put { body, .. } => {
                    let version = current + 1;
                    planned.push((key.clone(), Some(join_value(version, body.as_bytes()))));
                    versions.insert(key, version);
                    outcomes.push(version);
                }
                RecordWrite::Delete { .. } => {
                    planned.push((key.clone(), None));
                    versions.insert(key, 0);
                    outcomes.push(u64::from(current != 0));
                }
            }
        }
        for (key, value) in planned {
            match value {
                Some(value) => self.records.insert(key, value)?,
                None => self.records.remove(key)?,
            };
        }
        Ok(Ok(outcomes))
    }
}
