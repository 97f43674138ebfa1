//! Reference data a plugin ships with (item and monster templates, a game
//! system's stat blocks): written to cold storage once, in one transaction,
//! the first time a call needs it, and never again, so an operator or a
//! designer may edit the records afterwards and the plugin keeps their
//! edits.
//!
//! ```ignore
//! let mut data = Install::new();
//! for (id, monster) in builtin_monsters() {
//!     data.put(&MONSTERS, id, &monster)?;
//! }
//! data.put(&CATALOGS, "basic", &index)?; // the marker
//! data.once(&CATALOGS, "basic")?;
//! ```

use crate::{GameError, Records, cold, misfit, types};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Records to write once, together.
#[derive(Default)]
pub struct Install {
    writes: Vec<cold::Write>,
}

impl Install {
    pub fn new() -> Self {
        Install::default()
    }

    /// Adds `value` as record `key` of `records`.
    pub fn put<T: Serialize + DeserializeOwned>(
        &mut self,
        records: &Records<T>,
        key: &str,
        value: &T,
    ) -> Result<&mut Self, GameError> {
        let body = serde_json::to_string(value).map_err(|e| misfit("body", key, e))?;
        self.writes.push(cold::Write::Put(cold::PutWrite {
            collection: records.collection().into(),
            key: key.into(),
            body,
            expected_version: Some(0),
        }));
        Ok(self)
    }

    /// Writes every record added, in one transaction, unless record `key`
    /// of `marker` exists (add it last: it says the rest is there). Each
    /// record is written only if absent, so when two calls install at once
    /// one wins and the other's conflict means the data is there. Whether
    /// this call wrote it.
    pub fn once<M: Serialize + DeserializeOwned>(
        self,
        marker: &Records<M>,
        key: &str,
    ) -> Result<bool, GameError> {
        if cold::get(marker.collection(), key)?.is_some() {
            return Ok(false);
        }
        match cold::transact(&self.writes) {
            Ok(_) => Ok(true),
            Err(types::Error::Conflict(_)) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }
}
