//! Export and import of plugins' data: backups, and moving data between
//! offline (sled) and service mode (Redis + PostgreSQL).
//!
//! A dump ([`dump`]) is a stream of [`Item`]s read through the storage
//! traits' `export`. Every item is one write, so an import is a stream of
//! ops through the same traits as a plugin's writes: the same limits, the
//! same backends, the outage layer included. Each item is read where it
//! goes before it is written, and an item already stored as the dump has
//! it is left alone whatever the policy: so running an import again
//! (after a crash halfway, or twice by mistake) changes nothing that the
//! first run wrote. Op ids derive from the dump's id, the run and the
//! item's place, so within a run every backend applies each write once.
//!
//! What an item meets decides what happens to it:
//! - nothing there: it is written (a record at its own version, a history
//!   entry at its own seq, a value with the time it had left to live);
//! - the same thing there: nothing;
//! - something else there: [`OnConflict`] decides: `skip` keeps what is
//!   there, `overwrite` writes the item (a record then goes to the dump's
//!   version or one past the stored one, whichever is higher, so versions
//!   never go back), `fail` stops the import at that item; what came before
//!   it stays (and some of the few items written beside it may be in), and
//!   a rerun with another policy finishes it.
//!
//! The host's own namespace (`_hoard`: accounts, sessions) is imported
//! only when allowed (`--include-host`); otherwise its items are left out
//! and counted.

pub mod account;
pub mod backup;
pub mod cli;
pub mod dump;

use crate::storage::{self, ColdWrite, ExportView, HotWrite, Item, Namespace, Op, OpId, Storage};
use dump::{DumpError, DumpReader, DumpWriter, Header, Read, View};
use futures_util::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};

/// Items written at once.
const IMPORT_CONCURRENCY: usize = 128;

/// What an import does with an item that meets other data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnConflict {
    Skip,
    Overwrite,
    Fail,
}

/// Why an export or import stopped.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0}")]
    Dump(#[from] DumpError),
    #[error("cannot write the dump: {0}")]
    Write(std::io::Error),
    #[error("{namespace}: {what}: {source}")]
    Storage {
        namespace: String,
        what: String,
        source: storage::Error,
    },
    #[error(
        "the dump's namespace {0:?} would go to {1:?}, which no configured plugin owns: nothing was imported (add the plugin to the config, or map it with --namespace-map {0}=NAME)"
    )]
    UnknownNamespace(String, String),
    #[error("--namespace-map {0}: {1}")]
    BadMap(String, String),
    #[error(
        "{namespace}: {what} is already there with other data (item {index} of the dump); the import stopped there: the items before it are in, and some of the next few may be (up to 128 are written at once). Run it again with --on-conflict skip to keep what is there, or overwrite to replace it"
    )]
    Conflict {
        namespace: String,
        what: String,
        index: u64,
    },
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    pub items: u64,
    /// Items per namespace.
    pub per_namespace: BTreeMap<String, u64>,
    pub views: Vec<View>,
}

/// Writes a dump of `namespaces` (hot, then cold, per namespace) to `out`.
pub async fn export<W: Write + Send>(
    storage: &Storage,
    namespaces: &[Namespace],
    out: W,
) -> Result<Exported, DataError> {
    let header = Header {
        hoard_dump: dump::FORMAT,
        hoard: env!("CARGO_PKG_VERSION").into(),
        contract: crate::wasm::CONTRACT_VERSION.into(),
        dump_id: dump::hex(&rand::random::<[u8; 16]>()),
        created_ms: crate::storage::sled::now_ms(),
        namespaces: namespaces.iter().map(Namespace::to_string).collect(),
        account: None,
    };
    let mut writer = DumpWriter::start(out, &header).map_err(DataError::Write)?;
    let mut views = Vec::new();
    let mut per_namespace = BTreeMap::new();
    for ns in namespaces {
        let mut count = 0u64;
        for capability in ["hot", "cold"] {
            // The sink keeps a write error aside and stops the export with
            // an error of the storage's kind.
            let mut failed: Option<std::io::Error> = None;
            let mut sink = |item: Item| -> storage::Result<()> {
                match writer.item(ns, &item) {
                    Ok(()) => {
                        count += 1;
                        Ok(())
                    }
                    Err(error) => {
                        failed = Some(error);
                        Err(storage::Error::Unavailable(
                            "the dump could not be written".into(),
                        ))
                    }
                }
            };
            let exported = match capability {
                "hot" => storage.hot.export(ns, &mut sink).await,
                _ => storage.cold.export(ns, &mut sink).await,
            };
            if let Some(error) = failed {
                return Err(DataError::Write(error));
            }
            let view: ExportView = exported.map_err(|source| DataError::Storage {
                namespace: ns.to_string(),
                what: format!("exporting {capability} storage"),
                source,
            })?;
            views.push(View::new(ns, capability, &view));
        }
        per_namespace.insert(ns.to_string(), count);
    }
    let (end, _) = writer.finish(views).map_err(DataError::Write)?;
    Ok(Exported {
        items: end.items,
        per_namespace,
        views: end.views,
    })
}

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub on_conflict: OnConflict,
    /// Dump namespace to the namespace it goes to.
    pub namespace_map: HashMap<String, Namespace>,
    /// The namespaces an import may write (after mapping): the configured
    /// plugins', and the host's own with `--include-host`. `None`: any.
    pub allowed: Option<Vec<Namespace>>,
    /// Whether values keep the time to live the dump gives them (else they
    /// are written to stay).
    pub keep_ttl: bool,
}

/// Parses `A=B` pairs of `--namespace-map`.
pub fn namespace_map(pairs: &[String]) -> Result<HashMap<String, Namespace>, DataError> {
    let mut map = HashMap::new();
    for pair in pairs {
        let (from, to) = pair
            .split_once('=')
            .ok_or_else(|| DataError::BadMap(pair.clone(), "write it FROM=TO".into()))?;
        let to = Namespace::plugin(to)
            .map_err(|error| DataError::BadMap(pair.clone(), error.to_string()))?;
        if map.insert(from.to_owned(), to).is_some() {
            return Err(DataError::BadMap(
                pair.clone(),
                format!("{from} is mapped twice"),
            ));
        }
    }
    Ok(map)
}

/// What an import did, per item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Items written.
    pub written: u64,
    /// Items already stored as the dump has them.
    pub unchanged: u64,
    /// Items that met other data and kept it (`--on-conflict skip`).
    pub skipped: u64,
    /// Items read, per target namespace.
    pub per_namespace: BTreeMap<String, u64>,
    /// Items of the host's own namespace left out (not allowed).
    pub left_out: u64,
    /// How consistent the export that wrote the dump was.
    pub views: Vec<View>,
}

/// What became of one item.
pub(crate) enum Outcome {
    Written,
    Unchanged,
    Skipped,
}

impl Imported {
    /// Counts what became of one item of `ns`.
    pub(crate) fn count(&mut self, ns: &Namespace, outcome: Outcome) {
        *self.per_namespace.entry(ns.to_string()).or_default() += 1;
        match outcome {
            Outcome::Written => self.written += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Skipped => self.skipped += 1,
        }
    }
}

/// Imports a dump from `input` (see the module docs).
pub async fn import<R: BufRead>(
    storage: &Storage,
    input: R,
    options: &ImportOptions,
) -> Result<Imported, DataError> {
    let reader = DumpReader::open(input, crate::wasm::CONTRACT_VERSION)?;
    // Every namespace is checked before anything is written. `None`: the
    // host's own, left out.
    let mut targets: HashMap<String, Option<Namespace>> = HashMap::new();
    for name in &reader.header().namespaces {
        let unknown = |target: &str| DataError::UnknownNamespace(name.clone(), target.to_owned());
        let target = match options.namespace_map.get(name) {
            Some(target) => target.clone(),
            None if name == Namespace::host().as_str() => Namespace::host(),
            None => Namespace::plugin(name).map_err(|_| unknown(name))?,
        };
        let allowed = options
            .allowed
            .as_ref()
            .is_none_or(|allowed| allowed.contains(&target));
        let target = match (allowed, target == Namespace::host()) {
            (true, _) => Some(target),
            (false, true) => None,
            (false, false) => return Err(unknown(target.as_str())),
        };
        targets.insert(name.clone(), target);
    }
    // Op ids derive from the dump and this run: within the run each write
    // applies once; a later run reads first, and leaves alone what is
    // already as the dump has it (a run that finds an item absent again,
    // after something deleted it, writes it again).
    let dump_id = format!(
        "{}:{}",
        reader.header().dump_id,
        dump::hex(&rand::random::<[u8; 16]>())
    );
    // Items flow a checked chunk at a time into one window of writes in
    // flight, which does not drain at each chunk's end: a backend that
    // commits writers together (sled's group commit) gets full groups.
    let end = std::cell::RefCell::new(None);
    let end_line = &end;
    let items = futures_util::stream::try_unfold(reader, move |mut reader| async move {
        let chunk = reader.next_chunk().map_err(DataError::Dump)?;
        // Tests slow an import down here to kill it halfway
        // (`import-after-chunk=sleep(300)`).
        fail::fail_point!("import-after-chunk");
        match chunk {
            Some(chunk) => Ok::<_, DataError>(Some((chunk, reader))),
            None => {
                end_line.replace(reader.end().cloned());
                Ok(None)
            }
        }
    })
    .map_ok(|chunk| futures_util::stream::iter(chunk.into_iter().map(Ok::<_, DataError>)))
    .try_flatten();
    let mut outcomes = std::pin::pin!(
        items
            .map(|read: Result<Read, DataError>| {
                let dump_id = &dump_id;
                let targets = &targets;
                async move {
                    let mut read = read?;
                    let Some(ns) = targets[&read.namespace].clone() else {
                        return Ok::<_, DataError>(None);
                    };
                    if !options.keep_ttl
                        && let Item::Value { ttl_ms, .. } = &mut read.item
                    {
                        *ttl_ms = None;
                    }
                    let outcome =
                        import_item(storage, dump_id, &ns, read, options.on_conflict).await?;
                    Ok(Some((ns, outcome)))
                }
            })
            .buffered(IMPORT_CONCURRENCY)
    );
    let mut imported = Imported::default();
    while let Some(outcome) = outcomes.next().await {
        match outcome? {
            Some((ns, outcome)) => imported.count(&ns, outcome),
            None => imported.left_out += 1,
        }
    }
    imported.views = end
        .borrow_mut()
        .take()
        .map(|end| end.views)
        .unwrap_or_default();
    Ok(imported)
}

/// Writes one item as the policy says. Its op id derives from `scope`
/// (the dump's id and the run, and for an account's data the account it
/// goes to), the namespace and the item's index.
pub(crate) async fn import_item(
    storage: &Storage,
    scope: &str,
    ns: &Namespace,
    read: Read,
    on_conflict: OnConflict,
) -> Result<Outcome, DataError> {
    let id = OpId::derived(&[
        b"import",
        scope.as_bytes(),
        ns.as_str().as_bytes(),
        &read.index.to_be_bytes(),
    ]);
    let failed = |what: String| {
        let namespace = ns.to_string();
        move |source: storage::Error| DataError::Storage {
            namespace,
            what,
            source,
        }
    };
    let decide = |what: String, equal: bool, exists: bool| -> Result<Option<Outcome>, DataError> {
        match (equal, exists, on_conflict) {
            (true, _, _) => Ok(Some(Outcome::Unchanged)),
            (false, false, _) | (false, true, OnConflict::Overwrite) => Ok(None),
            (false, true, OnConflict::Skip) => Ok(Some(Outcome::Skipped)),
            (false, true, OnConflict::Fail) => Err(DataError::Conflict {
                namespace: ns.to_string(),
                what,
                index: read.index,
            }),
        }
    };
    let hot = |write: HotWrite, what: String| async move {
        storage
            .limits
            .check_hot(&write)
            .map_err(failed(what.clone()))?;
        let op = Op {
            id,
            namespace: ns.clone(),
            write,
        };
        storage.hot.apply(&op).await.map_err(failed(what))?;
        Ok::<_, DataError>(Outcome::Written)
    };
    // A cold write within the limits; the caller maps the error.
    let cold = |write: ColdWrite| async move {
        storage.limits.check_cold(&write)?;
        let op = Op {
            id,
            namespace: ns.clone(),
            write,
        };
        storage.cold.apply(&op).await
    };
    match read.item {
        Item::Value { key, value, ttl_ms } => {
            let what = format!("hot value {key:?}");
            let stored = storage
                .hot
                .get(ns, &key)
                .await
                .map_err(failed(what.clone()))?;
            if let Some(outcome) = decide(
                what.clone(),
                stored.as_ref() == Some(&value),
                stored.is_some(),
            )? {
                return Ok(outcome);
            }
            let ttl_ms = ttl_ms.map(|ttl| ttl.max(1));
            hot(HotWrite::Set { key, value, ttl_ms }, what).await
        }
        Item::HashField { key, field, value } => {
            let what = format!("field {field:?} of hash {key:?}");
            let stored = storage
                .hot
                .hash_get(ns, &key, &field)
                .await
                .map_err(failed(what.clone()))?;
            if let Some(outcome) = decide(
                what.clone(),
                stored.as_ref() == Some(&value),
                stored.is_some(),
            )? {
                return Ok(outcome);
            }
            hot(HotWrite::HashSet { key, field, value }, what).await
        }
        Item::Score {
            board,
            member,
            score,
        } => {
            let what = format!("{member:?} on leaderboard {board:?}");
            let stored = storage
                .hot
                .leaderboard_score(ns, &board, &member)
                .await
                .map_err(failed(what.clone()))?;
            let equal = stored == Some(score);
            if let Some(outcome) = decide(what.clone(), equal, stored.is_some())? {
                return Ok(outcome);
            }
            let write = HotWrite::LeaderboardSet {
                board,
                member,
                score,
            };
            hot(write, what).await
        }
        Item::Record {
            collection,
            key,
            version,
            body,
        } => {
            let what = format!("record {collection:?}/{key:?}");
            // A writer between the read and the write makes it a conflict:
            // read again, and decide again.
            for _ in 0..3 {
                let stored = storage
                    .cold
                    .get(ns, &collection, &key)
                    .await
                    .map_err(failed(what.clone()))?;
                // The dump's body at its version or a later one (an
                // earlier overwrite moved it past a stored version) is
                // the dump's record.
                let equal = stored
                    .as_ref()
                    .is_some_and(|r| r.version >= version && r.body == body);
                if let Some(outcome) = decide(what.clone(), equal, stored.is_some())? {
                    return Ok(outcome);
                }
                let current = stored.as_ref().map_or(0, |record| record.version);
                let write = ColdWrite::RestoreRecord {
                    collection: collection.clone(),
                    key: key.clone(),
                    version: if current == 0 {
                        version
                    } else {
                        version.max(current.saturating_add(1))
                    },
                    body: body.clone(),
                    expected_version: current,
                };
                match cold(write).await {
                    Ok(_) => return Ok(Outcome::Written),
                    Err(storage::Error::Conflict { .. }) => continue,
                    Err(error) => return Err(failed(what)(error)),
                }
            }
            Err(failed(what)(storage::Error::Unavailable(
                "the record kept changing during the import".into(),
            )))
        }
        Item::History { stream, seq, body } => {
            let what = format!("entry {seq} of history {stream:?}");
            let stored = match storage
                .cold
                .read_history(ns, &stream, seq.saturating_sub(1), 1)
                .await
            {
                Ok(entries) => entries.into_iter().find(|entry| entry.seq == seq),
                Err(storage::Error::NotFound) => None,
                Err(error) => return Err(failed(what)(error)),
            };
            let equal = stored.as_ref().is_some_and(|entry| entry.body == body);
            if let Some(outcome) = decide(what.clone(), equal, stored.is_some())? {
                return Ok(outcome);
            }
            let write = ColdWrite::RestoreHistory { stream, seq, body };
            cold(write).await.map_err(failed(what))?;
            Ok(Outcome::Written)
        }
    }
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub header: Header,
    pub items: u64,
    pub views: Vec<View>,
}

/// Checks a dump whole: its header, every chunk's checksum and its end,
/// and that it restores into an empty temporary offline store: imported
/// once, every item is written; imported again, every item is found there
/// as the dump has it; and the store holds no more items than the dump.
/// Values are restored without their time to live, so none expires
/// between the two imports. `open` opens the dump (it is read twice).
pub async fn verify<R: BufRead>(
    open: impl Fn() -> std::io::Result<R>,
) -> Result<Verified, DataError> {
    let store =
        crate::storage::sled::SledStore::open_temporary().map_err(|error| DataError::Storage {
            namespace: "(temporary)".into(),
            what: "opening an empty offline store".into(),
            source: storage::Error::Unavailable(error.to_string()),
        })?;
    let storage = Storage {
        hot: store.clone(),
        cold: store,
        limits: storage::Limits::default(),
    };
    let options = ImportOptions {
        on_conflict: OnConflict::Fail,
        namespace_map: HashMap::new(),
        allowed: None,
        keep_ttl: false,
    };
    let reopen = || open().map_err(|error| DataError::Dump(DumpError::Io(error)));
    let first = import(&storage, reopen()?, &options).await?;
    let second = import(&storage, reopen()?, &options).await?;
    let reader = DumpReader::open(reopen()?, crate::wasm::CONTRACT_VERSION)?;
    let header = reader.header().clone();
    let items = first.written + first.unchanged + first.skipped;
    let mismatch = |reason: String| DataError::Storage {
        namespace: "(temporary)".into(),
        what: "restoring the dump into an empty offline store".into(),
        source: storage::Error::Invalid {
            field: "dump",
            reason,
        },
    };
    if first.written != items || second.unchanged != items {
        return Err(mismatch(format!(
            "of its {items} items, {} were written and {} then read back as they are in the dump: it names some item twice",
            first.written, second.unchanged
        )));
    }
    let namespaces: Vec<Namespace> = header
        .namespaces
        .iter()
        .map(|name| namespace(name))
        .collect();
    let exported = export(&storage, &namespaces, std::io::sink()).await?;
    if exported.items != items {
        return Err(mismatch(format!(
            "the store holds {} items after importing the dump's {items}",
            exported.items
        )));
    }
    Ok(Verified {
        header,
        items,
        views: first.views,
    })
}

/// A dump's namespace name as a namespace: the host's own, or a plugin's.
fn namespace(name: &str) -> Namespace {
    if name == Namespace::host().as_str() {
        Namespace::host()
    } else {
        Namespace::plugin(name).unwrap_or_else(|_| Namespace::host())
    }
}
