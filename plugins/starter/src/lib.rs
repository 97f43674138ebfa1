//! A hoard game, as `hoard plugin new` made it: Nim, ready to become yours.
//!
//! Two players take turns taking 1 to 3 stones from a pile (21, or
//! `{"stones": N}` in the session's config, 5 to 100). Whoever takes the
//! last stone wins.
//!
//! The game is one trait, [`Rules`], on typed state:
//! - `describe` presents the game in the lobby;
//! - `create` makes a session's first state from its config;
//! - `join` seats a player;
//! - `act` applies a player's move, or refuses it with a reason they see;
//! - `view` is what a player (or a spectator) may see of the state.
//!
//! The host keeps the state between calls, durably, and answers players
//! only once it is stored. Build with `hoard plugin build`, play with
//! `hoard serve --config hoard.toml` (the crate's README.md has the curl
//! lines), test the rules natively with `cargo test`. The SDK's tutorial
//! (`plugins/sdk/README.md` in hoard's repository) goes on to storage,
//! leaderboards, alarms and RPCs.

use hoard_sdk::{GameError, Info, Player, Rules, Session};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Everything a session is, between calls. The SDK keeps it as JSON.
#[derive(Serialize, Deserialize)]
pub struct Nim {
    /// Stones left on the pile.
    stones: u32,
    /// Who plays, in turn order.
    players: Vec<String>,
    /// Whose turn it is: an index into `players`.
    turn: usize,
    winner: Option<String>,
}

/// A move as a player sends it: `{"type": "take", "stones": 2}`. Anything
/// else is refused with 400 `bad_action` before `act` runs.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Move {
    Take { stones: u32 },
}

/// A session's config, as its creator sends it (`{}` for the defaults).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    stones: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config { stones: 21 }
    }
}

/// What a player sees. Nothing in Nim is hidden, so everyone sees the
/// same; a game with secrets (cards in hand) looks at `player` here.
#[derive(Serialize)]
struct View<'a> {
    stones: u32,
    players: &'a [String],
    /// Whose turn it is, until someone has won.
    turn: Option<&'a str>,
    winner: Option<&'a str>,
}

impl Rules for Nim {
    type State = Nim;
    type Action<'a> = Move;

    fn describe() -> Info {
        Info {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Nim: take 1 to 3 stones; whoever takes the last one wins.".into(),
            min_players: 2,
            max_players: 2,
            rpcs: vec![],
        }
    }

    fn create(_session: &Session, config: Value) -> Result<Nim, GameError> {
        let config: Config = serde_json::from_value(config)
            .map_err(|e| GameError::malformed("bad_config", e.to_string()))?;
        if !(5..=100).contains(&config.stones) {
            return Err(GameError::malformed(
                "bad_config",
                "stones must be 5 to 100",
            ));
        }
        Ok(Nim {
            stones: config.stones,
            players: Vec::new(),
            turn: 0,
            winner: None,
        })
    }

    fn join(nim: &mut Nim, player: &Player) -> Result<(), GameError> {
        if nim.players.len() == 2 {
            return Err(GameError::Full);
        }
        nim.players.push(player.name.clone());
        Ok(())
    }

    fn act(nim: &mut Nim, player: &str, action: Move) -> Result<Option<Value>, GameError> {
        if nim.winner.is_some() {
            return Err(GameError::Finished);
        }
        if nim.players.len() < 2 {
            return Err(GameError::illegal(
                "waiting_for_players",
                "the game starts when two players have joined",
            ));
        }
        if nim.players[nim.turn] != player {
            return Err(GameError::NotYourTurn);
        }
        let Move::Take { stones } = action;
        if !(1..=3).contains(&stones) || stones > nim.stones {
            return Err(GameError::illegal(
                "bad_take",
                format!("take 1 to 3 stones, and at most the {} left", nim.stones),
            ));
        }
        nim.stones -= stones;
        if nim.stones == 0 {
            nim.winner = Some(player.to_owned());
            // The outcome ends the session: the host keeps it and shows it.
            return Ok(Some(json!({ "winners": [player] })));
        }
        nim.turn = 1 - nim.turn;
        Ok(None)
    }

    fn view(nim: &Nim, _player: Option<&str>) -> impl Serialize {
        View {
            stones: nim.stones,
            players: &nim.players,
            turn: nim
                .winner
                .is_none()
                .then(|| nim.players.get(nim.turn).map(String::as_str))
                .flatten(),
            winner: nim.winner.as_deref(),
        }
    }
}

hoard_sdk::export_rules!(Nim);

/// The rules, tested natively: `cargo test`.
#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> Nim {
        let session = Session {
            id: "s".into(),
            seed: 1,
        };
        let mut nim = Nim::create(&session, json!({"stones": 5})).unwrap();
        for name in ["ann", "bob"] {
            let player = Player {
                name: name.into(),
                account: None,
            };
            Nim::join(&mut nim, &player).unwrap();
        }
        nim
    }

    #[test]
    fn whoever_takes_the_last_stone_wins() {
        let mut nim = started();
        assert!(
            Nim::act(&mut nim, "ann", Move::Take { stones: 3 })
                .unwrap()
                .is_none()
        );
        let outcome = Nim::act(&mut nim, "bob", Move::Take { stones: 2 }).unwrap();
        assert_eq!(outcome, Some(json!({"winners": ["bob"]})));
        assert!(matches!(
            Nim::act(&mut nim, "ann", Move::Take { stones: 1 }),
            Err(GameError::Finished)
        ));
    }

    #[test]
    fn bad_moves_are_refused_and_change_nothing() {
        let mut nim = started();
        assert!(matches!(
            Nim::act(&mut nim, "bob", Move::Take { stones: 1 }),
            Err(GameError::NotYourTurn)
        ));
        for stones in [0, 4] {
            assert!(matches!(
                Nim::act(&mut nim, "ann", Move::Take { stones }),
                Err(GameError::Illegal(_))
            ));
        }
        assert_eq!(nim.stones, 5);
    }
}
