//! Writes as values: [`Op`], [`HotWrite`], [`ColdWrite`].
//!
//! An op is serializable so that a later layer can queue it durably, replay
//! it after an outage and deduplicate it by [`OpId`].

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// A unique id per write, chosen by whoever creates the op. Applying an op
/// whose id was applied before (within the backend's retention) changes
/// nothing and returns the first result: every backend deduplicates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpId(pub u128);

impl OpId {
    pub fn random() -> Self {
        OpId(rand::random())
    }

    /// An id derived from `parts`: the same parts give the same id, so a
    /// retried action produces the same ids and its writes apply once.
    /// Parts are length-prefixed, so no two lists of parts collide by
    /// concatenation.
    pub fn derived(parts: &[&[u8]]) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"hoard-op-v1");
        for part in parts {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        let digest = hash.finalize();
        OpId(u128::from_be_bytes(
            digest[..16]
                .try_into()
                .expect("a SHA-256 digest has 32 bytes"),
        ))
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
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
    /// Sets a record to exactly `version` (at least 1) and `body`, if it is
    /// at `expected_version` now (0: absent); else a conflict. How an
    /// import brings a record back as it was. Result: [`Applied::Version`],
    /// `version`.
    RestoreRecord {
        collection: String,
        key: String,
        version: u64,
        body: String,
        expected_version: u64,
    },
    /// Sets entry `seq` (at least 1) of a stream, adding or replacing it;
    /// the stream's last seq becomes at least `seq`, so later appends go
    /// after it. How an import brings history back. Result:
    /// [`Applied::Seq`], the stream's last seq after it.
    RestoreHistory {
        stream: String,
        seq: u64,
        body: String,
    },
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
/// its kind (see the variants' docs above). A value, so a backend can keep
/// it beside an op's id and answer a duplicate with the first result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Applied {
    Done,
    Existed(bool),
    Integer(i64),
    Score(f64),
    Version(u64),
    Versions(Vec<u64>),
    Seq(u64),
}

impl Applied {
    /// A short text form, the one Redis and PostgreSQL keep beside an op's
    /// id: a letter for the variant, then its value.
    pub fn encode(&self) -> String {
        match self {
            Applied::Done => "d".into(),
            Applied::Existed(existed) => format!("e{}", u8::from(*existed)),
            Applied::Integer(n) => format!("i{n}"),
            // Bits, not decimal: the score comes back exactly.
            Applied::Score(score) => format!("s{:x}", score.to_bits()),
            Applied::Version(version) => format!("v{version}"),
            Applied::Versions(versions) => {
                let list: Vec<String> = versions.iter().map(u64::to_string).collect();
                format!("w{}", list.join(","))
            }
            Applied::Seq(seq) => format!("q{seq}"),
        }
    }

    /// The inverse of [`Applied::encode`]; `None` for text it did not make.
    pub fn decode(text: &str) -> Option<Applied> {
        let (kind, rest) = text.split_at_checked(1)?;
        Some(match kind {
            "d" if rest.is_empty() => Applied::Done,
            "e" => Applied::Existed(match rest {
                "0" => false,
                "1" => true,
                _ => return None,
            }),
            "i" => Applied::Integer(rest.parse().ok()?),
            "s" => Applied::Score(f64::from_bits(u64::from_str_radix(rest, 16).ok()?)),
            "v" => Applied::Version(rest.parse().ok()?),
            "w" if rest.is_empty() => Applied::Versions(Vec::new()),
            "w" => Applied::Versions(
                rest.split(',')
                    .map(|v| v.parse().ok())
                    .collect::<Option<Vec<u64>>>()?,
            ),
            "q" => Applied::Seq(rest.parse().ok()?),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_parts_do_not_run_together() {
        assert_eq!(
            OpId::derived(&[b"session", b"7"]),
            OpId::derived(&[b"session", b"7"])
        );
        assert_ne!(OpId::derived(&[b"ab", b"c"]), OpId::derived(&[b"a", b"bc"]));
        assert_ne!(OpId::derived(&[b"s", b"1"]), OpId::derived(&[b"s", b"2"]));
    }

    #[test]
    fn results_round_trip_through_their_text() {
        let results = [
            Applied::Done,
            Applied::Existed(true),
            Applied::Existed(false),
            Applied::Integer(-42),
            Applied::Integer(i64::MAX),
            Applied::Score(-0.1),
            Applied::Score(1e300),
            Applied::Version(3),
            Applied::Versions(vec![]),
            Applied::Versions(vec![1, 0, 7]),
            Applied::Seq(9),
        ];
        for result in results {
            assert_eq!(
                Applied::decode(&result.encode()),
                Some(result.clone()),
                "{result:?}"
            );
        }
        for junk in ["", "x1", "e2", "ifoo", "d1", "w1,,2"] {
            assert_eq!(Applied::decode(junk), None, "{junk:?}");
        }
    }
}
