//! Hot values that carry the marks of the ops that wrote them.
//!
//! A `set`, `delete` or `incr` is one compare-and-swap of one key, so the
//! op's mark rides in the value it writes: no transaction, no second tree,
//! and nothing to keep in step after a crash. A value keeps the marks of
//! the last `MARKS_MAX` ops on its key for `dedupe_retention_ms`, so an op
//! replayed after later ones on the same key is still found. A delete
//! leaves a tombstone (reads see nothing) that keeps the marks until the
//! sweeper removes it after the retention.
//!
//! Layout: expires_at_ms (u64, 0 = never; for a tombstone, when it may be
//! swept) ++ flags (u8: bit 0 = tombstone) ++ mark count (u8) ++ marks ++
//! the value's bytes. A mark: op id (16) ++ applied_at_ms (u64) ++ result
//! length (u8) ++ the encoded result.

use crate::storage::{Applied, Error, Result};

/// The most marks a value keeps.
pub(super) const MARKS_MAX: usize = 8;

const TOMBSTONE: u8 = 1;

/// One op that wrote the value, and what it answered.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Mark {
    pub id: [u8; 16],
    pub at_ms: u64,
    pub result: Applied,
}

/// A stored hot value, decoded.
#[derive(Debug, PartialEq)]
pub(super) struct Stamped<'a> {
    pub expires_at: u64,
    pub deleted: bool,
    pub marks: Vec<Mark>,
    pub bytes: &'a [u8],
}

fn corrupt() -> Error {
    Error::Unavailable("sled: a stored hot value is malformed".into())
}

impl<'a> Stamped<'a> {
    pub(super) fn decode(stored: &'a [u8]) -> Result<Stamped<'a>> {
        let take = |at: usize, n: usize| stored.get(at..at + n).ok_or_else(corrupt);
        let expires_at = u64::from_be_bytes(take(0, 8)?.try_into().expect("8 bytes"));
        let (flags, count) = (take(8, 1)?[0], take(9, 1)?[0]);
        let mut at = 10;
        let mut marks = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let id: [u8; 16] = take(at, 16)?.try_into().expect("16 bytes");
            let at_ms = u64::from_be_bytes(take(at + 16, 8)?.try_into().expect("8 bytes"));
            let length = take(at + 24, 1)?[0] as usize;
            let text = std::str::from_utf8(take(at + 25, length)?).map_err(|_| corrupt())?;
            let result = Applied::decode(text).ok_or_else(corrupt)?;
            marks.push(Mark { id, at_ms, result });
            at += 25 + length;
        }
        Ok(Stamped {
            expires_at,
            deleted: flags & TOMBSTONE != 0,
            marks,
            bytes: &stored[at..],
        })
    }

    /// The value as reads see it: `None` if deleted or expired at `now`.
    pub(super) fn live(&self, now: u64) -> Option<&'a [u8]> {
        let expired = self.expires_at != 0 && self.expires_at <= now;
        (!self.deleted && !expired).then_some(self.bytes)
    }

    /// What op `id` answered, if it wrote this value.
    pub(super) fn answered(&self, id: [u8; 16]) -> Option<Applied> {
        self.marks
            .iter()
            .find(|mark| mark.id == id)
            .map(|mark| mark.result.clone())
    }
}

/// Encodes a value (or, with `deleted`, a tombstone) whose marks are
/// `earlier`'s still within `retention_ms` of `mark`, then `mark`; the
/// oldest go first beyond `MARKS_MAX`.
pub(super) fn encode(
    expires_at: u64,
    deleted: bool,
    earlier: &[Mark],
    mark: Mark,
    retention_ms: u64,
    bytes: &[u8],
) -> Vec<u8> {
    let kept: Vec<&Mark> = earlier
        .iter()
        .filter(|m| m.at_ms.saturating_add(retention_ms) > mark.at_ms)
        .collect();
    let kept = &kept[kept.len().saturating_sub(MARKS_MAX - 1)..];
    let mut stored = Vec::with_capacity(10 + (kept.len() + 1) * 40 + bytes.len());
    stored.extend_from_slice(&expires_at.to_be_bytes());
    stored.push(if deleted { TOMBSTONE } else { 0 });
    stored.push((kept.len() + 1) as u8);
    for m in kept.iter().copied().chain(std::iter::once(&mark)) {
        let result = m.result.encode();
        debug_assert!(result.len() <= u8::MAX as usize, "a result's text is short");
        stored.extend_from_slice(&m.id);
        stored.extend_from_slice(&m.at_ms.to_be_bytes());
        stored.push(result.len() as u8);
        stored.extend_from_slice(result.as_bytes());
    }
    stored.extend_from_slice(bytes);
    stored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(n: u8, at_ms: u64) -> Mark {
        Mark {
            id: [n; 16],
            at_ms,
            result: Applied::Integer(n as i64),
        }
    }

    #[test]
    fn values_round_trip_with_their_marks_and_forget_old_ones() {
        let stored = encode(77, false, &[], mark(1, 10), 1000, b"hello");
        let value = Stamped::decode(&stored).unwrap();
        assert_eq!(
            (value.expires_at, value.deleted, value.bytes),
            (77, false, &b"hello"[..])
        );
        assert_eq!(value.answered([1; 16]), Some(Applied::Integer(1)));
        assert_eq!(value.live(50), Some(&b"hello"[..]));
        assert_eq!(value.live(77), None, "expired");
        // Marks past the retention go; at most MARKS_MAX stay.
        let marks: Vec<Mark> = (0..20).map(|n| mark(n, 100 + n as u64)).collect();
        let stored = encode(0, true, &marks, mark(99, 1100), 1000, b"");
        let value = Stamped::decode(&stored).unwrap();
        assert!(value.deleted && value.live(0).is_none());
        assert_eq!(value.marks.len(), MARKS_MAX);
        assert_eq!(value.marks.last().unwrap().id, [99; 16]);
        assert!(value.answered([0; 16]).is_none(), "outside the retention");
        assert!(value.answered([19; 16]).is_some());
        assert!(Stamped::decode(&stored[..12]).is_err());
    }
}
