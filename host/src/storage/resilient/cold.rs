//! The outage layer over cold storage (PostgreSQL).
//!
//! What the local view knows, per key: a record (version and body, or
//! absent) and a history stream's last sequence number. It knows a key
//! while writes to it are queued (their effect, in order: read-your-writes)
//! and, in a bounded local copy, what was recently read or written.
//!
//! While the backend is down:
//! - a versioned `put`, `delete` or `transact` is checked against what the
//!   host knows: a wrong version is a `conflict` at once; against a record
//!   the host never saw it is accepted, and may meet a `conflict` on replay,
//!   which sends it to the dead letters (the operator sees it there);
//! - the versions a `put` answers, and the sequence number an
//!   `append-history` answers, are the host's best knowledge: exact for
//!   records and streams it knows, counted from 0 for those it never saw,
//!   and then possibly lower than what the database assigns on replay;
//! - `get` answers from the queued writes or the local copy, or
//!   `unavailable`;
//! - `list`, `query` and `read-history` are `unavailable`.

use super::guarded::{Backend, Guarded, Lanes, View};
use super::local::{Footprint, Knowledge};
use crate::storage::{
    Applied, ColdStore, ColdWrite, Condition, Error, ExportView, HistoryEntry, ItemSink, Namespace,
    Op, Page, Record, RecordWrite, Result,
};
use async_trait::async_trait;
use std::sync::Arc;

pub(super) struct ColdBackend(pub(super) Arc<dyn ColdStore>);

#[async_trait]
impl Backend for ColdBackend {
    type Write = ColdWrite;

    async fn apply(&self, op: &Op<ColdWrite>) -> Result<Applied> {
        self.0.apply(op).await
    }

    async fn ping(&self) -> Result<()> {
        self.0.ping().await
    }

    fn batches(&self) -> bool {
        true
    }

    async fn apply_batch(&self, ops: &[&Op<ColdWrite>]) -> Result<Vec<Applied>> {
        self.0.apply_batch(ops).await
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(super) enum Key {
    Record(Namespace, String, String),
    Stream(Namespace, String),
}

impl Key {
    fn record(ns: &Namespace, write: &RecordWrite) -> Key {
        Key::Record(
            ns.clone(),
            write.collection().to_owned(),
            write.key().to_owned(),
        )
    }

    /// Every key `write` touches.
    fn all(ns: &Namespace, write: &ColdWrite) -> Vec<Key> {
        match write {
            ColdWrite::Record(record) => vec![Key::record(ns, record)],
            ColdWrite::Transaction(writes) => writes.iter().map(|w| Key::record(ns, w)).collect(),
            ColdWrite::AppendHistory { stream, .. } | ColdWrite::RestoreHistory { stream, .. } => {
                vec![Key::Stream(ns.clone(), stream.clone())]
            }
            ColdWrite::RestoreRecord {
                collection, key, ..
            } => vec![Key::Record(ns.clone(), collection.clone(), key.clone())],
        }
    }

    fn lane(&self) -> Vec<u8> {
        let (kind, ns, parts): (u8, &Namespace, Vec<&str>) = match self {
            Key::Record(ns, collection, key) => (b'r', ns, vec![collection, key]),
            Key::Stream(ns, stream) => (b's', ns, vec![stream]),
        };
        let mut lane = vec![kind];
        for part in std::iter::once(ns.as_str()).chain(parts) {
            lane.extend_from_slice(&(part.len() as u32).to_be_bytes());
            lane.extend_from_slice(part.as_bytes());
        }
        lane
    }
}

impl Lanes for ColdWrite {
    fn lanes(&self, ns: &Namespace) -> Vec<Vec<u8>> {
        let mut lanes: Vec<Vec<u8>> = Key::all(ns, self).iter().map(Key::lane).collect();
        lanes.sort();
        lanes.dedup();
        lanes
    }
}

/// What the view knows of one key.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Known {
    /// The record's version and body, or `None` if absent.
    Record(Option<(u64, String)>),
    /// A stream's last sequence number (0: empty).
    Stream(u64),
}

impl Footprint for Known {
    fn footprint(&self) -> usize {
        match self {
            Known::Record(Some((_, body))) => body.len() + 64,
            _ => 64,
        }
    }
}

/// The cold view: keys with queued writes, and the local copy.
pub(super) type ColdView = Knowledge<Key, Known>;

impl ColdView {
    /// What record writes will leave, checked against what is known:
    /// per write its outcome (a put's version, 1 or 0 for whether a
    /// delete found its record) and the state it leaves.
    fn plan(&mut self, ns: &Namespace, writes: &[RecordWrite]) -> Result<Vec<(Key, Known, u64)>> {
        let mut planned: Vec<(Key, Known, u64)> = Vec::with_capacity(writes.len());
        for write in writes {
            let key = Key::record(ns, write);
            // This op's own earlier writes come first.
            let known = match planned.iter().rev().find(|(k, ..)| *k == key) {
                Some((_, known, _)) => Some(known.clone()),
                None => self.known(&key),
            };
            let current = match &known {
                Some(Known::Record(Some((version, _)))) => Some(*version),
                Some(Known::Record(None)) => Some(0),
                _ => None,
            };
            if let (Some(expected), Some(current)) = (write.expected_version(), current)
                && expected != current
            {
                return Err(Error::Conflict { expected, current });
            }
            // Without knowledge, the version expected is the best guess.
            let base = current.or(write.expected_version()).unwrap_or(0);
            match write {
                RecordWrite::Put { body, .. } => {
                    let version = base + 1;
                    planned.push((key, Known::Record(Some((version, body.clone()))), version));
                }
                RecordWrite::Delete { .. } => {
                    planned.push((key, Known::Record(None), u64::from(base != 0)));
                }
            }
        }
        Ok(planned)
    }
}

impl View for ColdView {
    type Write = ColdWrite;

    fn predict(&mut self, op: &Op<ColdWrite>) -> Result<Applied> {
        let ns = &op.namespace;
        let (changes, answer): (Vec<(Key, Known)>, Applied) = match &op.write {
            ColdWrite::Record(write) => {
                let mut planned = self.plan(ns, std::slice::from_ref(write))?;
                let (key, known, outcome) = planned.pop().expect("one write");
                let answer = match write {
                    RecordWrite::Put { .. } => Applied::Version(outcome),
                    RecordWrite::Delete { .. } => Applied::Existed(outcome == 1),
                };
                (vec![(key, known)], answer)
            }
            ColdWrite::Transaction(writes) => {
                let planned = self.plan(ns, writes)?;
                let versions = planned
                    .iter()
                    .zip(writes)
                    .map(|((.., outcome), write)| match write {
                        RecordWrite::Put { .. } => *outcome,
                        RecordWrite::Delete { .. } => 0,
                    })
                    .collect();
                let changes = planned
                    .into_iter()
                    .map(|(key, known, _)| (key, known))
                    .collect();
                (changes, Applied::Versions(versions))
            }
            ColdWrite::AppendHistory { stream, .. } => {
                let key = Key::Stream(ns.clone(), stream.clone());
                let last = match self.known(&key) {
                    Some(Known::Stream(last)) => last,
                    _ => 0,
                };
                (vec![(key, Known::Stream(last + 1))], Applied::Seq(last + 1))
            }
            ColdWrite::RestoreRecord {
                collection,
                key,
                version,
                body,
                expected_version,
            } => {
                let key = Key::Record(ns.clone(), collection.clone(), key.clone());
                let current = match self.known(&key) {
                    Some(Known::Record(Some((current, _)))) => Some(current),
                    Some(Known::Record(None)) => Some(0),
                    _ => None,
                };
                if let Some(current) = current
                    && current != *expected_version
                {
                    return Err(Error::Conflict {
                        expected: *expected_version,
                        current,
                    });
                }
                let known = Known::Record(Some((*version, body.clone())));
                (vec![(key, known)], Applied::Version(*version))
            }
            ColdWrite::RestoreHistory { stream, seq, .. } => {
                let key = Key::Stream(ns.clone(), stream.clone());
                let last = match self.known(&key) {
                    Some(Known::Stream(last)) => last,
                    _ => 0,
                };
                let head = last.max(*seq);
                (vec![(key, Known::Stream(head))], Applied::Seq(head))
            }
        };
        for (key, known) in changes {
            self.queue(key, known);
        }
        Ok(answer)
    }

    fn settled(&mut self, op: &Op<ColdWrite>, applied: Option<&Applied>) {
        let ns = &op.namespace;
        // What the database assigned, where the answer tells it.
        let exact: Vec<(Key, Known)> = match (&op.write, applied) {
            (
                ColdWrite::Record(write @ RecordWrite::Put { body, .. }),
                Some(Applied::Version(version)),
            ) => {
                vec![(
                    Key::record(ns, write),
                    Known::Record(Some((*version, body.clone()))),
                )]
            }
            (ColdWrite::Record(write @ RecordWrite::Delete { .. }), Some(_)) => {
                vec![(Key::record(ns, write), Known::Record(None))]
            }
            (ColdWrite::Transaction(writes), Some(Applied::Versions(versions))) => writes
                .iter()
                .zip(versions)
                .map(|(write, version)| {
                    let known = match write {
                        RecordWrite::Put { body, .. } => {
                            Known::Record(Some((*version, body.clone())))
                        }
                        RecordWrite::Delete { .. } => Known::Record(None),
                    };
                    (Key::record(ns, write), known)
                })
                .collect(),
            (ColdWrite::AppendHistory { stream, .. }, Some(Applied::Seq(seq))) => {
                vec![(Key::Stream(ns.clone(), stream.clone()), Known::Stream(*seq))]
            }
            (
                ColdWrite::RestoreRecord {
                    collection,
                    key,
                    body,
                    ..
                },
                Some(Applied::Version(version)),
            ) => vec![(
                Key::Record(ns.clone(), collection.clone(), key.clone()),
                Known::Record(Some((*version, body.clone()))),
            )],
            (ColdWrite::RestoreHistory { stream, .. }, Some(Applied::Seq(head))) => {
                vec![(
                    Key::Stream(ns.clone(), stream.clone()),
                    Known::Stream(*head),
                )]
            }
            _ => Vec::new(),
        };
        let mut keys = Key::all(ns, &op.write);
        keys.sort_by_key(Key::lane);
        keys.dedup();
        for key in keys {
            if self.settle(&key, |_| {}).is_none() {
                continue;
            }
            // A transaction's last write to the key is what it left.
            match exact.iter().rev().find(|(k, _)| *k == key) {
                Some((_, known)) => self.keep(key, known.clone()),
                // An op given up on: ask the database.
                None => self.forget(&key),
            }
        }
    }

    fn applied(&mut self, op: &Op<ColdWrite>, applied: &Applied) {
        let ns = &op.namespace;
        match (&op.write, applied) {
            (
                ColdWrite::Record(write @ RecordWrite::Put { body, .. }),
                Applied::Version(version),
            ) => {
                self.keep(
                    Key::record(ns, write),
                    Known::Record(Some((*version, body.clone()))),
                );
            }
            (ColdWrite::Record(write @ RecordWrite::Delete { .. }), _) => {
                self.keep(Key::record(ns, write), Known::Record(None));
            }
            (ColdWrite::Transaction(writes), Applied::Versions(versions)) => {
                for (write, version) in writes.iter().zip(versions) {
                    let known = match write {
                        RecordWrite::Put { body, .. } => {
                            Known::Record(Some((*version, body.clone())))
                        }
                        RecordWrite::Delete { .. } => Known::Record(None),
                    };
                    self.keep(Key::record(ns, write), known);
                }
            }
            (ColdWrite::AppendHistory { stream, .. }, Applied::Seq(seq)) => {
                self.keep(Key::Stream(ns.clone(), stream.clone()), Known::Stream(*seq));
            }
            (
                ColdWrite::RestoreRecord {
                    collection,
                    key,
                    body,
                    ..
                },
                Applied::Version(version),
            ) => self.keep(
                Key::Record(ns.clone(), collection.clone(), key.clone()),
                Known::Record(Some((*version, body.clone()))),
            ),
            (ColdWrite::RestoreHistory { stream, .. }, Applied::Seq(head)) => {
                self.keep(
                    Key::Stream(ns.clone(), stream.clone()),
                    Known::Stream(*head),
                );
            }
            _ => {}
        }
    }
}

/// Cold storage through the outage layer.
pub struct ResilientCold {
    pub(super) core: Arc<Guarded<ColdBackend, ColdView>>,
}

impl ResilientCold {
    async fn remote<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        if !self.core.reads_go_through() {
            return Err(Error::Unavailable(format!(
                "cold storage ({}) is down",
                self.core.backend_name
            )));
        }
        // Only the backend answers this read: it must have what was queued.
        self.core.barrier().await?;
        self.core.call(call).await
    }
}

fn record_of(key: &str, known: &Known) -> Option<Option<Record>> {
    match known {
        Known::Record(record) => Some(record.as_ref().map(|(version, body)| Record {
            key: key.to_owned(),
            version: *version,
            body: body.clone(),
        })),
        Known::Stream(_) => None,
    }
}

#[async_trait]
impl ColdStore for ResilientCold {
    async fn apply(&self, op: &Op<ColdWrite>) -> Result<Applied> {
        self.core.apply(op).await
    }

    async fn get(&self, ns: &Namespace, collection: &str, key: &str) -> Result<Option<Record>> {
        let view_key = Key::Record(ns.clone(), collection.to_owned(), key.to_owned());
        let pending = self.core.view().pending(&view_key).cloned();
        if let Some(known) = pending {
            return record_of(key, &known).ok_or_else(not_known);
        }
        if self.core.reads_go_through() {
            match self
                .core
                .call(self.core.backend.0.get(ns, collection, key))
                .await
            {
                Ok(record) => {
                    let known = Known::Record(record.as_ref().map(|r| (r.version, r.body.clone())));
                    self.core.view().keep(view_key, known);
                    return Ok(record);
                }
                Err(Error::Unavailable(_)) => {}
                Err(error) => return Err(error),
            }
        }
        let copied = self.core.view().copied(&view_key);
        copied
            .and_then(|known| record_of(key, &known))
            .ok_or_else(not_known)
    }

    async fn list(
        &self,
        ns: &Namespace,
        collection: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page> {
        self.remote(
            self.core
                .backend
                .0
                .list(ns, collection, prefix, cursor, limit),
        )
        .await
    }

    async fn query(
        &self,
        ns: &Namespace,
        collection: &str,
        conditions: &[Condition],
        limit: u32,
    ) -> Result<Vec<Record>> {
        self.remote(self.core.backend.0.query(ns, collection, conditions, limit))
            .await
    }

    async fn read_history(
        &self,
        ns: &Namespace,
        stream: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        self.remote(self.core.backend.0.read_history(ns, stream, after, limit))
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

fn not_known() -> Error {
    Error::Unavailable("cold storage is down and the host does not know this record".into())
}
