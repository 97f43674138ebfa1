//! Hokm on the guest SDK: the rules in [`crate::game`], the session's
//! storage around them.
//!
//! When a game ends, its outcome is appended to the cold history stream
//! `matches` and each winner's count on the hot leaderboard `wins` goes up
//! by one; the RPCs `leaderboard` and `history` read them back.
//!
//! **The turn clock.** With `"turn_ms": N` in the config, whoever must move
//! has N ms: an alarm then makes their move for them (`Game::timeout_move`:
//! the Hakem names the suit of their first card, a player plays their
//! lowest legal card).

use crate::game::{Action, Game, Phase};
use hoard_sdk::rpc::{Page, within};
use hoard_sdk::{GameError, History, Info, Leaderboard, Player, Router, Rules, Session, TurnClock};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const WINS: Leaderboard = Leaderboard::new("wins");
const MATCHES: History<Value> = History::new("matches");

/// A session's state: the game, then its turn clock if it has one. (Serde
/// for the SDK's bound; `encode` and `decode` below choose the format.)
#[derive(Serialize, Deserialize)]
struct Table {
    game: Game,
    clock: Option<TurnClock>,
}

impl Table {
    /// After a move: the clock restarts for whoever must move now, and the
    /// game's end is recorded.
    fn moved(&mut self) -> Result<Option<Value>, GameError> {
        if let Some(clock) = &mut self.clock {
            clock.restart(matches!(
                self.game.phase,
                Phase::ChoosingTrump | Phase::Playing
            ))?;
        }
        let outcome = self.game.outcome();
        if let Some(outcome) = &outcome {
            MATCHES.append(outcome)?;
            for winner in outcome["winners"].as_array().into_iter().flatten() {
                WINS.add(winner.as_str().unwrap_or_default(), 1.0)?;
            }
        }
        Ok(outcome)
    }
}

/// `leaderboard`'s input: how many rows (1 to 100).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Top {
    #[serde(default = "Top::default_n")]
    n: u64,
}

impl Top {
    fn default_n() -> u64 {
        10
    }
}

struct Hokm;

impl Rules for Hokm {
    type State = Table;
    type Action<'a> = Action<'a>;

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

    fn create(session: &Session, config: Value) -> Result<Table, GameError> {
        let bad = |message: &str| GameError::malformed("bad_config", message);
        let Value::Object(mut rules) = config else {
            return Err(bad("the config is a JSON object"));
        };
        let clock = match rules.remove("turn_ms").map(|ms| ms.as_u64()) {
            None => None,
            Some(Some(ms @ 1_000..=86_400_000)) => Some(TurnClock::new(ms)),
            Some(_) => return Err(bad("turn_ms must be 1000 to 86400000")),
        };
        let game = Game::new(session.seed, &Value::Object(rules).to_string())?;
        Ok(Table { game, clock })
    }

    fn join(table: &mut Table, player: &Player) -> Result<(), GameError> {
        table.game.join(&player.name)?;
        if let (Some(clock), Phase::ChoosingTrump) = (&mut table.clock, table.game.phase) {
            // The fourth player: the Hakem's clock starts.
            clock.restart(true)?;
        }
        Ok(())
    }

    fn act(table: &mut Table, player: &str, action: Action) -> Result<Option<Value>, GameError> {
        table.game.apply(player, &action)?;
        table.moved()
    }

    /// The turn clock ran out: the move is made for the player. A late
    /// alarm (the player moved in time) does nothing.
    fn on_alarm(table: &mut Table, payload: Value) -> Result<Option<Value>, GameError> {
        let due = table.clock.as_ref().is_some_and(|c| c.is_due(&payload));
        match table.game.timeout_move() {
            Some((player, action)) if due => {
                table.game.act(&player, &action)?;
                table.moved()
            }
            _ => Ok(None),
        }
    }

    /// `leaderboard` (`{"n": 1-100}`, default 10): the players with the
    /// most wins, best first. `history` (`{"after": seq, "limit": 1-100}`,
    /// defaults 0 and 20): finished matches' outcomes, oldest first.
    fn rpc(name: &str, caller: Option<&Player>, input: Value) -> Result<Value, GameError> {
        Router::new(name, caller, input)
            .on("leaderboard", |_, top: Top| {
                let rows = WINS.top(within("n", top.n, 1..=100)? as u32)?;
                let rows = rows
                    .into_iter()
                    .map(|e| json!({"rank": e.rank, "player": e.member, "wins": e.score}));
                Ok(json!({"wins": rows.collect::<Vec<_>>()}))
            })
            .on("history", |_, page: Page| {
                let limit = page.limit()?;
                let matches = MATCHES.read(page.after, limit)?;
                let matches = matches
                    .into_iter()
                    .map(|e| json!({"seq": e.seq, "outcome": e.value}));
                Ok(json!({"matches": matches.collect::<Vec<_>>()}))
            })
            .finish()
    }

    fn view(table: &Table, player: Option<&str>) -> impl Serialize {
        let mut view = table.game.view(player);
        view.turn_ms = table.clock.as_ref().map(|clock| clock.turn_ms);
        view
    }

    /// The game's postcard bytes, then the clock's if it has one: a state
    /// without a clock is the game's bytes alone, as before clocks.
    fn encode(table: &Table) -> Vec<u8> {
        let mut state = table.game.encode();
        if let Some(clock) = &table.clock {
            state.extend(postcard::to_allocvec(clock).expect("a clock encodes"));
        }
        state
    }

    /// Postcard does not describe itself: a state another version wrote
    /// could read as the wrong game. Only this version's own state is
    /// taken (a rebuild of it); sessions of other versions stay on theirs.
    fn upgrade(state: &[u8], written_by: &str) -> Result<Table, GameError> {
        if written_by != env!("CARGO_PKG_VERSION") {
            return Err(GameError::malformed(
                "no_upgrade",
                format!(
                    "Hokm {} does not read {written_by}'s state",
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        }
        Self::decode(state)
    }

    fn decode(state: &[u8]) -> Result<Table, GameError> {
        let bad = || GameError::malformed("bad_state", "the session state is not a Hokm game");
        let (game, rest) = postcard::take_from_bytes::<Game>(state).map_err(|_| bad())?;
        let clock = match rest {
            [] => None,
            rest => Some(postcard::from_bytes(rest).map_err(|_| bad())?),
        };
        Ok(Table { game, clock })
    }
}

hoard_sdk::export_rules!(Hokm);
