//! Typed records: a cold collection of serde values, versioned, with a
//! read-modify-write that retries when another writer got there first.

use crate::{GameError, cold, misfit, types};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::marker::PhantomData;

/// How often [`Records::update`] tries before it gives the conflict up.
pub const UPDATE_TRIES: u32 = 32;

/// The first pause after a conflict in [`Records::update`], in
/// microseconds; it doubles with each conflict up to [`BACKOFF_MAX_US`].
const BACKOFF_FIRST_US: u64 = 100;

/// The longest pause between two tries of [`Records::update`]: with
/// [`UPDATE_TRIES`] it bounds the pauses of one update to about 60 ms, a
/// quarter of the host's default run time for a call (`wasm.call_timeout_ms`,
/// which a pause counts against).
const BACKOFF_MAX_US: u64 = 2_000;

/// A value and the version it was read at.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned<T> {
    pub version: u64,
    pub value: T,
}

/// The collection `collection` of JSON records of type `T`.
pub struct Records<T> {
    collection: Cow<'static, str>,
    _values: PhantomData<fn() -> T>,
}

fn bad_record(collection: &str, key: &str, error: serde_json::Error) -> GameError {
    misfit("body", &format!("record {collection}/{key}"), error)
}

impl<T: Serialize + DeserializeOwned> Records<T> {
    pub const fn new(collection: &'static str) -> Self {
        Records {
            collection: Cow::Borrowed(collection),
            _values: PhantomData,
        }
    }

    /// A collection whose name is made at run time.
    pub fn named(collection: impl Into<String>) -> Self {
        Records {
            collection: Cow::Owned(collection.into()),
            _values: PhantomData,
        }
    }

    /// The collection's name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// Record `key`, or `None`.
    pub fn get(&self, key: &str) -> Result<Option<Versioned<T>>, GameError> {
        let Some(record) = cold::get(&self.collection, key)? else {
            return Ok(None);
        };
        let value =
            serde_json::from_str(&record.body).map_err(|e| bad_record(&self.collection, key, e))?;
        Ok(Some(Versioned {
            version: record.version,
            value,
        }))
    }

    /// Writes `value` under `key`: only if the record is at `expected`
    /// (0: absent) when given. Returns the new version.
    pub fn put(&self, key: &str, value: &T, expected: Option<u64>) -> Result<u64, GameError> {
        let body =
            serde_json::to_string(value).map_err(|e| bad_record(&self.collection, key, e))?;
        Ok(cold::put(&self.collection, key, &body, expected)?)
    }

    /// Deletes `key`; whether it existed.
    pub fn delete(&self, key: &str) -> Result<bool, GameError> {
        Ok(cold::delete(&self.collection, key, None)?)
    }

    /// Reads `key` (`None` if absent), lets `change` make the next value,
    /// and writes it only if nobody wrote the record meanwhile; on a
    /// `conflict` it pauses, reads again and calls `change` again, up to
    /// [`UPDATE_TRIES`] times. So `change` must not have effects of its own.
    ///
    /// The pauses grow and are random ("full jitter": up to 0.1 ms after
    /// the first conflict, doubling to at most 2 ms): writers that collided
    /// once do not collide again in lockstep, so one session does not lose
    /// to the others try after try. A record that many sessions write all
    /// the time is better kept hot (a `Counter`, a `Leaderboard`).
    pub fn update(
        &self,
        key: &str,
        mut change: impl FnMut(Option<T>) -> T,
    ) -> Result<Versioned<T>, GameError> {
        let mut last = None;
        for try_number in 0..UPDATE_TRIES {
            if try_number > 0 {
                pause_after_conflict(try_number);
            }
            let (version, current) = match self.get(key)? {
                Some(read) => (read.version, Some(read.value)),
                None => (0, None),
            };
            let next = change(current);
            match self.put(key, &next, Some(version)) {
                Ok(version) => {
                    return Ok(Versioned {
                        version,
                        value: next,
                    });
                }
                Err(GameError::Storage(conflict @ types::Error::Conflict(_))) => {
                    last = Some(conflict);
                }
                Err(error) => return Err(error),
            }
        }
        Err(GameError::Storage(last.expect("tried at least once")))
    }
}

/// Sleeps a random time up to `BACKOFF_FIRST_US << (conflicts - 1)`,
/// capped at [`BACKOFF_MAX_US`].
fn pause_after_conflict(conflicts: u32) {
    let doublings = conflicts.saturating_sub(1).min(16);
    let ceiling = (BACKOFF_FIRST_US << doublings).min(BACKOFF_MAX_US);
    let pause = jitter() % (ceiling + 1);
    std::thread::sleep(std::time::Duration::from_micros(pause));
}

/// A random number, from WASI's random source: std seeds every
/// `RandomState` from it (its keys then step by one per `new`, and SipHash
/// spreads each step over all 64 bits). A pause needs no more; the game's
/// own choices come from its seed (`Rng`), never from here.
fn jitter() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}
