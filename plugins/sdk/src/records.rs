//! Typed records: a cold collection of serde values, versioned, with a
//! read-modify-write that retries when another writer got there first.

use crate::{GameError, cold, misfit, types};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::marker::PhantomData;

/// How often [`Records::update`] tries before it gives the conflict up.
pub const UPDATE_TRIES: u32 = 16;

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
    /// `conflict` it reads again and calls `change` again, up to
    /// [`UPDATE_TRIES`] times. So `change` must not have effects of its own.
    pub fn update(
        &self,
        key: &str,
        mut change: impl FnMut(Option<T>) -> T,
    ) -> Result<Versioned<T>, GameError> {
        let mut last = None;
        for _ in 0..UPDATE_TRIES {
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
