//! The part of the outage layer that does not care which capability it
//! guards: the write path (straight to the backend, or into the outbox),
//! the reads' fallback, and the replayer.
//!
//! **Invariant:** from the first failed write until the replayer finds the
//! outbox empty, every write goes into the outbox, behind the ones already
//! there; so no write overtakes a queued one. The switch back happens under
//! the same lock that queues a write, so no write can slip in between the
//! replayer's last look and the switch.
//!
//! **Invariant:** an op leaves the outbox only after the backend confirmed
//! it, or after it failed for good and went to the dead letters.

use super::breaker::{Breaker, BreakerState};
use super::local::LocalCopy;
use super::outbox::{DeadLetter, Outbox, OutboxStats, Queued};
use crate::storage::sled::now_ms;
use crate::storage::{Applied, Error, Namespace, Op, OpId, Result};
use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// A backend as the layer sees it.
#[async_trait]
pub(super) trait Backend: Send + Sync + 'static {
    type Write: Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned
        + Lanes
        + Send
        + Sync
        + 'static;
    async fn apply(&self, op: &Op<Self::Write>) -> Result<Applied>;
    async fn ping(&self) -> Result<()>;
    /// Whether the backend can commit several ops at once
    /// ([`Backend::apply_batch`]); replay then commits a group of lanes
    /// together.
    fn batches(&self) -> bool {
        false
    }
    /// Applies `ops` in order, committed together: `Ok` holds each op's
    /// result, all of them applied. `Err`: none may be taken as applied.
    async fn apply_batch(&self, ops: &[&Op<Self::Write>]) -> Result<Vec<Applied>> {
        let _ = ops;
        Err(Error::Unavailable("no batches".into()))
    }
}

/// The keys a write touches, as replay orders ops: ops on the same key
/// replay in the order they were queued; ops on different keys may replay
/// at once. A write with more than one key (a transaction) replays alone.
pub(super) trait Lanes {
    fn lanes(&self, ns: &Namespace) -> Vec<Vec<u8>>;
}

/// What the layer knows of the data without its backend (see the
/// capability's view).
pub(super) trait View: Send + 'static {
    type Write;
    /// What `op` will answer, from what is known; remembers its effect as
    /// pending. An error refuses the op (it is not queued).
    fn predict(&mut self, op: &Op<Self::Write>) -> Result<Applied>;
    /// A queued op was confirmed (`Some`) or given up on (`None`).
    fn settled(&mut self, op: &Op<Self::Write>, applied: Option<&Applied>);
    /// A write went straight to the backend and answered `applied`.
    fn applied(&mut self, op: &Op<Self::Write>, applied: &Applied);
}

/// The layer's timing and batch settings.
#[derive(Clone, Debug)]
pub(super) struct Tuning {
    pub call_timeout: Duration,
    pub replay_batch_max: usize,
    pub replay_lanes_max: usize,
    /// Most ops replay commits together, on a backend that batches.
    pub replay_commit_max: usize,
    pub probe_interval: Duration,
}

/// The layer over one backend.
pub(super) struct Guarded<B: Backend, V> {
    pub(super) capability: &'static str,
    pub(super) backend_name: &'static str,
    pub(super) backend: B,
    pub(super) outbox: Outbox<B::Write>,
    pub(super) breaker: Breaker,
    pub(super) view: Mutex<V>,
    /// Set from the first failed write until the replayer finds the outbox
    /// empty: meanwhile every write is queued (see the module docs).
    queueing: Mutex<bool>,
    wake: Arc<Notify>,
    tuning: Tuning,
    /// Ops replayed into the backend since start.
    replayed: AtomicU64,
    /// Failed replay attempts per queued op, for its dead letter.
    attempts: Mutex<HashMap<u64, u32>>,
    /// The last replay error, for operators.
    last_error: Mutex<Option<String>>,
    /// For the replay rate: when the window began, the count then, and the
    /// rate the last full window measured.
    rate: Mutex<(std::time::Instant, u64, f64)>,
    /// The answers of ops applied lately (straight, or replayed), by id: a
    /// write retried after its op left the outbox gets the same answer,
    /// and is not queued again.
    answered: Mutex<LocalCopy<OpId, Applied>>,
}

/// How many answers `answered` keeps.
const ANSWERS_KEPT: usize = 100_000;

/// Queued ops on one key, in order, with their seqs.
type Lane<W> = Vec<(u64, Queued<W>)>;

/// Tests make every write take the queue (`resilient-always-queue`).
fn forced_to_queue() -> bool {
    fail::fail_point!("resilient-always-queue", |_| true);
    false
}

/// How a round of replay went.
enum Round {
    /// Nothing was queued.
    Idle,
    /// Some ops landed (or were buried) and none failed for a while.
    Progress,
    /// The backend did not answer.
    Failed,
}

/// What [`Guarded::start`] puts together.
pub(super) struct Guarding<B: Backend, V> {
    pub capability: &'static str,
    pub backend_name: &'static str,
    pub backend: B,
    pub outbox: Outbox<B::Write>,
    /// The ops the outbox already holds (from before a restart), which the
    /// view takes as pending.
    pub held: Vec<Queued<B::Write>>,
    pub breaker: Breaker,
    pub view: V,
    pub tuning: Tuning,
}

impl<B: Backend, V: View<Write = B::Write>> Guarded<B, V> {
    /// Guards a backend and starts its replayer.
    pub(super) fn start(parts: Guarding<B, V>) -> Arc<Self> {
        let Guarding {
            capability,
            backend_name,
            backend,
            outbox,
            held,
            breaker,
            mut view,
            tuning,
        } = parts;
        for queued in &held {
            // Their answers were given before the restart; only the
            // effects matter now, for reads.
            let _ = view.predict(&queued.op);
        }
        let wake = Arc::new(Notify::new());
        let guarded = Arc::new(Guarded {
            capability,
            backend_name,
            backend,
            queueing: Mutex::new(!held.is_empty()),
            outbox,
            breaker,
            view: Mutex::new(view),
            wake: wake.clone(),
            tuning,
            replayed: AtomicU64::new(0),
            attempts: Mutex::new(HashMap::new()),
            last_error: Mutex::new(None),
            rate: Mutex::new((std::time::Instant::now(), 0, 0.0)),
            answered: Mutex::new(LocalCopy::new(ANSWERS_KEPT, usize::MAX)),
        });
        if !held.is_empty() {
            tracing::warn!(
                capability,
                ops = held.len(),
                "the outbox holds writes from before: replaying them"
            );
        }
        tokio::spawn(replay_forever(Arc::downgrade(&guarded), wake));
        guarded
    }

    fn queueing(&self) -> std::sync::MutexGuard<'_, bool> {
        self.queueing.lock().expect("queueing flag poisoned")
    }

    pub(super) fn view(&self) -> std::sync::MutexGuard<'_, V> {
        self.view.lock().expect("view poisoned")
    }

    /// A backend call, bounded by the call timeout and counted by the
    /// breaker. A timeout is `unavailable`: its outcome is unknown.
    pub(super) async fn call<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.tuning.call_timeout, call).await {
            Ok(Ok(value)) => {
                self.breaker.succeeded();
                Ok(value)
            }
            Ok(Err(Error::Unavailable(reason))) => {
                self.breaker.failed(&reason);
                Err(Error::Unavailable(reason))
            }
            // The backend answered: it is up, whatever it said.
            Ok(Err(error)) => {
                self.breaker.succeeded();
                Err(error)
            }
            Err(_) => {
                let reason = format!(
                    "{} did not answer within {} ms",
                    self.backend_name,
                    self.tuning.call_timeout.as_millis()
                );
                self.breaker.failed(&reason);
                Err(Error::Unavailable(reason))
            }
        }
    }

    /// Applies `op`: straight to the backend while nothing is queued and
    /// the breaker lets calls through, else into the outbox. A write whose
    /// outcome is unknown (refused connection, timeout) is queued too:
    /// replaying it is safe, since the backend applies an op id once.
    pub(super) async fn apply(&self, op: &Op<B::Write>) -> Result<Applied> {
        let direct = !forced_to_queue() && !*self.queueing() && self.breaker.allows_calls();
        if direct {
            match self.call(self.backend.apply(op)).await {
                Ok(applied) => {
                    self.view().applied(op, &applied);
                    self.remember(op, &applied);
                    return Ok(applied);
                }
                Err(Error::Unavailable(reason)) => {
                    tracing::debug!(capability = self.capability, %reason, "a write did not land: queueing it");
                }
                Err(error) => return Err(error),
            }
        }
        self.enqueue(op).await
    }

    fn remember(&self, op: &Op<B::Write>, applied: &Applied) {
        self.answered
            .lock()
            .expect("answers poisoned")
            .insert(op.id, applied.clone(), 1);
    }

    /// Queues `op` and waits until the outbox has it on disk.
    async fn enqueue(&self, op: &Op<B::Write>) -> Result<Applied> {
        let answer = {
            let mut queueing = self.queueing();
            // The outbox first: replay remembers an answer before it takes
            // the op out, so an op missing from the outbox here that was
            // ever in it is found among the answers.
            let known = self.outbox.queued(op.id).or_else(|| {
                let mut answered = self.answered.lock().expect("answers poisoned");
                answered.get(&op.id).cloned()
            });
            match known {
                // Applied or queued already (a retried action): the same
                // answer, and nothing more to do.
                Some(answer) => answer,
                None => {
                    self.outbox.check_room(op)?;
                    let answer = self.view().predict(op)?;
                    self.outbox.push(op.clone(), answer.clone(), now_ms())?;
                    *queueing = true;
                    answer
                }
            }
        };
        self.wake.notify_one();
        self.outbox.durable().await?;
        // On disk, not yet acknowledged: tests crash here
        // (`outbox-after-flush=return`); the writer's retry finds it queued.
        fail::fail_point!("outbox-after-flush", |_| std::process::abort());
        Ok(answer)
    }

    /// Whether reads may try the backend.
    pub(super) fn reads_go_through(&self) -> bool {
        self.breaker.allows_calls()
    }

    /// Waits (at most a few call timeouts) until every write queued before
    /// now has replayed, so that a read the backend answers sees them.
    pub(super) async fn barrier(&self) -> Result<()> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        let before = self.outbox.next_seq();
        let patience = self.tuning.call_timeout * 4;
        tokio::time::timeout(patience, self.outbox.drained_below(before))
            .await
            .map_err(|_| {
                Error::Unavailable(format!(
                    "{} storage is still replaying the writes queued before this read",
                    self.capability
                ))
            })
    }

    /// Readies a long read that only the backend can answer and that no
    /// call timeout bounds (an export): the backend must be up and hold
    /// every write queued before now.
    pub(super) async fn long_read(&self) -> Result<()> {
        if !self.reads_go_through() {
            return Err(Error::Unavailable(format!(
                "{} storage ({}) is down",
                self.capability, self.backend_name
            )));
        }
        self.barrier().await
    }

    pub(super) fn outbox_stats(&self) -> OutboxStats {
        self.outbox.stats()
    }

    pub(super) fn replayed(&self) -> u64 {
        self.replayed.load(Ordering::Relaxed)
    }

    /// Ops replayed per second, over the last second or more.
    pub(super) fn replay_rate(&self) -> f64 {
        let mut rate = self.rate.lock().expect("rate poisoned");
        let (since, count, last) = *rate;
        let elapsed = since.elapsed().as_secs_f64();
        if elapsed >= 1.0 {
            let now = self.replayed();
            *rate = (
                std::time::Instant::now(),
                now,
                now.saturating_sub(count) as f64 / elapsed,
            );
            return rate.2;
        }
        last
    }

    pub(super) fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("last error poisoned").clone()
    }

    /// Queues a dead letter's op again, at the end.
    pub(super) async fn retry_dead_letter(&self, seq: u64) -> Result<bool> {
        let Some(letter) = self.outbox.exhume(seq)? else {
            return Ok(false);
        };
        {
            let mut queueing = self.queueing();
            // Its answer was given long ago; only its effect matters.
            let answer = self.view().predict(&letter.op).unwrap_or(Applied::Done);
            self.outbox.push(letter.op, answer, now_ms())?;
            *queueing = true;
        }
        self.wake.notify_one();
        self.outbox.durable().await?;
        Ok(true)
    }

    /// Drops a dead letter for good.
    pub(super) async fn drop_dead_letter(&self, seq: u64) -> Result<bool> {
        let dropped = self.outbox.exhume(seq)?.is_some();
        self.outbox.durable().await?;
        Ok(dropped)
    }

    pub(super) fn dead_letters(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, DeadLetter<B::Write>)>> {
        self.outbox.dead_letters(after, limit)
    }

    /// One round of replay: probe the backend if the breaker is open, then
    /// replay a batch from the front of the outbox.
    async fn replay_round(self: &Arc<Self>) -> Round {
        let idle = {
            let mut queueing = self.queueing();
            if self.outbox.is_empty() {
                *queueing = false;
            }
            !*queueing
        };
        if idle {
            // Nothing to replay, but a breaker left open (by a read, or a
            // timeout on the last replayed op) is probed all the same:
            // reads go to the backend again as soon as it answers.
            if self.breaker.state() != BreakerState::Closed
                && self.breaker.until_probe().is_zero()
                && self.probe().await
            {
                self.breaker.succeeded();
            }
            return Round::Idle;
        }
        if self.breaker.state() == BreakerState::Open && !self.probe().await {
            return Round::Failed;
        }
        // Lanes: per key, in queue order. A write with more than one key
        // replays alone: the batch stops before it, or is only it. Ops are
        // read from the outbox only as far as the lanes reach.
        let mut lanes: Vec<Lane<B::Write>> = Vec::new();
        let mut lane_of: HashMap<Vec<u8>, usize> = HashMap::new();
        for item in self.outbox.front().take(self.tuning.replay_batch_max) {
            let (seq, queued) = match item {
                Ok(item) => item,
                Err(error) => {
                    tracing::error!(%error, capability = self.capability, "reading the outbox failed");
                    return Round::Failed;
                }
            };
            let keys = queued.op.write.lanes(&queued.op.namespace);
            if keys.len() != 1 {
                if lanes.is_empty() {
                    lanes.push(vec![(seq, queued)]);
                }
                break;
            }
            let key = keys.into_iter().next().expect("one key");
            match lane_of.get(&key) {
                Some(&lane) => lanes[lane].push((seq, queued)),
                None => {
                    if lanes.len() == self.tuning.replay_lanes_max {
                        break;
                    }
                    lane_of.insert(key, lanes.len());
                    lanes.push(vec![(seq, queued)]);
                }
            }
        }
        let mut running = tokio::task::JoinSet::new();
        if self.backend.batches() {
            // Lanes in groups of about `replay_commit_max` ops, each group
            // one commit: a PostgreSQL commit costs more than a statement.
            let mut groups: Vec<Vec<Lane<B::Write>>> = Vec::new();
            let mut ops_in_last = usize::MAX;
            for lane in lanes {
                if ops_in_last >= self.tuning.replay_commit_max {
                    groups.push(Vec::new());
                    ops_in_last = 0;
                }
                ops_in_last += lane.len();
                groups.last_mut().expect("a group").push(lane);
            }
            for group in groups {
                let guarded = self.clone();
                running.spawn(async move { guarded.replay_group(group).await });
            }
        } else {
            for lane in lanes {
                let guarded = self.clone();
                running.spawn(async move { guarded.replay_lane(lane).await });
            }
        }
        let mut failed = false;
        while let Some(outcome) = running.join_next().await {
            failed |= outcome.unwrap_or(true);
        }
        if failed {
            Round::Failed
        } else {
            Round::Progress
        }
    }

    /// Pings the backend for an open breaker; whether it answered.
    async fn probe(&self) -> bool {
        if self.breaker.state() != BreakerState::Open {
            return true;
        }
        let answered = tokio::time::timeout(self.tuning.call_timeout, self.backend.ping())
            .await
            .is_ok_and(|pinged| pinged.is_ok());
        self.breaker.probed(answered);
        answered
    }

    /// Replays a group of lanes in one commit; if the backend will not
    /// take them so (one of them fails, or the commit does), lane by lane.
    /// Returns whether it stopped at an op the backend did not answer.
    async fn replay_group(&self, group: Vec<Lane<B::Write>>) -> bool {
        let ops: Vec<&Op<B::Write>> = group.iter().flatten().map(|(_, q)| &q.op).collect();
        if ops.len() > 1 {
            let batch =
                tokio::time::timeout(self.tuning.call_timeout, self.backend.apply_batch(&ops));
            if let Ok(Ok(applied)) = batch.await
                && applied.len() == ops.len()
            {
                self.breaker.succeeded();
                let replayed: Vec<(u64, &Op<B::Write>)> = group
                    .iter()
                    .flatten()
                    .map(|(seq, q)| (*seq, &q.op))
                    .collect();
                return self.confirmed(&replayed, &applied).is_err();
            }
        }
        // Lane by lane tells which op fails, and how: the breaker counts
        // those calls, not the batch.
        for lane in group {
            if self.replay_lane(lane).await {
                return true;
            }
        }
        false
    }

    /// Ops the backend confirmed: out of the outbox, and settled.
    fn confirmed(&self, replayed: &[(u64, &Op<B::Write>)], applied: &[Applied]) -> Result<()> {
        // The backend has them; a crash before the removal below replays
        // them once more, and the backend's markers answer. Tests crash
        // here (`replay-after-confirm=return`).
        fail::fail_point!("replay-after-confirm", |_| std::process::abort());
        // Remembered before they leave the outbox: a duplicate arriving in
        // between must find its answer in one place or the other, never
        // in neither (it would be queued and answered anew).
        {
            let mut answered = self.answered.lock().expect("answers poisoned");
            for ((_, op), applied) in replayed.iter().zip(applied) {
                answered.insert(op.id, applied.clone(), 1);
            }
        }
        if let Err(error) = self.outbox.remove(replayed) {
            tracing::error!(%error, "removing replayed ops from the outbox failed");
            return Err(error);
        }
        {
            let mut attempts = self.attempts.lock().expect("attempts poisoned");
            let mut view = self.view();
            for ((seq, op), applied) in replayed.iter().zip(applied) {
                attempts.remove(seq);
                view.settled(op, Some(applied));
            }
        }
        self.replayed
            .fetch_add(replayed.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Replays one lane in order, stopping at the first op the backend
    /// does not answer. Returns whether it stopped so.
    async fn replay_lane(&self, lane: Lane<B::Write>) -> bool {
        for (seq, queued) in lane {
            match self.call(self.backend.apply(&queued.op)).await {
                Ok(applied) => {
                    if self.confirmed(&[(seq, &queued.op)], &[applied]).is_err() {
                        return true;
                    }
                }
                Err(Error::Unavailable(reason)) => {
                    *self
                        .attempts
                        .lock()
                        .expect("attempts poisoned")
                        .entry(seq)
                        .or_default() += 1;
                    *self.last_error.lock().expect("last error poisoned") = Some(reason);
                    return true;
                }
                Err(error) => {
                    // The backend refused it for good (a version that moved
                    // on meanwhile, a value it will not take): bury it, and
                    // let the rest flow.
                    let attempts = self
                        .attempts
                        .lock()
                        .expect("attempts poisoned")
                        .remove(&seq)
                        .unwrap_or(0)
                        + 1;
                    tracing::error!(capability = self.capability, %error, seq, "a queued write failed for good: moved to the dead letters");
                    *self.last_error.lock().expect("last error poisoned") = Some(error.to_string());
                    if let Err(bury) = self.outbox.bury(seq, &queued, &error, attempts, now_ms()) {
                        tracing::error!(error = %bury, "burying a dead letter failed");
                        return true;
                    }
                    self.view().settled(&queued.op, None);
                }
            }
        }
        false
    }
}

/// The replayer: waits for queued ops, replays them round after round,
/// and backs off (with the breaker's jittered backoff) when the backend
/// does not answer. Ends when the layer is dropped.
async fn replay_forever<B: Backend, V: View<Write = B::Write>>(
    guarded: Weak<Guarded<B, V>>,
    wake: Arc<Notify>,
) {
    loop {
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let round = match guarded.upgrade() {
            Some(guarded) => (
                guarded.replay_round().await,
                guarded.breaker.until_probe(),
                guarded.tuning.probe_interval,
            ),
            None => return,
        };
        match round {
            (Round::Progress, ..) => {}
            (Round::Idle, ..) => {
                // Woken by a write, or once a second to see if the layer
                // is still there.
                let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
            }
            (Round::Failed, until_probe, interval) => {
                let jitter = Duration::from_micros(
                    rand::random::<u64>() % (interval.as_micros() as u64).max(1),
                );
                tokio::time::sleep(until_probe.max(jitter)).await;
            }
        }
    }
}
