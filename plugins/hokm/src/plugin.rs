//! The WIT export: hoard calls these; they call the rules.
//!
//! When a game ends, the result is written to cold storage (the `matches`
//! history stream) and each winner's count on the hot `wins` leaderboard goes
//! up by one.

use crate::game::{Game, Refusal};
use hoard_sdk::{GameError, Info, Player, Session, Turn, cold, hot};

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

    fn view(state: Vec<u8>, player: Option<String>) -> Result<String, GameError> {
        let game = Game::decode(&state).map_err(refusal)?;
        Ok(game.view(player.as_deref()).to_string())
    }
}

hoard_sdk::export!(Hokm);
