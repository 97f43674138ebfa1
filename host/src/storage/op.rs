//! Writes as values: [`Op`], [`HotWrite`], [`ColdWrite`].
//!
//! An op is serializable so that a later layer can queue it durably, replay
//! it after an outage and deduplicate it by [`OpId`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// A unique id per write, chosen by whoever creates the op. Replaying an op
/// with the same id must not apply it twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpId(pub u128);

impl OpId {
    pub fn random() -> Self {
        OpId(rand::random())
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Whose data an op touches: a plugin's name, or the host's own `_hoard`.
/// Every key lives inside exactly one namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Namespace(String);

#[derive(Debug, thiserror::Error)]
#[error(
    "namespace {0:?} is not valid: use 1 to 64 characters of a-z, 0-9 and '-', starting with a letter"
)]
pub struct NamespaceError(pub String);

impl Namespace {
    /// The host's own namespace (sessions, tokens). No plugin can be named so:
    /// plugin names start with a letter.
    pub fn host() -> Self {
        Namespace("_hoard".to_owned())
    }

    /// A plugin's namespace. Names are restricted so they are safe in every
    /// backend's key syntax (Redis hash tags, Postgres text) without escaping.
    pub fn plugin(name: &str) -> Result<Self, NamespaceError> {
        let valid = (1..=64).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(Namespace(name.to_owned()))
        } else {
            Err(NamespaceError(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One write, as a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op<W> {
    pub id: OpId,
    pub namespace: Namespace,
    pub write: W,
}

impl<W> Op<W> {
    pub fn new(namespace: Namespace, write: W) -> Self {
        Op {
            id: OpId::random(),
            namespace,
            write,
        }
    }
}

/// A write to hot storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HotWrite {
    /// Result: [`Applied::Done`].
    Set {
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    /// Result: [`Applied::Existed`].
    Delete { key: String },
    /// Result: [`Applied::Integer`], the new value.
    Incr { key: String, delta: i64 },
    /// Result: [`Applied::Done`].
    HashSet {
        key: String,
        field: String,
        value: Vec<u8>,
    },
    /// Result: [`Applied::Done`].
    LeaderboardSet {
        board: String,
        member: String,
        score: f64,
    },
    /// Result: [`Applied::Score`], the new score.
    LeaderboardIncr {
        board: String,
        member: String,
        delta: f64,
    },
    /// Result: [`Applied::Done`]. Not stored; delivered to current listeners.
    Publish { channel: String, message: Vec<u8> },
}

/// A write to cold storage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColdWrite {
    /// One record write. Result: [`Applied::Version`] for a put,
    /// [`Applied::Existed`] for a delete.
    Record(RecordWrite),
    /// All or nothing. Result: [`Applied::Versions`], 0 for each delete.
    Transaction(Vec<RecordWrite>),
    /// Result: [`Applied::Seq`].
    AppendHistory { stream: String, body: String },
}

/// A put or delete of one record, alone or inside a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordWrite {
    Put {
        collection: String,
        key: String,
        body: String,
        expected_version: Option<u64>,
    },
    Delete {
        collection: String,
        key: String,
        expected_version: Option<u64>,
    },
}

impl RecordWrite {
    pub fn collection(&self) -> &str {
        match self {
            RecordWrite::Put { collection, .. } | RecordWrite::Delete { collection, .. } => {
                collection
            }
        }
    }

    pub fn key(&self) -> &str {
        match self {
            RecordWrite::Put { key, .. } | RecordWrite::Delete { key, .. } => key,
        }
    }

    pub fn expected_version(&self) -> Option<u64> {
        match self {
            RecordWrite::Put {
                expected_version, ..
            }
            | RecordWrite::Delete {
                expected_version, ..
            } => *expected_version,
        }
    }
}

/// What an applied write returned. Which variant a write yields is fixed by
/// its kind (see the variants' docs above).
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    Done,
    Existed(bool),
    Integer(i64),
    Score(f64),
    Version(u64),
    Versions(Vec<u64>),
    Seq(u64),
}
