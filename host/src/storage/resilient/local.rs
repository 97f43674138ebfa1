//! What a view knows of keys: the state queued writes will leave, and a
//! bounded local copy of what the backend last said, whose least recently
//! used entry goes first when it holds more than `entries_max` entries or
//! `bytes_max` bytes.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// How many bytes a known state counts for in the local copy.
pub(super) trait Footprint {
    fn footprint(&self) -> usize;
}

/// A view's knowledge: keys with queued writes (the state those writes
/// leave, and how many there are), then the local copy.
pub(super) struct Knowledge<K, V> {
    pending: HashMap<K, (V, u32)>,
    copy: LocalCopy<K, V>,
}

impl<K: Hash + Eq + Clone, V: Clone + Footprint> Knowledge<K, V> {
    pub(super) fn new(entries_max: usize, bytes_max: usize) -> Self {
        Knowledge {
            pending: HashMap::new(),
            copy: LocalCopy::new(entries_max, bytes_max),
        }
    }

    /// What is known of `key`: its queued writes' state, else the copy.
    pub(super) fn known(&mut self, key: &K) -> Option<V> {
        match self.pending.get(key) {
            Some((known, _)) => Some(known.clone()),
            None => self.copy.get(key).cloned(),
        }
    }

    /// `key`'s state, if writes to it are queued.
    pub(super) fn pending(&self, key: &K) -> Option<&V> {
        self.pending.get(key).map(|(known, _)| known)
    }

    /// What the copy holds of `key`, whatever is queued.
    pub(super) fn copied(&mut self, key: &K) -> Option<V> {
        self.copy.get(key).cloned()
    }

    /// One more write to `key` is queued; it leaves `next`.
    pub(super) fn queue(&mut self, key: K, next: V) {
        let entry = self.pending.entry(key).or_insert((next.clone(), 0));
        entry.0 = next;
        entry.1 += 1;
    }

    /// One queued write to `key` has settled; `adjust` updates the state
    /// the others leave. When it was the last, the key leaves the pending
    /// set and its state is returned.
    pub(super) fn settle(&mut self, key: &K, adjust: impl FnOnce(&mut V)) -> Option<V> {
        let (known, count) = self.pending.get_mut(key)?;
        *count -= 1;
        adjust(known);
        if *count > 0 {
            return None;
        }
        self.pending.remove(key).map(|(known, _)| known)
    }

    /// Keeps what the backend said of `key`.
    pub(super) fn keep(&mut self, key: K, known: V) {
        let size = known.footprint();
        self.copy.insert(key, known, size);
    }

    /// Forgets the copy of `key`: the backend must say.
    pub(super) fn forget(&mut self, key: &K) {
        self.copy.remove(key);
    }
}

pub(super) struct LocalCopy<K, V> {
    entries: HashMap<K, (V, u64, usize)>,
    /// Keys by last use: the first is the next to go.
    order: BTreeMap<u64, K>,
    tick: u64,
    bytes: usize,
    entries_max: usize,
    bytes_max: usize,
}

impl<K: Hash + Eq + Clone, V> LocalCopy<K, V> {
    pub(super) fn new(entries_max: usize, bytes_max: usize) -> Self {
        LocalCopy {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            entries_max: entries_max.max(1),
            bytes_max,
        }
    }

    pub(super) fn get(&mut self, key: &K) -> Option<&V> {
        let (_, used, _) = self.entries.get_mut(key)?;
        self.order.remove(used);
        self.tick += 1;
        *used = self.tick;
        self.order.insert(self.tick, key.clone());
        self.entries.get(key).map(|(value, _, _)| value)
    }

    /// Keeps `value` for `key`, counted as `bytes`.
    pub(super) fn insert(&mut self, key: K, value: V, bytes: usize) {
        self.remove(&key);
        if bytes > self.bytes_max {
            return;
        }
        self.tick += 1;
        self.order.insert(self.tick, key.clone());
        self.entries.insert(key, (value, self.tick, bytes));
        self.bytes += bytes;
        while self.entries.len() > self.entries_max || self.bytes > self.bytes_max {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((_, _, size)) = self.entries.remove(&oldest) {
                self.bytes -= size;
            }
        }
    }

    pub(super) fn remove(&mut self, key: &K) {
        if let Some((_, used, size)) = self.entries.remove(key) {
            self.order.remove(&used);
            self.bytes -= size;
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_by_count_and_by_bytes() {
        let mut copy = LocalCopy::new(2, 100);
        copy.insert("a", 1, 10);
        copy.insert("b", 2, 10);
        assert_eq!(copy.get(&"a"), Some(&1));
        copy.insert("c", 3, 10);
        assert_eq!(copy.get(&"b"), None, "b was the least recently used");
        assert_eq!(copy.get(&"a"), Some(&1));
        copy.insert("d", 4, 95);
        assert_eq!(copy.len(), 1, "bytes evict too");
        assert_eq!(copy.get(&"d"), Some(&4));
        copy.insert("huge", 5, 101);
        assert_eq!(
            copy.get(&"huge"),
            None,
            "larger than the whole copy: not kept"
        );
        copy.remove(&"d");
        assert_eq!(copy.len(), 0);
    }
}
