//! Key layout inside sled's trees.
//!
//! Every key starts with length-prefixed parts (namespace, then a name such
//! as a collection), so no key of one namespace or collection can be a prefix
//! of another's, whatever bytes a guest puts in its names (`\0`, `:`, ...).

use crate::storage::Namespace;

/// Builds a tree key from length-prefixed parts and an optional raw tail.
pub(super) struct Key(Vec<u8>);

impl Key {
    pub(super) fn new(ns: &Namespace) -> Self {
        Key(Vec::with_capacity(64)).part(ns.as_str().as_bytes())
    }

    pub(super) fn part(mut self, bytes: &[u8]) -> Self {
        let len = u32::try_from(bytes.len()).expect("limits keep names far below 4 GiB");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// Appends raw bytes; only the last element may be raw.
    pub(super) fn raw(mut self, bytes: &[u8]) -> Vec<u8> {
        self.0.extend_from_slice(bytes);
        self.0
    }

    pub(super) fn done(self) -> Vec<u8> {
        self.0
    }
}

/// Orders leaderboard scores: ascending bytes are descending scores, so a
/// forward scan reads best first, and equal scores sort by member bytes.
pub(super) fn score_order(score: f64) -> [u8; 8] {
    // -0.0 and 0.0 are the same score.
    let score = if score == 0.0 { 0.0 } else { score };
    let bits = score.to_bits();
    // The usual total-order trick: flip negatives entirely, positives' sign.
    let ascending = if bits >> 63 == 1 {
        !bits
    } else {
        bits ^ (1 << 63)
    };
    (!ascending).to_be_bytes()
}

pub(super) fn score_from_order(bytes: [u8; 8]) -> f64 {
    let ascending = !u64::from_be_bytes(bytes);
    let bits = if ascending >> 63 == 1 {
        ascending ^ (1 << 63)
    } else {
        !ascending
    };
    f64::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_order_sorts_descending_and_round_trips() {
        let scores = [f64::MAX, 1e9, 3.5, 1.0, 0.0, -0.5, -7.0, f64::MIN];
        let orders: Vec<_> = scores.iter().map(|s| score_order(*s)).collect();
        assert!(
            orders.windows(2).all(|w| w[0] < w[1]),
            "higher scores must sort first"
        );
        for s in scores {
            assert_eq!(score_from_order(score_order(s)), s);
        }
        assert_eq!(score_order(-0.0), score_order(0.0));
    }

    #[test]
    fn parts_are_prefix_free() {
        let ns = Namespace::plugin("a").unwrap();
        let ab = Key::new(&ns).part(b"a").part(b"b").done();
        let a_b = Key::new(&ns).part(b"a\0\0\0\x01b").done();
        assert!(!ab.starts_with(&a_b) && !a_b.starts_with(&ab));
    }
}
