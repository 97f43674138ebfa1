//! One account's own data, moved between hosts: the records a plugin keeps
//! for the account, in the collections its `hoard:plugin/accounts` export
//! names, keyed by the account's id (`POST /v1/accounts/me/export`, then
//! `/v1/accounts/me/import` on another host, under the account there).
//!
//! An account's dump is a dump like any other, whose header names the
//! account it was made for. An import takes only records of collections
//! the plugins loaded here name, keyed by that account, each once, with a
//! body storage takes: anything else refuses the whole import before a
//! write, and so does, under `fail`, a record that meets other data. Each
//! record goes under the importing account's id at this host's own count
//! of versions (1, or one past the record it replaces: a player's dump
//! does not choose them), with the usual rules (an equal body is left
//! alone), under op ids of the import's own: the same dump imported twice
//! into one account changes nothing the second time, and into two
//! accounts gives each its copy.

use super::dump::{DumpError, DumpReader, DumpWriter, Header};
use super::{DataError, Imported, OnConflict, import_item};
use crate::storage::{self, ColdWrite, Item, Namespace, Storage};

/// A plugin's namespace and the collections it keys by account.
pub type Owned = (Namespace, Vec<String>);

/// Why an account's data did not move.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("this host does not take players' data (accounts.imports is off)")]
    Disabled,
    #[error("the body is not an account's dump: {0}")]
    BadDump(String),
    #[error("{0}")]
    NotMovable(String),
    #[error(
        "this account already has {what} of {namespace} here, with other data: send the import again with ?on_conflict=overwrite to replace it, or ?on_conflict=skip to keep it"
    )]
    Exists { namespace: String, what: String },
    #[error("{0}")]
    Storage(storage::Error),
}

impl From<DataError> for TransferError {
    fn from(error: DataError) -> Self {
        match error {
            DataError::Dump(error) => TransferError::BadDump(error.to_string()),
            DataError::Conflict {
                namespace, what, ..
            } => TransferError::Exists { namespace, what },
            DataError::Storage { source, .. } => TransferError::Storage(source),
            other => TransferError::BadDump(other.to_string()),
        }
    }
}

/// A dump of `account`'s own records in every plugin's account
/// collections.
pub async fn export(
    storage: &Storage,
    owned: &[Owned],
    account: &str,
) -> Result<Vec<u8>, TransferError> {
    let namespaces: Vec<&Owned> = owned.iter().filter(|(_, c)| !c.is_empty()).collect();
    let header = Header {
        hoard_dump: super::dump::FORMAT,
        hoard: env!("CARGO_PKG_VERSION").into(),
        contract: crate::wasm::CONTRACT_VERSION.into(),
        dump_id: super::dump::hex(&rand::random::<[u8; 16]>()),
        created_ms: crate::storage::sled::now_ms(),
        namespaces: namespaces.iter().map(|(ns, _)| ns.to_string()).collect(),
        account: Some(account.to_owned()),
    };
    let written = |e: std::io::Error| TransferError::BadDump(e.to_string());
    let mut writer = DumpWriter::start(Vec::new(), &header).map_err(written)?;
    for (ns, collections) in namespaces {
        for collection in collections {
            let record = storage
                .cold
                .get(ns, collection, account)
                .await
                .map_err(TransferError::Storage)?;
            if let Some(record) = record {
                let item = Item::Record {
                    collection: collection.clone(),
                    key: record.key,
                    version: record.version,
                    body: record.body,
                };
                writer.item(ns, &item).map_err(written)?;
            }
        }
    }
    Ok(writer.finish(Vec::new()).map_err(written)?.1)
}

/// Imports an account's dump under `account` (see the module docs).
pub async fn import(
    storage: &Storage,
    owned: &[Owned],
    account: &str,
    dump: &[u8],
    on_conflict: OnConflict,
) -> Result<Imported, TransferError> {
    let mut reader = DumpReader::open(dump, crate::wasm::CONTRACT_VERSION)
        .map_err(|e| TransferError::BadDump(e.to_string()))?;
    let header = reader.header().clone();
    let Some(source) = header.account.clone() else {
        return Err(TransferError::BadDump(
            "it names no account: make it with POST /v1/accounts/me/export".into(),
        ));
    };
    // The whole dump is read and checked before anything is written.
    let mut reads = Vec::new();
    while let Some(chunk) = reader
        .next_chunk()
        .map_err(|e: DumpError| TransferError::BadDump(e.to_string()))?
    {
        reads.extend(chunk);
    }
    let mut planned = Vec::with_capacity(reads.len());
    let mut seen = std::collections::HashSet::new();
    for mut read in reads {
        let Some((ns, collections)) = owned.iter().find(|(ns, _)| ns.as_str() == read.namespace)
        else {
            return Err(TransferError::NotMovable(format!(
                "the dump holds data of {:?}, a game this host does not serve",
                read.namespace
            )));
        };
        match &mut read.item {
            Item::Record {
                collection,
                key,
                version,
                body,
            } if collections.contains(collection) && *key == source => {
                if !seen.insert((ns.clone(), collection.clone())) {
                    return Err(TransferError::BadDump(format!(
                        "it holds the account's record of {ns} {collection:?} twice"
                    )));
                }
                *key = account.to_owned();
                // The versions are this host's to count: the record goes in
                // at 1, or one past the one it replaces.
                *version = 1;
                let write = ColdWrite::RestoreRecord {
                    collection: collection.clone(),
                    key: key.clone(),
                    version: 1,
                    body: body.clone(),
                    expected_version: 0,
                };
                storage.limits.check_cold(&write).map_err(|error| {
                    TransferError::BadDump(format!("record {collection:?} of {ns}: {error}"))
                })?;
            }
            Item::Record {
                collection, key, ..
            } => {
                return Err(TransferError::NotMovable(format!(
                    "record {collection:?}/{key:?} of {ns} is not the account's own data here: only records keyed by the account, in the collections {ns} names ({collections:?}), move with it"
                )));
            }
            _ => {
                return Err(TransferError::NotMovable(
                    "an account's dump holds only records".into(),
                ));
            }
        }
        planned.push((ns.clone(), read));
    }
    // Under `fail`, a record that meets other data refuses the import
    // before anything is written.
    if on_conflict == OnConflict::Fail {
        for (ns, read) in &planned {
            let Item::Record {
                collection, body, ..
            } = &read.item
            else {
                continue;
            };
            let stored = storage
                .cold
                .get(ns, collection, account)
                .await
                .map_err(TransferError::Storage)?;
            if stored.is_some_and(|record| record.body != *body) {
                return Err(TransferError::Exists {
                    namespace: ns.to_string(),
                    what: format!("record {collection:?}"),
                });
            }
        }
    }
    // A fresh run: its op ids are its own (an import sent again reads
    // first and leaves alone what is already there).
    let scope = format!(
        "{}:{account}:{}",
        header.dump_id,
        super::dump::hex(&rand::random::<[u8; 16]>())
    );
    let mut imported = Imported::default();
    for (ns, read) in planned {
        let outcome = import_item(storage, &scope, &ns, read, on_conflict).await?;
        imported.count(&ns, outcome);
    }
    Ok(imported)
}
