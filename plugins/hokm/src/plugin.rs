//! The WIT export: hoard calls these; they call the rules.
//!
//! When a game ends, the result is written to cold storage (the `matches`
//! history stream) and each winner's count on the hot `wins` leaderboard goes
//! up by one.

use crate::game::{Game, Refusal};
use hoard_sdk::{GameError, Info, Player, Session, Turn, cold, hot, types};
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
        Ok(Game::new(session.seed, &config).map_err(refusal)?.encode())
    }

    fn join(state: Vec<u8>, player: Player) -> Result<Vec<u8>, GameError> {
        let mut game = Game::decode(&state).map_err(refusal)?;
        game.join(&player.name).map_err(refusal)?;
        Ok(game.encode())
    }

    fn act(state: Vec<u8>, player: String, action: String) -> Result<Turn, GameError> {
        let mut game = Game::decode(&state).map_err(refusal)?;
        game.act(&player, &action).map_err(refusal)?;
        let outcome = game.outcome();
        if let Some(outcome) = &outcome {
            cold::append_history("matches", &outcome.to_string())?;
            for winner in outcome["winners"].as_array().into_iter().flatten() {
                hot::leaderboard_incr("wins", winner.as_str().unwrap_or_default(), 1.0)?;
            }
        }
        Ok(Turn {
            state: game.encode(),
            outcome: outcome.map(|o| o.to_string()),
        })
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
        let game = Game::decode(&state).map_err(refusal)?;
        Ok(game.view(player.as_deref()).to_string())
    }
}

hoard_sdk::export!(Hokm);
