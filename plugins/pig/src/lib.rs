//! Pig, the dice game, on the guest SDK: the game `plugins/sdk/README.md`
//! builds step by step.
//!
//! Two to four players take turns. On your turn you roll a die as often as
//! you like, adding each roll to your turn's pot, until you either hold
//! (the pot is added to your score and the turn passes) or roll a 1 (the
//! pot is lost and the turn passes). The first to reach the target (50;
//! `{"target": N}` in the config, 10 to 1000) wins.

use hoard_sdk::rpc::Empty;
use hoard_sdk::{GameError, Info, Leaderboard, Player, Records, Rng, Router, Rules, Session};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

// Step 1: the state, and the moves a player can send.

#[derive(Serialize, Deserialize)]
struct Pig {
    seed: u64,
    target: u64,
    players: Vec<Seat>,
    /// Whose turn it is: an index into `players`.
    turn: usize,
    /// What the player whose turn it is has rolled this turn.
    pot: u64,
    /// Rolls so far: each roll draws from its own stream of the seed.
    rolls: u64,
    last_roll: Option<u64>,
    winner: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Seat {
    name: String,
    /// Set for a player with an account: wins are counted for it.
    account: Option<String>,
    score: u64,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Move {
    Roll,
    Hold,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    target: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config { target: 50 }
    }
}

/// What an account has won, kept across sessions (step 4).
#[derive(Serialize, Deserialize)]
struct Stats {
    wins: u64,
}

/// Step 4: where the game keeps things beyond a session. Wins by name on
/// a hot leaderboard; an account's stats in a cold collection.
const WINS: Leaderboard = Leaderboard::new("wins");
const STATS: Records<Stats> = Records::new("stats");

// Step 2: the rules.

impl Rules for Pig {
    type State = Pig;
    type Action<'a> = Move;

    fn describe() -> Info {
        Info {
            name: "pig".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Pig: roll to build your pot, hold to bank it, a 1 loses it.".into(),
            min_players: 2,
            max_players: 4,
            rpcs: vec!["wins".into()],
        }
    }

    fn create(session: &Session, config: Value) -> Result<Pig, GameError> {
        let config: Config = serde_json::from_value(config)
            .map_err(|e| GameError::malformed("bad_config", e.to_string()))?;
        if !(10..=1000).contains(&config.target) {
            return Err(GameError::malformed(
                "bad_config",
                "target must be 10 to 1000",
            ));
        }
        Ok(Pig {
            seed: session.seed,
            target: config.target,
            players: Vec::new(),
            turn: 0,
            pot: 0,
            rolls: 0,
            last_roll: None,
            winner: None,
        })
    }

    fn join(pig: &mut Pig, player: &Player) -> Result<(), GameError> {
        if pig.players.len() == 4 {
            return Err(GameError::Full);
        }
        if pig.rolls > 0 {
            return Err(GameError::illegal("started", "the game has started"));
        }
        pig.players.push(Seat {
            name: player.name.clone(),
            account: player.account.clone(),
            score: 0,
        });
        Ok(())
    }

    fn act(pig: &mut Pig, player: &str, action: Move) -> Result<Option<Value>, GameError> {
        if pig.winner.is_some() {
            return Err(GameError::Finished);
        }
        if pig.players.len() < 2 {
            return Err(GameError::illegal(
                "waiting_for_players",
                "the game starts when two players have joined",
            ));
        }
        if pig.players[pig.turn].name != player {
            return Err(GameError::NotYourTurn);
        }
        match action {
            Move::Roll => {
                // Step 3: randomness from the session's seed, so the game
                // replays exactly from the seed revealed at its end.
                let roll = Rng::seeded(pig.seed, pig.rolls).roll(6);
                pig.rolls += 1;
                pig.last_roll = Some(roll);
                if roll == 1 {
                    pig.pot = 0;
                    pig.pass();
                } else {
                    pig.pot += roll;
                }
                Ok(None)
            }
            Move::Hold => {
                let seat = &mut pig.players[pig.turn];
                seat.score += pig.pot;
                pig.pot = 0;
                if seat.score >= pig.target {
                    pig.winner = Some(seat.name.clone());
                    return pig.finish().map(Some);
                }
                pig.pass();
                Ok(None)
            }
        }
    }

    fn view(pig: &Pig, _player: Option<&str>) -> impl Serialize {
        // Nothing in Pig is hidden: everyone sees the same view.
        json!({
            "players": pig.players.iter().map(|s| json!({"name": s.name, "score": s.score})).collect::<Vec<_>>(),
            "turn": pig.winner.is_none().then(|| pig.players.get(pig.turn).map(|s| &s.name)).flatten(),
            "pot": pig.pot,
            "last_roll": pig.last_roll,
            "target": pig.target,
            "winner": pig.winner,
        })
    }

    // Step 5: a call outside any session, for a lobby's leaderboard.
    fn rpc(name: &str, caller: Option<&Player>, input: Value) -> Result<Value, GameError> {
        Router::new(name, caller, input)
            .on("wins", |_, _: Empty| {
                let top = WINS.top(10)?;
                Ok(json!(
                    top.iter()
                        .map(|e| json!({"player": e.member, "wins": e.score}))
                        .collect::<Vec<_>>()
                ))
            })
            .finish()
    }
}

impl Pig {
    fn pass(&mut self) {
        self.turn = (self.turn + 1) % self.players.len();
    }

    /// Step 4: the game's end in storage. The leaderboard counts wins by
    /// name; an account's wins are also kept in its own record, which
    /// `update` reads, changes and writes back, retrying if another
    /// session wrote it meanwhile.
    fn finish(&self) -> Result<Value, GameError> {
        let winner = &self.players[self.turn];
        WINS.add(&winner.name, 1.0)?;
        let mut wins = None;
        if let Some(account) = &winner.account {
            let stats = STATS.update(account, |stats| Stats {
                wins: stats.map_or(0, |s| s.wins) + 1,
            })?;
            wins = Some(stats.value.wins);
        }
        Ok(json!({
            "winners": [winner.name],
            "scores": self.players.iter().map(|s| json!({"name": s.name, "score": s.score})).collect::<Vec<_>>(),
            "account_wins": wins,
        }))
    }
}

hoard_sdk::export_rules!(Pig);
