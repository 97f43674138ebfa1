//! Typed hot storage: a value at a key (JSON, with an optional TTL), a
//! counter, a leaderboard. Each names its key once and does the encoding.

use crate::{GameError, hot, invalid, misfit};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::marker::PhantomData;

/// A hot value of type `T`, kept as JSON at one key. With a TTL every
/// [`set`](Key::set) expires that long after it.
///
/// ```ignore
/// const SEEN: Key<Seen> = Key::new("seen").ttl(60_000);
/// SEEN.set(&Seen { at })?;
/// ```
pub struct Key<T> {
    name: Cow<'static, str>,
    ttl_ms: Option<u64>,
    _value: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Key<T> {
    pub const fn new(name: &'static str) -> Self {
        Key {
            name: Cow::Borrowed(name),
            ttl_ms: None,
            _value: PhantomData,
        }
    }

    /// A key whose name is made at run time (`format!("hp:{account}")`).
    pub fn named(name: impl Into<String>) -> Self {
        Key {
            name: Cow::Owned(name.into()),
            ttl_ms: None,
            _value: PhantomData,
        }
    }

    /// Every `set` expires `ms` milliseconds after it.
    pub const fn ttl(mut self, ms: u64) -> Self {
        self.ttl_ms = Some(ms);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value, or `None` if absent or expired.
    pub fn get(&self) -> Result<Option<T>, GameError> {
        let Some(bytes) = hot::get(&self.name)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| misfit("value", &self.name, e))
    }

    pub fn set(&self, value: &T) -> Result<(), GameError> {
        let bytes = serde_json::to_vec(value).map_err(|e| misfit("value", &self.name, e))?;
        Ok(hot::set(&self.name, &bytes, self.ttl_ms)?)
    }

    /// Deletes the key; whether it existed.
    pub fn delete(&self) -> Result<bool, GameError> {
        Ok(hot::delete(&self.name)?)
    }
}

/// A hot integer counter: increments are atomic and never lost.
pub struct Counter {
    name: Cow<'static, str>,
}

impl Counter {
    pub const fn new(name: &'static str) -> Self {
        Counter {
            name: Cow::Borrowed(name),
        }
    }

    pub fn named(name: impl Into<String>) -> Self {
        Counter {
            name: Cow::Owned(name.into()),
        }
    }

    /// Adds `delta` (an absent counter is 0); the new value.
    pub fn add(&self, delta: i64) -> Result<i64, GameError> {
        Ok(hot::incr(&self.name, delta)?)
    }

    /// The count (0 if absent).
    pub fn get(&self) -> Result<i64, GameError> {
        let Some(bytes) = hot::get(&self.name)? else {
            return Ok(0);
        };
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| invalid("value", format!("counter {} holds no integer", self.name)))
    }
}

/// A hot leaderboard: members with scores, best first.
pub struct Leaderboard {
    name: Cow<'static, str>,
}

impl Leaderboard {
    pub const fn new(name: &'static str) -> Self {
        Leaderboard {
            name: Cow::Borrowed(name),
        }
    }

    pub fn named(name: impl Into<String>) -> Self {
        Leaderboard {
            name: Cow::Owned(name.into()),
        }
    }

    /// Sets `member`'s score.
    pub fn set(&self, member: &str, score: f64) -> Result<(), GameError> {
        Ok(hot::leaderboard_set(&self.name, member, score)?)
    }

    /// Adds `delta` to `member`'s score (absent: 0); the new score.
    pub fn add(&self, member: &str, delta: f64) -> Result<f64, GameError> {
        Ok(hot::leaderboard_incr(&self.name, member, delta)?)
    }

    /// The best `n` (at most 1000), best first.
    pub fn top(&self, n: u32) -> Result<Vec<hot::Entry>, GameError> {
        Ok(hot::leaderboard_top(&self.name, n)?)
    }

    /// `member`'s entry, or `None` if it has no score.
    pub fn rank(&self, member: &str) -> Result<Option<hot::Entry>, GameError> {
        Ok(hot::leaderboard_rank(&self.name, member)?)
    }

    /// Up to `n` entries either side of `member`, and `member` itself.
    pub fn around(&self, member: &str, n: u32) -> Result<Vec<hot::Entry>, GameError> {
        Ok(hot::leaderboard_around(&self.name, member, n)?)
    }
}
