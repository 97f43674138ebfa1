//! Host side of `hoard:plugin/alarms`: a session's pending alarms, lent to
//! the instance for one call and handed back with its result.

use super::InstanceData;
use super::bindings::hoard::plugin::alarms::Host;
use crate::storage::Error;
use serde::{Deserialize, Serialize};

/// Pending alarms per session, at most.
pub const ALARMS_MAX: usize = 64;
/// The largest payload, in bytes.
pub const PAYLOAD_BYTES_MAX: usize = 16 * 1024;
/// The furthest an alarm may be set ahead: 30 days.
pub const AFTER_MS_MAX: u64 = 30 * 24 * 3600 * 1000;

/// One pending alarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// Unique in its session.
    pub id: u64,
    /// When it is due, in ms since the Unix epoch.
    pub due_ms: u64,
    pub payload: String,
}

/// A session's alarms: those pending, and the next id to give.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarms {
    pub pending: Vec<Alarm>,
    pub next_id: u64,
}

impl Alarms {
    /// The earliest due time, if any alarm is pending.
    pub fn earliest(&self) -> Option<u64> {
        self.pending.iter().map(|a| a.due_ms).min()
    }

    /// Removes and returns the first alarm due by `now_ms` (by due time,
    /// then by id) among those with an id below `below_id`.
    pub fn take_due(&mut self, now_ms: u64, below_id: u64) -> Option<Alarm> {
        let (at, _) = self
            .pending
            .iter()
            .enumerate()
            .filter(|(_, a)| a.due_ms <= now_ms && a.id < below_id)
            .min_by_key(|(_, a)| (a.due_ms, a.id))?;
        Some(self.pending.remove(at))
    }
}

fn no_session() -> Error {
    Error::invalid(
        "alarm",
        "alarms belong to a session: set them in create, join, act or on-alarm",
    )
}

impl Host for InstanceData {
    async fn set(&mut self, after_ms: u64, payload: String) -> Result<u64, Error> {
        let alarms = self.alarms.as_mut().ok_or_else(no_session)?;
        if after_ms > AFTER_MS_MAX {
            return Err(Error::invalid("after-ms", "at most 30 days ahead"));
        }
        if payload.len() > PAYLOAD_BYTES_MAX {
            return Err(Error::LimitExceeded {
                what: "alarm-payload-bytes",
                max: PAYLOAD_BYTES_MAX as u64,
                actual: payload.len() as u64,
            });
        }
        if alarms.pending.len() >= ALARMS_MAX {
            return Err(Error::LimitExceeded {
                what: "alarms",
                max: ALARMS_MAX as u64,
                actual: alarms.pending.len() as u64 + 1,
            });
        }
        let id = alarms.next_id;
        alarms.next_id += 1;
        alarms.pending.push(Alarm {
            id,
            due_ms: crate::storage::sled::now_ms().saturating_add(after_ms),
            payload,
        });
        Ok(id)
    }

    async fn cancel(&mut self, id: u64) -> Result<bool, Error> {
        let alarms = self.alarms.as_mut().ok_or_else(no_session)?;
        let before = alarms.pending.len();
        alarms.pending.retain(|a| a.id != id);
        Ok(alarms.pending.len() < before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_alarms_come_out_by_time_then_id() {
        let alarm = |id, due_ms| Alarm {
            id,
            due_ms,
            payload: String::new(),
        };
        let mut alarms = Alarms {
            pending: vec![alarm(3, 10), alarm(1, 20), alarm(2, 10), alarm(4, 99)],
            next_id: 5,
        };
        assert_eq!(alarms.earliest(), Some(10));
        assert_eq!(
            alarms.take_due(50, 3).map(|a| a.id),
            Some(2),
            "3 is too new"
        );
        let order: Vec<u64> = std::iter::from_fn(|| alarms.take_due(50, 5))
            .map(|a| a.id)
            .collect();
        assert_eq!(order, [3, 1]);
        assert_eq!(alarms.earliest(), Some(99));
    }
}
