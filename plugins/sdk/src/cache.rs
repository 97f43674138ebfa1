//! Cache-aside: cold records read through hot storage. A read looks in hot
//! first (a hit); on a miss it reads cold and keeps a copy in hot for a
//! while. Meant for reference data many calls read and few write: item
//! and monster templates, a game system's rules, a player's profile.
//!
//! Every read counts a hit or a miss on two hot counters, so the hit rate
//! is known across instances and calls ([`Cache::stats`]); that is one
//! hot increment per read, on top of the read.

use crate::{Counter, GameError, Key, Records, Versioned};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Hot keys the SDK keeps for a cache start with this.
const PREFIX: &str = "hoard-sdk:cache:";

/// The records of one cold collection, cached in hot for `ttl_ms`.
pub struct Cache<T> {
    records: Records<T>,
    ttl_ms: u64,
}

/// How a cache's reads went, since its counters were first written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

impl CacheStats {
    /// Hits over reads (0 before the first read).
    pub fn hit_rate(&self) -> f64 {
        match self.hits + self.misses {
            0 => 0.0,
            reads => self.hits as f64 / reads as f64,
        }
    }
}

impl<T: Serialize + DeserializeOwned> Cache<T> {
    /// Collection `collection`, each record kept in hot for `ttl_ms` after a
    /// miss reads it.
    pub fn new(collection: &str, ttl_ms: u64) -> Self {
        Cache {
            records: Records::named(collection),
            ttl_ms,
        }
    }

    /// The cold collection behind the cache.
    pub fn records(&self) -> &Records<T> {
        &self.records
    }

    fn copy(&self, key: &str) -> Key<T> {
        Key::named(format!("{PREFIX}{}:{key}", self.records.collection())).ttl(self.ttl_ms)
    }

    fn counter(&self, what: &str) -> Counter {
        Counter::named(format!("{PREFIX}{}:{what}", self.records.collection()))
    }

    /// Record `key`: from hot if a copy is there, else from cold (and then
    /// copied to hot). `None` if the record does not exist; absence is not
    /// cached.
    pub fn get(&self, key: &str) -> Result<Option<T>, GameError> {
        let copy = self.copy(key);
        if let Some(value) = copy.get()? {
            self.counter("hits").add(1)?;
            return Ok(Some(value));
        }
        self.counter("misses").add(1)?;
        let Some(Versioned { value, .. }) = self.records.get(key)? else {
            return Ok(None);
        };
        copy.set(&value)?;
        Ok(Some(value))
    }

    /// Writes record `key` to cold (unconditionally) and drops its hot copy,
    /// so the next read sees the new value. Returns the record's version.
    pub fn put(&self, key: &str, value: &T) -> Result<u64, GameError> {
        let version = self.records.put(key, value, None)?;
        self.copy(key).delete()?;
        Ok(version)
    }

    /// Drops the hot copy of `key` (after writing its record another way).
    pub fn forget(&self, key: &str) -> Result<(), GameError> {
        self.copy(key).delete().map(drop)
    }

    /// The hits and misses counted so far.
    pub fn stats(&self) -> Result<CacheStats, GameError> {
        let count = |what| self.counter(what).get().map(|n| n.max(0) as u64);
        Ok(CacheStats {
            hits: count("hits")?,
            misses: count("misses")?,
        })
    }
}
