//! Typed history streams: append-only cold logs of serde values (finished
//! matches, a character's deaths), read oldest first.

use crate::{GameError, cold, misfit, types};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::marker::PhantomData;

/// The history stream `name`, of `T`s.
pub struct History<T> {
    name: Cow<'static, str>,
    _entries: PhantomData<fn() -> T>,
}

/// One entry of a stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry<T> {
    /// Its position: 1 for the first, then +1.
    pub seq: u64,
    pub value: T,
}

impl<T: Serialize + DeserializeOwned> History<T> {
    pub const fn new(name: &'static str) -> Self {
        History {
            name: Cow::Borrowed(name),
            _entries: PhantomData,
        }
    }

    pub fn named(name: impl Into<String>) -> Self {
        History {
            name: Cow::Owned(name.into()),
            _entries: PhantomData,
        }
    }

    /// Appends `value`; its sequence number.
    pub fn append(&self, value: &T) -> Result<u64, GameError> {
        let body = serde_json::to_string(value).map_err(|e| misfit("body", &self.name, e))?;
        Ok(cold::append_history(&self.name, &body)?)
    }

    /// Up to `limit` (1 to 1000) entries after `after` (0: from the start),
    /// oldest first; none for a stream nothing was appended to yet.
    pub fn read(&self, after: u64, limit: u32) -> Result<Vec<Entry<T>>, GameError> {
        let entries = match cold::read_history(&self.name, after, limit) {
            Err(types::Error::NotFound) => return Ok(Vec::new()),
            read => read?,
        };
        entries
            .into_iter()
            .map(|entry| {
                let value =
                    serde_json::from_str(&entry.body).map_err(|e| misfit("body", &self.name, e))?;
                Ok(Entry {
                    seq: entry.seq,
                    value,
                })
            })
            .collect()
    }
}
