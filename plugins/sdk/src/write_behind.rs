//! Write-behind: a value that changes often lives in hot storage, written
//! at hot speed on every change, and an alarm on the session copies it to
//! a cold record every few seconds (seed 000's 30-second Redis-to-Postgres
//! sync of combat state, seed 001's statistics). Call
//! [`WriteBehind::flush`] when the session ends, so the last changes land
//! too: the host drops a finished session's alarms.
//!
//! At most one period of changes can be lost, and only with the hot value
//! itself (Redis flushed, or a TTL the game set ran out): the cold record
//! is the durable copy, [`WriteBehind::get`] falls back to it.

use crate::{GameError, Key, Records, alarms, cold, hot, invalid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What a write-behind alarm carries: everything its copy needs, so the
/// alarm is handled without the game's help.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Due {
    #[serde(rename = "hoard-sdk")]
    tag: Tag,
    hot: String,
    collection: String,
    record: String,
    every_ms: u64,
}

#[derive(Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum Tag {
    WriteBehind,
}

/// A `T` written to the hot key `hot` and copied to record `record` of the
/// cold collection `collection` every `every_ms`.
pub struct WriteBehind<T> {
    key: Key<T>,
    records: Records<T>,
    due: Due,
}

impl<T: Serialize + DeserializeOwned> WriteBehind<T> {
    pub fn new(hot: &str, collection: &str, record: &str, every_ms: u64) -> Self {
        WriteBehind {
            key: Key::named(hot),
            records: Records::named(collection),
            due: Due {
                tag: Tag::WriteBehind,
                hot: hot.to_owned(),
                collection: collection.to_owned(),
                record: record.to_owned(),
                every_ms,
            },
        }
    }

    /// Writes `value` to hot; cold gets it at the next copy.
    pub fn set(&self, value: &T) -> Result<(), GameError> {
        self.key.set(value)
    }

    /// The latest value: hot's, or the cold record's if hot has none.
    pub fn get(&self) -> Result<Option<T>, GameError> {
        if let Some(value) = self.key.get()? {
            return Ok(Some(value));
        }
        Ok(self.records.get(&self.due.record)?.map(|read| read.value))
    }

    /// Starts copying: sets an alarm on the session that copies the value
    /// and sets itself again, every `every_ms` (at least 1000) for as long
    /// as the session lives. Call it once, from a session's call (`create`,
    /// `join`, `act`, `on-alarm`); the alarm's id.
    pub fn start(&self) -> Result<u64, GameError> {
        self.due.arm()
    }

    /// Copies the hot value to cold now; whether there was one.
    pub fn flush(&self) -> Result<bool, GameError> {
        self.due.copy()
    }
}

impl Due {
    fn arm(&self) -> Result<u64, GameError> {
        let payload = serde_json::to_string(self).expect("a write-behind alarm serializes");
        Ok(alarms::set(self.every_ms.max(1000), &payload)?)
    }

    fn copy(&self) -> Result<bool, GameError> {
        let Some(bytes) = hot::get(&self.hot)? else {
            return Ok(false);
        };
        let body = String::from_utf8(bytes)
            .map_err(|_| invalid("value", format!("hot key {} is not JSON text", self.hot)))?;
        cold::put(&self.collection, &self.record, &body, None)?;
        Ok(true)
    }
}

/// Handles `payload` if it is a write-behind alarm (copies, and sets the
/// next): `true`, and the game has nothing more to do with it. Games on
/// [`Rules`](crate::Rules) get this done for them; a game implementing
/// [`Game`](crate::Game) itself calls it first thing in `on_alarm`.
pub fn handle(payload: &str) -> Result<bool, GameError> {
    if !payload.contains("\"hoard-sdk\"") {
        return Ok(false);
    }
    let Ok(due) = serde_json::from_str::<Due>(payload) else {
        return Ok(false);
    };
    due.copy()?;
    due.arm()?;
    Ok(true)
}
