//! The durable outbox of one capability: ops waiting for their backend, in
//! order, and the dead letters that replay gave up on. Both live in the
//! outbox's own sled database, each capability in trees of its own:
//!
//! - `queue-<capability>`: seq (u64) -> [`Queued`]; seq is the order ops
//!   were accepted in, so it is the order they replay in.
//! - `dead-<capability>`: seq -> [`DeadLetter`].
//!
//! Pushing an op writes it to sled in memory; the caller then waits for
//! the group commit to flush it before acknowledging the write. Removing a
//! replayed op needs no flush: if the host dies first, the op replays once
//! more, and the backend's op-id marker makes that harmless.
//!
//! Invariant: the outbox never holds more than `ops_max` ops or
//! `bytes_max` bytes; past that, a push is refused with `limit-exceeded`.

use crate::storage::sled::commit::GroupCommit;
use crate::storage::{Applied, Error, Namespace, Op, OpId, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// An op waiting in the outbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Queued<W> {
    pub op: Op<W>,
    /// What the writer was told (see the capability's local view).
    pub provisional: Applied,
    pub enqueued_at_ms: u64,
}

/// An op replay gave up on, and why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct DeadLetter<W> {
    pub op: Op<W>,
    pub error: String,
    pub attempts: u32,
    pub enqueued_at_ms: u64,
    pub failed_at_ms: u64,
}

/// The outbox's size limits.
#[derive(Clone, Copy, Debug)]
pub(super) struct OutboxLimits {
    pub ops_max: u64,
    pub bytes_max: u64,
    pub dead_letters_max: u64,
}

/// What the outbox holds, kept in memory beside the trees.
#[derive(Default)]
struct Counts {
    next_seq: u64,
    ops: u64,
    bytes: u64,
    /// Queued ops by namespace, for operators.
    by_namespace: BTreeMap<Namespace, u64>,
    /// Queued op ids: a write retried while its op waits gets the answer it
    /// was given, and is not queued twice.
    ids: HashMap<OpId, (u64, Applied)>,
    /// Each queued op's enqueue time and size in bytes, by seq.
    entries: BTreeMap<u64, (u64, u64)>,
    dead: u64,
}

pub(super) struct Outbox<W> {
    /// The lowest seq still queued (`u64::MAX` when empty), for reads that
    /// wait until the writes queued before them have replayed.
    lowest: tokio::sync::watch::Sender<u64>,
    queue: sled::Tree,
    dead: sled::Tree,
    commit: Arc<GroupCommit>,
    limits: OutboxLimits,
    counts: std::sync::Mutex<Counts>,
    _write: std::marker::PhantomData<fn() -> W>,
}

/// The outbox's size in numbers.
#[derive(Clone, Debug, Default)]
pub(super) struct OutboxStats {
    pub ops: u64,
    pub bytes: u64,
    pub oldest_enqueued_at_ms: Option<u64>,
    pub by_namespace: BTreeMap<Namespace, u64>,
    pub dead_letters: u64,
}

fn unavailable(error: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("outbox: {error}"))
}

impl<W: Serialize + DeserializeOwned + Clone> Outbox<W> {
    /// Opens the capability's trees in `db` and counts what they hold.
    /// Returns the outbox and the ops it holds, in order (the caller
    /// rebuilds its view of them).
    pub(super) fn open(
        db: &sled::Db,
        capability: &str,
        commit: Arc<GroupCommit>,
        limits: OutboxLimits,
    ) -> Result<(Outbox<W>, Vec<Queued<W>>)> {
        let queue = db
            .open_tree(format!("queue-{capability}"))
            .map_err(unavailable)?;
        let dead = db
            .open_tree(format!("dead-{capability}"))
            .map_err(unavailable)?;
        let mut counts = Counts::default();
        let mut held = Vec::new();
        for item in queue.iter() {
            let (key, bytes) = item.map_err(unavailable)?;
            let seq = seq_of(&key)?;
            let queued: Queued<W> = postcard::from_bytes(&bytes)
                .map_err(|e| unavailable(format!("a queued op cannot be read: {e}")))?;
            counts.next_seq = seq + 1;
            counts.ops += 1;
            counts.bytes += bytes.len() as u64;
            *counts
                .by_namespace
                .entry(queued.op.namespace.clone())
                .or_default() += 1;
            counts
                .ids
                .insert(queued.op.id, (seq, queued.provisional.clone()));
            counts
                .entries
                .insert(seq, (queued.enqueued_at_ms, bytes.len() as u64));
            held.push(queued);
        }
        if let Some(last) = dead.last().map_err(unavailable)? {
            counts.next_seq = counts.next_seq.max(seq_of(&last.0)? + 1);
        }
        counts.dead = dead.len() as u64;
        let lowest = counts.entries.keys().next().copied().unwrap_or(u64::MAX);
        let outbox = Outbox {
            lowest: tokio::sync::watch::channel(lowest).0,
            queue,
            dead,
            commit,
            limits,
            counts: std::sync::Mutex::new(counts),
            _write: std::marker::PhantomData,
        };
        Ok((outbox, held))
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().expect("outbox counts poisoned")
    }

    pub(super) fn is_empty(&self) -> bool {
        self.counts().ops == 0
    }

    /// The answer given for `id` if it is queued.
    pub(super) fn queued(&self, id: OpId) -> Option<Applied> {
        self.counts().ids.get(&id).map(|(_, answer)| answer.clone())
    }

    /// Refuses `op` if it would not fit.
    pub(super) fn check_room(&self, op: &Op<W>) -> Result<()> {
        let size = postcard::to_stdvec(op).map_err(unavailable)?.len() as u64 + 32;
        let counts = self.counts();
        if counts.ops + 1 > self.limits.ops_max {
            return Err(Error::LimitExceeded {
                what: "outbox-ops",
                max: self.limits.ops_max,
                actual: counts.ops + 1,
            });
        }
        if counts.bytes + size > self.limits.bytes_max {
            return Err(Error::LimitExceeded {
                what: "outbox-bytes",
                max: self.limits.bytes_max,
                actual: counts.bytes + size,
            });
        }
        Ok(())
    }

    /// Adds `op` at the end, in memory (see [`Outbox::durable`]).
    pub(super) fn push(&self, op: Op<W>, provisional: Applied, now_ms: u64) -> Result<u64> {
        let queued = Queued {
            op,
            provisional,
            enqueued_at_ms: now_ms,
        };
        let bytes = postcard::to_stdvec(&queued).map_err(unavailable)?;
        let mut counts = self.counts();
        let seq = counts.next_seq;
        self.queue
            .insert(seq.to_be_bytes(), bytes.as_slice())
            .map_err(unavailable)?;
        counts.next_seq += 1;
        counts.ops += 1;
        counts.bytes += bytes.len() as u64;
        *counts
            .by_namespace
            .entry(queued.op.namespace.clone())
            .or_default() += 1;
        counts.ids.insert(queued.op.id, (seq, queued.provisional));
        counts.entries.insert(seq, (now_ms, bytes.len() as u64));
        self.publish_lowest(&counts);
        Ok(seq)
    }

    /// Waits until everything pushed so far is on disk.
    pub(super) async fn durable(&self) -> Result<()> {
        self.commit.durable().await
    }

    /// The queued ops from the front, in order, with their seqs; each is
    /// read only when the iterator gets to it.
    pub(super) fn front(&self) -> impl Iterator<Item = Result<(u64, Queued<W>)>> + '_ {
        self.queue.iter().map(|item| {
            let (key, bytes) = item.map_err(unavailable)?;
            let queued = postcard::from_bytes(&bytes)
                .map_err(|e| unavailable(format!("a queued op cannot be read: {e}")))?;
            Ok((seq_of(&key)?, queued))
        })
    }

    /// Removes replayed ops.
    pub(super) fn remove(&self, done: &[(u64, &Op<W>)]) -> Result<()> {
        for (seq, _) in done {
            self.queue.remove(seq.to_be_bytes()).map_err(unavailable)?;
        }
        let mut counts = self.counts();
        for (seq, op) in done {
            self.forget(&mut counts, *seq, op);
        }
        self.publish_lowest(&counts);
        Ok(())
    }

    fn publish_lowest(&self, counts: &Counts) {
        let lowest = counts.entries.keys().next().copied().unwrap_or(u64::MAX);
        self.lowest.send_replace(lowest);
    }

    /// The seq the next push gets: a read that must see every write queued
    /// before it waits until everything below it has left.
    pub(super) fn next_seq(&self) -> u64 {
        self.counts().next_seq
    }

    /// Waits until no op below `seq` is queued.
    pub(super) async fn drained_below(&self, seq: u64) {
        let mut lowest = self.lowest.subscribe();
        let _ = lowest.wait_for(|lowest| *lowest >= seq).await;
    }

    fn forget(&self, counts: &mut Counts, seq: u64, op: &Op<W>) {
        let Some((_, size)) = counts.entries.remove(&seq) else {
            return;
        };
        counts.ops -= 1;
        counts.bytes -= size;
        if let Some(n) = counts.by_namespace.get_mut(&op.namespace) {
            *n -= 1;
            if *n == 0 {
                counts.by_namespace.remove(&op.namespace);
            }
        }
        counts.ids.remove(&op.id);
    }

    /// Moves a queued op to the dead letters, with the error that killed
    /// it. One sled transaction: the op is in exactly one of the two.
    pub(super) fn bury(
        &self,
        seq: u64,
        queued: &Queued<W>,
        error: &Error,
        attempts: u32,
        now_ms: u64,
    ) -> Result<()> {
        let letter = DeadLetter {
            op: queued.op.clone(),
            error: error.to_string(),
            attempts,
            enqueued_at_ms: queued.enqueued_at_ms,
            failed_at_ms: now_ms,
        };
        let bytes = postcard::to_stdvec(&letter).map_err(unavailable)?;
        use sled::Transactional;
        (&self.queue, &self.dead)
            .transaction(|(queue, dead)| {
                queue.remove(&seq.to_be_bytes())?;
                dead.insert(&seq.to_be_bytes(), bytes.as_slice())?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| unavailable(format!("{e:?}")))?;
        let mut counts = self.counts();
        self.forget(&mut counts, seq, &queued.op);
        self.publish_lowest(&counts);
        counts.dead += 1;
        // The dead letters are bounded too: the oldest go first, and say so.
        while counts.dead > self.limits.dead_letters_max {
            match self.dead.pop_min().map_err(unavailable)? {
                Some((key, _)) => {
                    tracing::error!(
                        seq = seq_of(&key).unwrap_or(0),
                        "dead letter dropped: over storage.resilience.dead_letters_max"
                    );
                    counts.dead -= 1;
                }
                None => break,
            }
        }
        Ok(())
    }

    /// Dead letters after `after` (0: from the first), at most `limit`.
    pub(super) fn dead_letters(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, DeadLetter<W>)>> {
        self.dead
            .range((after + 1).to_be_bytes()..)
            .take(limit)
            .map(|item| {
                let (key, bytes) = item.map_err(unavailable)?;
                let letter = postcard::from_bytes(&bytes)
                    .map_err(|e| unavailable(format!("a dead letter cannot be read: {e}")))?;
                Ok((seq_of(&key)?, letter))
            })
            .collect()
    }

    /// Takes a dead letter out, to queue its op again or drop it.
    pub(super) fn exhume(&self, seq: u64) -> Result<Option<DeadLetter<W>>> {
        let Some(bytes) = self.dead.remove(seq.to_be_bytes()).map_err(unavailable)? else {
            return Ok(None);
        };
        self.counts().dead -= 1;
        postcard::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| unavailable(format!("a dead letter cannot be read: {e}")))
    }

    pub(super) fn stats(&self) -> OutboxStats {
        let counts = self.counts();
        OutboxStats {
            ops: counts.ops,
            bytes: counts.bytes,
            oldest_enqueued_at_ms: counts.entries.values().next().map(|(at, _)| *at),
            by_namespace: counts.by_namespace.clone(),
            dead_letters: counts.dead,
        }
    }

    pub(super) fn limits(&self) -> OutboxLimits {
        self.limits
    }
}

fn seq_of(key: &[u8]) -> Result<u64> {
    Ok(u64::from_be_bytes(key.try_into().map_err(|_| {
        unavailable("a key of the outbox is malformed")
    })?))
}
