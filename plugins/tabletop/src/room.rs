//! A tabletop room's rules: plain Rust, built natively too, so property
//! tests and the benchmark call them without the host.
//!
//! The first player to join is the room's game master (GM). Anyone seated
//! places tokens on the grid and moves or removes their own; the GM moves
//! and removes any, may place hidden tokens only the GM sees, and may let
//! players move every token. Dice are rolled from the session's seed, roll
//! `n` from stream `n`, and every roll is logged with its expression and
//! each die. Chat keeps the last [`CHAT_KEPT`] messages. The GM closes the
//! room, which ends the session (and reveals the seed, so every roll can be
//! replayed).

use crate::dice::{self, DiceError, Rolled};
use hoard_sdk::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::VecDeque;

pub const PLAYERS_MAX: usize = 10;
pub const SIDE_MAX: u16 = 100;
pub const TOKENS_MAX: usize = 200;
pub const NAME_MAX_CHARS: usize = 40;
pub const CHAT_MAX_CHARS: usize = 500;
pub const CHAT_KEPT: usize = 50;
pub const ROLLS_KEPT: usize = 50;

/// A game system's stat block: what a template gives a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatBlock {
    pub name: String,
    pub hp: i64,
    /// Armour class: an attack hits if its roll is at least this.
    pub ac: i64,
    /// Squares per move.
    pub speed: u16,
    pub attacks: Vec<Attack>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attack {
    pub name: String,
    /// The roll to hit, e.g. `1d20+4`.
    pub hit: String,
    /// The damage on a hit, e.g. `1d6+2`.
    pub damage: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub x: u16,
    pub y: u16,
    /// Seen only by the GM until revealed.
    pub hidden: bool,
    /// The template it was made from (`goblin`), and its stat block.
    pub template: Option<String>,
    pub stats: Option<StatBlock>,
    /// Hit points left, for a token with stats.
    pub hp: Option<i64>,
}

/// One roll, as logged: enough to audit and replay it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roll {
    /// The roll's number in the room: its dice come from stream `n`.
    pub n: u64,
    pub by: String,
    pub expr: String,
    pub label: Option<String>,
    pub terms: Vec<Rolled>,
    pub total: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub n: u64,
    pub by: String,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: String,
    seed: u64,
    pub width: u16,
    pub height: u16,
    /// The game system whose templates tokens are made from.
    pub system: String,
    /// Seated players, the GM first.
    pub players: Vec<String>,
    /// Whether players may move tokens that are not theirs.
    pub free_movement: bool,
    pub tokens: Vec<Token>,
    tokens_made: u64,
    /// Rolls made so far, and the last [`ROLLS_KEPT`].
    pub rolls: u64,
    pub roll_log: VecDeque<Roll>,
    /// Messages sent so far, and the last [`CHAT_KEPT`].
    pub messages: u64,
    pub chat: VecDeque<Message>,
    pub closed: bool,
}

/// The room's settings, from the session's config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub width: u16,
    pub height: u16,
    pub system: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            width: 20,
            height: 20,
            system: "basic".into(),
        }
    }
}

/// What a player sends.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Places a token; with `template`, one of the system's stat blocks.
    /// Only the GM places `hidden` ones.
    AddToken {
        name: String,
        x: u16,
        y: u16,
        #[serde(default)]
        template: Option<String>,
        #[serde(default)]
        hidden: bool,
    },
    MoveToken {
        token: String,
        x: u16,
        y: u16,
    },
    RemoveToken {
        token: String,
    },
    /// GM: shows a hidden token to everyone.
    Reveal {
        token: String,
    },
    /// Rolls a dice expression (`2d20kh1+3`).
    Roll {
        dice: String,
        #[serde(default)]
        label: Option<String>,
    },
    /// `token` uses its stat block's attack `attack` on `target`: a roll
    /// to hit against the target's AC, then damage on a hit. Both logged.
    Attack {
        token: String,
        target: String,
        attack: String,
    },
    Chat {
        text: String,
    },
    /// Answered to its sender alone; nothing changes (a round trip a
    /// client can time).
    Echo {
        text: String,
    },
    /// Said to everyone in the room now, as a message on the room's
    /// sockets; not kept in the chat.
    Shout {
        text: String,
    },
    /// GM: whether players may move every token.
    FreeMovement {
        allowed: bool,
    },
    /// GM: ends the room.
    Close,
}

pub use hoard_sdk::Refusal;

fn illegal(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::Illegal(code, message.into())
}

fn malformed(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::Malformed(code, message.into())
}

fn dice_refusal(error: DiceError) -> Refusal {
    match error {
        DiceError::Malformed(message) => malformed("bad_dice", message),
        DiceError::TooLarge(message) => malformed("dice_too_large", message),
    }
}

/// A chat line, an echo or a shout: 1 to [`CHAT_MAX_CHARS`] characters,
/// no control characters.
pub fn check_message(text: &str) -> Result<(), Refusal> {
    check_text("a message", text, CHAT_MAX_CHARS)
}

/// A name a player gives: 1 to [`NAME_MAX_CHARS`] characters, no control
/// characters.
fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), Refusal> {
    let chars = text.chars().count();
    if chars == 0 || text.trim().is_empty() {
        return Err(malformed("bad_text", format!("{field} is empty")));
    }
    if chars > max {
        return Err(malformed(
            "text_too_long",
            format!("{field} is at most {max} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(malformed(
            "bad_text",
            format!("{field} has control characters"),
        ));
    }
    Ok(())
}

impl Room {
    pub fn new(id: &str, seed: u64, config: Config) -> Result<Room, Refusal> {
        if !(1..=SIDE_MAX).contains(&config.width) || !(1..=SIDE_MAX).contains(&config.height) {
            return Err(malformed(
                "bad_config",
                format!("the board is 1 to {SIDE_MAX} squares a side"),
            ));
        }
        let system_ok = !config.system.is_empty()
            && config.system.len() <= 32
            && config
                .system
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !system_ok {
            return Err(malformed(
                "bad_config",
                "system is 1 to 32 of a-z, 0-9 and -",
            ));
        }
        Ok(Room {
            id: id.to_owned(),
            seed,
            width: config.width,
            height: config.height,
            system: config.system,
            players: Vec::new(),
            free_movement: false,
            tokens: Vec::new(),
            tokens_made: 0,
            rolls: 0,
            roll_log: VecDeque::new(),
            messages: 0,
            chat: VecDeque::new(),
            closed: false,
        })
    }

    pub fn gm(&self) -> Option<&str> {
        self.players.first().map(String::as_str)
    }

    fn is_gm(&self, player: &str) -> bool {
        self.gm() == Some(player)
    }

    pub fn join(&mut self, player: &str) -> Result<(), Refusal> {
        if self.closed {
            return Err(Refusal::Finished);
        }
        if self.players.len() >= PLAYERS_MAX {
            return Err(Refusal::Full);
        }
        self.players.push(player.to_owned());
        Ok(())
    }

    /// The template key (`system:template`) `action` needs read, if any:
    /// the plugin reads it (through its cache) and passes the stat block
    /// to [`Room::act`].
    pub fn template_key(&self, action: &Action) -> Option<String> {
        match action {
            Action::AddToken {
                template: Some(template),
                ..
            } => Some(format!("{}:{template}", self.system)),
            _ => None,
        }
    }

    /// Token `id`'s index, if `player` can see it: to anyone but the GM a
    /// hidden token does not exist.
    fn token(&self, player: &str, id: &str) -> Result<usize, Refusal> {
        let gm = self.is_gm(player);
        self.tokens
            .iter()
            .position(|t| t.id == id && (gm || !t.hidden))
            .ok_or_else(|| illegal("unknown_token", format!("no token {id:?}")))
    }

    fn on_board(&self, x: u16, y: u16) -> Result<(), Refusal> {
        if x >= self.width || y >= self.height {
            return Err(illegal(
                "out_of_bounds",
                format!("({x}, {y}) is off the {}x{} board", self.width, self.height),
            ));
        }
        Ok(())
    }

    /// Whether `player` may move or remove token `index`.
    fn controls(&self, player: &str, index: usize, moving: bool) -> Result<(), Refusal> {
        let token = &self.tokens[index];
        if token.owner == player || self.is_gm(player) || (moving && self.free_movement) {
            return Ok(());
        }
        Err(illegal(
            "not_your_token",
            format!("{} belongs to {}", token.id, token.owner),
        ))
    }

    fn gm_only(&self, player: &str, what: &str) -> Result<(), Refusal> {
        if self.is_gm(player) {
            Ok(())
        } else {
            Err(illegal("gm_only", format!("only the GM may {what}")))
        }
    }

    /// Rolls `expr` as roll number `self.rolls` and logs it.
    fn roll(&mut self, player: &str, expr: &str, label: Option<String>) -> Result<&Roll, Refusal> {
        let parsed = dice::parse(expr).map_err(dice_refusal)?;
        let n = self.rolls;
        let (terms, total) = parsed.roll(&mut Rng::seeded(self.seed, n));
        self.rolls += 1;
        if self.roll_log.len() == ROLLS_KEPT {
            self.roll_log.pop_front();
        }
        self.roll_log.push_back(Roll {
            n,
            by: player.to_owned(),
            expr: expr.to_owned(),
            label,
            terms,
            total,
        });
        Ok(self.roll_log.back().expect("just pushed"))
    }

    /// Applies `player`'s action; `stats` is the stat block of the template
    /// [`Room::template_key`] named, if it exists. Returns the rolls the
    /// action made. On error nothing changes.
    pub fn act(
        &mut self,
        player: &str,
        action: Action,
        stats: Option<StatBlock>,
    ) -> Result<Vec<Roll>, Refusal> {
        if !self.players.iter().any(|p| p == player) {
            return Err(Refusal::NotSeated);
        }
        if self.closed {
            return Err(Refusal::Finished);
        }
        match action {
            Action::AddToken {
                name,
                x,
                y,
                template,
                hidden,
            } => {
                check_text("a token's name", &name, NAME_MAX_CHARS)?;
                self.on_board(x, y)?;
                if hidden {
                    self.gm_only(player, "place hidden tokens")?;
                }
                if self.tokens.len() >= TOKENS_MAX {
                    return Err(illegal(
                        "too_many_tokens",
                        format!("a room holds at most {TOKENS_MAX} tokens"),
                    ));
                }
                if let (Some(template), None) = (&template, &stats) {
                    return Err(illegal(
                        "unknown_template",
                        format!("{} has no template {template:?}", self.system),
                    ));
                }
                let stats = template.as_ref().and(stats);
                self.tokens_made += 1;
                self.tokens.push(Token {
                    id: format!("t{}", self.tokens_made),
                    name,
                    owner: player.to_owned(),
                    x,
                    y,
                    hidden,
                    template,
                    hp: stats.as_ref().map(|s| s.hp),
                    stats,
                });
                Ok(Vec::new())
            }
            Action::MoveToken { token, x, y } => {
                let index = self.token(player, &token)?;
                self.controls(player, index, true)?;
                self.on_board(x, y)?;
                let token = &mut self.tokens[index];
                (token.x, token.y) = (x, y);
                Ok(Vec::new())
            }
            Action::RemoveToken { token } => {
                let index = self.token(player, &token)?;
                self.controls(player, index, false)?;
                self.tokens.remove(index);
                Ok(Vec::new())
            }
            Action::Reveal { token } => {
                let index = self.token(player, &token)?;
                self.gm_only(player, "reveal tokens")?;
                self.tokens[index].hidden = false;
                Ok(Vec::new())
            }
            Action::Roll { dice, label } => {
                if let Some(label) = &label {
                    check_text("a roll's label", label, NAME_MAX_CHARS)?;
                }
                Ok(vec![self.roll(player, &dice, label)?.clone()])
            }
            Action::Attack {
                token,
                target,
                attack,
            } => self.attack(player, &token, &target, &attack),
            Action::Chat { text } => {
                check_message(&text)?;
                self.messages += 1;
                if self.chat.len() == CHAT_KEPT {
                    self.chat.pop_front();
                }
                self.chat.push_back(Message {
                    n: self.messages,
                    by: player.to_owned(),
                    text,
                });
                Ok(Vec::new())
            }
            // The plugin answers these before the room is read; here they
            // change nothing either.
            Action::Echo { text } | Action::Shout { text } => {
                check_message(&text)?;
                Ok(Vec::new())
            }
            Action::FreeMovement { allowed } => {
                self.gm_only(player, "let players move every token")?;
                self.free_movement = allowed;
                Ok(Vec::new())
            }
            Action::Close => {
                self.gm_only(player, "close the room")?;
                self.closed = true;
                Ok(Vec::new())
            }
        }
    }

    fn attack(
        &mut self,
        player: &str,
        token: &str,
        target: &str,
        attack: &str,
    ) -> Result<Vec<Roll>, Refusal> {
        let attacker = self.token(player, token)?;
        self.controls(player, attacker, false)?;
        let defender = self.token(player, target)?;
        let no_stats = |id: &str| illegal("no_stats", format!("{id} has no stat block"));
        let stats = self.tokens[attacker]
            .stats
            .as_ref()
            .ok_or_else(|| no_stats(token))?;
        let ac = self.tokens[defender]
            .stats
            .as_ref()
            .ok_or_else(|| no_stats(target))?
            .ac;
        let chosen = stats
            .attacks
            .iter()
            .find(|a| a.name == attack)
            .cloned()
            .ok_or_else(|| {
                illegal(
                    "unknown_attack",
                    format!("{token} has no attack {attack:?}"),
                )
            })?;
        // Both expressions must read before anything is rolled: a refusal
        // changes nothing.
        dice::parse(&chosen.hit).map_err(dice_refusal)?;
        dice::parse(&chosen.damage).map_err(dice_refusal)?;
        let label = Some(format!("{} to hit", chosen.name));
        let hit = self.roll(player, &chosen.hit, label)?.clone();
        let mut rolls = vec![hit.clone()];
        if hit.total >= ac {
            let label = Some(format!("{} damage", chosen.name));
            let damage = self.roll(player, &chosen.damage, label)?.clone();
            let hp = self.tokens[defender].hp.get_or_insert(0);
            *hp = (*hp - damage.total.max(0)).max(0);
            rolls.push(damage);
        }
        Ok(rolls)
    }

    /// The room's end, for the session's outcome.
    pub fn outcome(&self) -> Option<Value> {
        self.closed.then(|| {
            json!({
                "players": self.players,
                "rolls": self.rolls,
                "messages": self.messages,
                "tokens": self.tokens.len(),
            })
        })
    }

    /// The room as `player` sees it: hidden tokens only for the GM.
    pub fn view(&self, player: Option<&str>) -> Value {
        let gm = player.is_some_and(|p| self.is_gm(p));
        let tokens: Vec<&Token> = self.tokens.iter().filter(|t| gm || !t.hidden).collect();
        json!({
            "room": self.id,
            "width": self.width,
            "height": self.height,
            "system": self.system,
            "gm": self.gm(),
            "players": self.players,
            "free_movement": self.free_movement,
            "tokens": tokens,
            "rolls": self.roll_log,
            "chat": self.chat,
            "closed": self.closed,
        })
    }
}
