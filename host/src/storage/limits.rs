//! Size limits on what a guest may store, checked before any backend sees a
//! write. Every guest-supplied length is bounded here.

use super::{ColdWrite, Error, HotWrite, RecordWrite, Result};
use serde::{Deserialize, Serialize};

/// The host's size limits. Defaults allow 1 MiB values with room to spare.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Longest key, hash field, leaderboard member, collection or stream name.
    pub key_bytes_max: u64,
    /// Largest value, hash field value, record body or history entry.
    pub value_bytes_max: u64,
    /// Most writes in one cold transaction.
    pub transaction_writes_max: u64,
    /// Most rows one read may return (top-n, list, query, history).
    pub read_rows_max: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            key_bytes_max: 16 * 1024,
            value_bytes_max: 2 * 1024 * 1024,
            transaction_writes_max: 100,
            read_rows_max: 1000,
        }
    }
}

impl Limits {
    pub fn check_key(&self, what: &'static str, key: &str) -> Result<()> {
        check(what, key.len(), self.key_bytes_max)
    }

    pub fn check_value(&self, value_len: usize) -> Result<()> {
        check("value-bytes", value_len, self.value_bytes_max)
    }

    /// Checks a requested row count: 1 to `read_rows_max`.
    pub fn check_rows(&self, n: u32) -> Result<()> {
        if n == 0 {
            return Err(Error::invalid("limit", "must be at least 1"));
        }
        check("read-rows", n as usize, self.read_rows_max)
    }

    pub fn check_hot(&self, write: &HotWrite) -> Result<()> {
        match write {
            HotWrite::Set { key, value, .. } => {
                self.check_key("key-bytes", key)?;
                self.check_value(value.len())
            }
            HotWrite::Delete { key } | HotWrite::Incr { key, .. } => {
                self.check_key("key-bytes", key)
            }
            HotWrite::HashSet { key, field, value } => {
                self.check_key("key-bytes", key)?;
                self.check_key("field-bytes", field)?;
                self.check_value(value.len())
            }
            HotWrite::LeaderboardSet {
                board,
                member,
                score: number,
            }
            | HotWrite::LeaderboardIncr {
                board,
                member,
                delta: number,
            } => {
                self.check_key("key-bytes", board)?;
                self.check_key("member-bytes", member)?;
                if number.is_finite() {
                    Ok(())
                } else {
                    Err(Error::invalid("score", "must be a finite number"))
                }
            }
            HotWrite::Publish { channel, message } => {
                self.check_key("channel-bytes", channel)?;
                self.check_value(message.len())
            }
        }
    }

    pub fn check_cold(&self, write: &ColdWrite) -> Result<()> {
        match write {
            ColdWrite::Record(record) => self.check_record(record),
            ColdWrite::Transaction(writes) => {
                check(
                    "transaction-writes",
                    writes.len(),
                    self.transaction_writes_max,
                )?;
                writes.iter().try_for_each(|w| self.check_record(w))
            }
            ColdWrite::AppendHistory { stream, body } => {
                self.check_key("stream-bytes", stream)?;
                self.check_value(body.len())?;
                check_json("body", body)
            }
            ColdWrite::RestoreRecord {
                collection,
                key,
                version,
                body,
                ..
            } => {
                self.check_key("collection-bytes", collection)?;
                self.check_key("key-bytes", key)?;
                if *version == 0 || *version > i64::MAX as u64 {
                    return Err(Error::invalid("version", "must be 1 to 2^63 - 1"));
                }
                self.check_value(body.len())?;
                check_json("body", body)
            }
            ColdWrite::RestoreHistory { stream, seq, body } => {
                self.check_key("stream-bytes", stream)?;
                if *seq == 0 || *seq > i64::MAX as u64 {
                    return Err(Error::invalid("seq", "must be 1 to 2^63 - 1"));
                }
                self.check_value(body.len())?;
                check_json("body", body)
            }
        }
    }

    fn check_record(&self, write: &RecordWrite) -> Result<()> {
        self.check_key("collection-bytes", write.collection())?;
        self.check_key("key-bytes", write.key())?;
        if let RecordWrite::Put { body, .. } = write {
            self.check_value(body.len())?;
            check_json("body", body)?;
        }
        Ok(())
    }
}

fn check(what: &'static str, actual: usize, max: u64) -> Result<()> {
    let actual = actual as u64;
    if actual > max {
        Err(Error::LimitExceeded { what, max, actual })
    } else {
        Ok(())
    }
}

/// Record bodies are JSON documents in every backend (JSONB in Postgres), so
/// a body that is not JSON is refused before it reaches one.
fn check_json(field: &'static str, text: &str) -> Result<()> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| Error::invalid(field, format!("not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_keys_values_and_bad_numbers_are_refused() {
        let limits = Limits {
            key_bytes_max: 4,
            value_bytes_max: 8,
            ..Limits::default()
        };
        let set = |key: &str, len: usize| HotWrite::Set {
            key: key.into(),
            value: vec![0; len],
            ttl_ms: None,
        };
        assert_eq!(limits.check_hot(&set("abcd", 8)), Ok(()));
        assert!(matches!(
            limits.check_hot(&set("abcde", 1)),
            Err(Error::LimitExceeded {
                what: "key-bytes",
                max: 4,
                actual: 5
            })
        ));
        assert!(matches!(
            limits.check_hot(&set("a", 9)),
            Err(Error::LimitExceeded {
                what: "value-bytes",
                ..
            })
        ));
        let nan = HotWrite::LeaderboardSet {
            board: "b".into(),
            member: "m".into(),
            score: f64::NAN,
        };
        assert!(matches!(
            limits.check_hot(&nan),
            Err(Error::Invalid { field: "score", .. })
        ));
        let not_json = ColdWrite::AppendHistory {
            stream: "s".into(),
            body: "{".into(),
        };
        assert!(matches!(
            limits.check_cold(&not_json),
            Err(Error::Invalid { field: "body", .. })
        ));
        assert_eq!(
            limits.check_rows(0),
            Err(Error::invalid("limit", "must be at least 1"))
        );
    }
}
