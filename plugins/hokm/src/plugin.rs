//! The WIT export: hoard calls these; they call the rules.
//!
//! When a game ends, the result is written to cold storage (the `matches`
//! history stream) and each winner's count on the hot `wins` leaderboard goes
//! up by one.
//!
//! **The turn clock.** With `"turn_ms": N` in the config, whoever must move
//! has N ms: an alarm then makes their move for them (`Game::timeout_move`:
//! the Hakem names the suit of their first card, a player plays their
//! lowest legal card). Every move cancels the alarm and sets the next.

use crate::game::{Game, Phase, Refusal};
use hoard_sdk::{GameError, Info, Player, Session, Turn, alarms, cold, hot, types};
use serde::{Deserialize, Serialize};
use serde_json::json;

struct Hokm;

fn refusal(refusal: Refusal) -> GameError {
    match refusal {
        Refusal::Malformed(code, message) => GameError::malformed(code, message),
        Refusal::Illegal(code, message) => GameError::illegal(code, message),
        Refusal::NotYourTurn => GameError::NotYourTurn,
        Refusal::Full => GameError::Full,
        Refusal::NotSeated => GameError::NotSeated,
        Refusal::Finished => GameError::Finished,
    }
}

/// A session's state: the game, then its turn clock if it has one. A state
/// without a clock is the game's bytes alone, as before clocks.
struct Table {
    game: Game,
    clock: Option<Clock>,
}

#[derive(Serialize, Deserialize)]
struct Clock {
    turn_ms: u64,
    /// The pending alarm, if someone must move.
    alarm: Option<u64>,
    /// Moves made so far: an alarm names the move it was set after, so a
    /// late one is ignored.
    moves: u64,
}

/// The turn clock's part of the config.
#[derive(Deserialize)]
struct ClockConfig {
    turn_ms: u64,
}

impl Table {
    fn decode(state: &[u8]) -> Result<Table, GameError> {
        let bad = || GameError::malformed("bad_state", "the session state is not a Hokm game");
        let (game, rest) = postcard::take_from_bytes::<Game>(state).map_err(|_| bad())?;
        let clock = match rest {
            [] => None,
            rest => Some(postcard::from_bytes(rest).map_err(|_| bad())?),
        };
        Ok(Table { game, clock })
    }

    fn encode(&self) -> Vec<u8> {
        let mut state = self.game.encode();
        if let Some(clock) = &self.clock {
            state.extend(postcard::to_allocvec(clock).expect("a clock encodes"));
        }
        state
    }

    /// After a move: the old alarm goes, and the player who must move now
    /// gets a fresh `turn_ms`.
    fn rearm(&mut self) -> Result<(), GameError> {
        let Some(clock) = &mut self.clock else {
            return Ok(());
        };
        if let Some(alarm) = clock.alarm.take() {
            alarms::cancel(alarm)?;
        }
        clock.moves += 1;
        if matches!(self.game.phase, Phase::ChoosingTrump | Phase::Playing) {
            let payload = json!({"move": clock.moves}).to_string();
            clock.alarm = Some(alarms::set(clock.turn_ms, &payload)?);
        }
        Ok(())
    }

    /// `player`'s action, the clock rearmed, and the game's end recorded.
    fn act(mut self, player: &str, action: &str) -> Result<Turn, GameError> {
        self.game.act(player, action).map_err(refusal)?;
        self.rearm()?;
        let outcome = self.game.outcome();
        if let Some(outcome) = &outcome {
            cold::append_history("matches", &outcome.to_string())?;
            for winner in outcome["winners"].as_array().into_iter().flatten() {
                hot::leaderboard_incr("wins", winner.as_str().unwrap_or_default(), 1.0)?;
            }
        }
        Ok(Turn {
            state: self.encode(),
            outcome: outcome.map(|o| o.to_string()),
        })
    }
}

impl hoard_sdk::Game for Hokm {
    fn describe() -> Info {
        Info {
            name: "hokm".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Hokm: four players in two teams, the Hakem names trump, first side to 7 points wins.".into(),
            min_players: 4,
            max_players: 4,
            rpcs: vec!["leaderboard".into(), "history".into()],
        }
    }

    fn create(session: Session, config: String) -> Result<Vec<u8>, GameError> {
        let mut rules: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&config)
                .map_err(|e| GameError::malformed("bad_config", format!("bad config: {e}")))?;
        let clock = match rules.remove("turn_ms") {
            None => None,
            Some(turn_ms) => {
                let ClockConfig { turn_ms } = serde_json::from_value(json!({"turn_ms": turn_ms}))
                    .ok()
                    .filter(|c: &ClockConfig| (1_000..=86_400_000).contains(&c.turn_ms))
                    .ok_or_else(|| {
                        GameError::malformed("bad_config", "turn_ms must be 1000 to 86400000")
                    })?;
                Some(Clock {
                    turn_ms,
                    alarm: None,
                    moves: 0,
                })
            }
        };
        let rules = serde_json::Value::Object(rules).to_string();
        let game = Game::new(session.seed, &rules).map_err(refusal)?;
        Ok(Table { game, clock }.encode())
    }

    fn join(state: Vec<u8>, player: Player) -> Result<Vec<u8>, GameError> {
        let mut table = Table::decode(&state)?;
        table.game.join(&player.name).map_err(refusal)?;
        if table.game.phase != Phase::Waiting {
            // The fourth player: the Hakem's clock starts.
            table.rearm()?;
        }
        Ok(table.encode())
    }

    fn act(state: Vec<u8>, player: String, action: String) -> Result<Turn, GameError> {
        Table::decode(&state)?.act(&player, &action)
    }

    /// The turn clock ran out: the move is made for the player.
    fn on_alarm(state: Vec<u8>, payload: String) -> Result<Turn, GameError> {
        let table = Table::decode(&state)?;
        let due: Option<u64> = serde_json::from_str::<serde_json::Value>(&payload)
            .ok()
            .and_then(|p| p["move"].as_u64());
        let current = table.clock.as_ref().map(|c| c.moves);
        let timeout = table.game.timeout_move();
        match (timeout, due == current) {
            (Some((player, action)), true) => table.act(&player, &action),
            // A late alarm, or nobody to move: nothing happens.
            _ => Ok(Turn {
                state,
                outcome: None,
            }),
        }
    }

    /// `leaderboard` (`{"n": 1-100}`, default 10): the players with the
    /// most wins, best first. `history` (`{"after": seq, "limit": 1-100}`,
    /// defaults 0 and 20): finished matches' outcomes, oldest first.
    fn rpc(name: String, _caller: Option<Player>, input: String) -> Result<String, GameError> {
        let input: serde_json::Value = serde_json::from_str(&input)
            .map_err(|e| GameError::malformed("bad_input", e.to_string()))?;
        let number = |field: &str, default: u64, range: std::ops::RangeInclusive<u64>| match input
            .get(field)
        {
            None => Ok(default),
            Some(value) => value.as_u64().filter(|n| range.contains(n)).ok_or_else(|| {
                GameError::malformed(
                    "bad_input",
                    format!(
                        "`{field}` must be a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )
            }),
        };
        let answer = match name.as_str() {
            "leaderboard" => {
                let n = number("n", 10, 1..=100)?;
                let top = hot::leaderboard_top("wins", n as u32)?;
                let rows: Vec<_> = top
                    .into_iter()
                    .map(|e| json!({"rank": e.rank, "player": e.member, "wins": e.score}))
                    .collect();
                json!({"wins": rows})
            }
            "history" => {
                let after = number("after", 0, 0..=u64::MAX)?;
                let limit = number("limit", 20, 1..=100)?;
                let entries = match cold::read_history("matches", after, limit as u32) {
                    Err(types::Error::NotFound) => Vec::new(),
                    read => read?,
                };
                let matches: Vec<_> = entries
                    .into_iter()
                    .map(|e| {
                        let outcome: serde_json::Value =
                            serde_json::from_str(&e.body).unwrap_or(serde_json::Value::Null);
                        json!({"seq": e.seq, "outcome": outcome})
                    })
                    .collect();
                json!({"matches": matches})
            }
            other => {
                return Err(GameError::malformed(
                    "unknown_rpc",
                    format!("hokm answers no call named {other:?}"),
                ));
            }
        };
        Ok(answer.to_string())
    }

    fn view(state: Vec<u8>, player: Option<String>) -> Result<String, GameError> {
        let table = Table::decode(&state)?;
        let mut view = table.game.view(player.as_deref());
        if let Some(clock) = &table.clock {
            view["turn_ms"] = json!(clock.turn_ms);
        }
        Ok(view.to_string())
    }
}

hoard_sdk::export!(Hokm);
