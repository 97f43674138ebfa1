//! A turn clock: whoever must move has a fixed time, and an alarm tells the
//! game when it ran out. Keep a [`TurnClock`] in the state; after every
//! move call [`TurnClock::restart`]; in `on_alarm`, act for the player only
//! if [`TurnClock::is_due`] (an alarm set before the last move is late,
//! and its move was already made).

use crate::{GameError, alarms};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The key a turn clock's alarm payload carries: the move it was set after.
const PAYLOAD_KEY: &str = "hoard-sdk:turn";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnClock {
    /// Time for each move.
    pub turn_ms: u64,
    /// The pending alarm, while someone must move.
    alarm: Option<u64>,
    /// Moves made so far.
    moves: u64,
}

impl TurnClock {
    pub fn new(turn_ms: u64) -> Self {
        TurnClock {
            turn_ms,
            alarm: None,
            moves: 0,
        }
    }

    /// After a move: the pending alarm goes, and if someone must move now
    /// (`waiting`), they get a fresh `turn_ms`.
    pub fn restart(&mut self, waiting: bool) -> Result<(), GameError> {
        if let Some(alarm) = self.alarm.take() {
            alarms::cancel(alarm)?;
        }
        self.moves += 1;
        if waiting {
            let payload = json!({PAYLOAD_KEY: self.moves}).to_string();
            self.alarm = Some(alarms::set(self.turn_ms, &payload)?);
        }
        Ok(())
    }

    /// Whether `payload` is this clock running out now (not a late alarm,
    /// nor another alarm of the game's).
    pub fn is_due(&self, payload: &Value) -> bool {
        self.alarm.is_some() && payload[PAYLOAD_KEY].as_u64() == Some(self.moves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_alarm_of_the_last_move_is_due() {
        let mut clock = TurnClock::new(5_000);
        clock.moves = 3;
        clock.alarm = Some(7);
        assert!(clock.is_due(&json!({PAYLOAD_KEY: 3})));
        assert!(!clock.is_due(&json!({PAYLOAD_KEY: 2})), "late");
        assert!(!clock.is_due(&json!({"other": 3})), "another alarm");
        assert!(!clock.is_due(&json!("text")));
        clock.alarm = None;
        assert!(!clock.is_due(&json!({PAYLOAD_KEY: 3})), "stopped");
    }
}
