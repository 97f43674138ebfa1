//! A game as typed rules: the state and the actions are serde types, and
//! the SDK does the bytes, the JSON and the refusals. Implement [`Rules`]
//! and export it with [`export_rules!`](crate::export_rules).
//!
//! The state is kept as JSON by default, so a session's state can be read
//! (and upgraded) by anyone holding it; a game whose state must be small
//! or fast overrides [`Rules::encode`] and [`Rules::decode`] (Hokm keeps
//! postcard).
//!
//! An instance serves one session, and the SDK keeps the state it decoded
//! or encoded last, with its bytes: a call whose state is those bytes (the
//! view after an action, each player's view of it) starts from the kept
//! state instead of decoding again. The host's bytes stay the truth: any
//! other bytes are decoded as they come, so a game must decode its own
//! encoding to the same state (`decode(encode(s))` behaves as `s`), as it
//! must anyway for a session to survive a restart.

use crate::{GameError, Info, Player, Session, Turn};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The rules of a game, on typed state.
pub trait Rules {
    /// Everything a session of the game is, between calls.
    type State: Serialize + DeserializeOwned + 'static;
    /// One move, as a player sends it (a JSON object; a serde enum with
    /// `#[serde(tag = "type")]` reads `{"type": "roll"}`). The lifetime
    /// lets an action borrow strings from the text it was read from; an
    /// action that owns its data ignores it: `type Action<'a> = Move;`.
    type Action<'a>: Deserialize<'a>;

    /// The cold collections whose records are a player's own, keyed by
    /// their account's id (`player.account`): they move with the account
    /// between hosts (`POST /v1/accounts/me/export` and `/import`). None by
    /// default.
    const ACCOUNT_COLLECTIONS: &'static [&'static str] = &[];

    /// Describes the game for the lobby.
    fn describe() -> Info;

    /// The first state, from the client's config (`{}` for the defaults).
    fn create(session: &Session, config: Value) -> Result<Self::State, GameError>;

    /// Seats `player`.
    fn join(state: &mut Self::State, player: &Player) -> Result<(), GameError>;

    /// Applies `player`'s action; the outcome (winners, scores) once the
    /// game has ended. On an error the state you changed is dropped and the
    /// session keeps the one it had; storage writes made before the error
    /// stand.
    fn act(
        state: &mut Self::State,
        player: &str,
        action: Self::Action<'_>,
    ) -> Result<Option<Value>, GameError>;

    /// An action that needs no state (an echo, a shout to the room with
    /// [`tell_session`](crate::tell_session)): answered before the state
    /// is decoded, which stays as it was. `None` (the default) sends the
    /// action on to [`Rules::act`]. A room whose state is large answers
    /// such actions here without paying to decode it, and the host, seeing
    /// nothing changed, stores nothing.
    fn act_stateless(player: &str, action: &Self::Action<'_>) -> Option<Result<(), GameError>> {
        let _ = (player, action);
        None
    }

    /// What `player` may see (`None`: a spectator): a [`Value`], or any
    /// type that serializes to JSON. A view is rendered for every player
    /// after every action, so a game played fast returns a typed view
    /// (`#[derive(Serialize)]`, borrowing from the state) that goes
    /// straight to text, rather than building a `Value` first.
    fn view(state: &Self::State, player: Option<&str>) -> impl Serialize;

    /// An alarm set with [`alarms::set`](crate::alarms::set) is due:
    /// `payload` as JSON, or as a JSON string if it was not JSON. (The
    /// alarms of a [`WriteBehind`](crate::WriteBehind) are handled before
    /// this is called, and never reach it.)
    fn on_alarm(state: &mut Self::State, payload: Value) -> Result<Option<Value>, GameError> {
        let _ = (state, payload);
        Ok(None)
    }

    /// A call outside any session, one of `describe().rpcs`.
    fn rpc(name: &str, caller: Option<&Player>, input: Value) -> Result<Value, GameError> {
        let _ = (caller, input);
        Err(GameError::malformed(
            "unknown_rpc",
            format!("no call named {name:?}"),
        ))
    }

    /// A running session's state, which the game's version `from` (its
    /// `describe().version`) wrote, as this version's state: called when a
    /// new version of the plugin is deployed, at the session's next call.
    /// The default decodes the bytes as they are, which suits a JSON state
    /// that only gained fields (`#[serde(default)]`); a game whose state
    /// changed shape reads the old one ([`decode_json`] with the old type)
    /// and builds the new. A game whose encoding does not describe itself
    /// (postcard) should refuse versions it does not know, as Hokm does:
    /// an old layout may decode as garbage rather than fail. An error
    /// keeps the session on version `from` while the host has it loaded.
    /// Storage is refused during `upgrade`: it may run again for the same
    /// state.
    fn upgrade(state: &[u8], from: &str) -> Result<Self::State, GameError> {
        let _ = from;
        Self::decode(state)
    }

    /// The state as the bytes the host keeps: JSON unless overridden.
    fn encode(state: &Self::State) -> Vec<u8> {
        serde_json::to_vec(state).expect("a game's state serializes")
    }

    /// The state from bytes [`Rules::encode`] made.
    fn decode(state: &[u8]) -> Result<Self::State, GameError> {
        serde_json::from_slice(state).map_err(|e| malformed("bad_state", e))
    }
}

/// State kept as JSON (the default encoding), read as `T`: an earlier
/// version's state type, in [`Rules::upgrade`]. A state that does not read
/// as `T` is refused with `bad_state`.
pub fn decode_json<T: DeserializeOwned>(state: &[u8]) -> Result<T, GameError> {
    serde_json::from_slice(state).map_err(|e| malformed("bad_state", e))
}

fn malformed(code: &str, error: serde_json::Error) -> GameError {
    GameError::malformed(code, error.to_string())
}

/// The state after a call that changed it: encoded for the host, and
/// kept decoded for the next call.
fn turn<R: Rules>(state: R::State, outcome: Option<Value>) -> Turn {
    Turn {
        state: kept::keep::<R>(state),
        outcome: outcome.map(|o| o.to_string()),
    }
}

/// The last state this instance decoded or encoded, beside its bytes.
mod kept {
    use super::Rules;
    use crate::GameError;
    use std::any::Any;
    use std::cell::RefCell;

    struct Kept {
        bytes: Vec<u8>,
        state: Box<dyn Any>,
    }

    thread_local! {
        static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
    }

    /// The state `bytes` encode, taken from the one kept if it is theirs
    /// (nothing is kept after), decoded otherwise.
    pub(super) fn take<R: Rules>(bytes: &[u8]) -> Result<R::State, GameError> {
        let kept = KEPT.with_borrow_mut(|kept| match kept.take() {
            Some(k) if k.bytes == bytes => k.state.downcast::<R::State>().ok(),
            _ => None,
        });
        match kept {
            Some(state) => Ok(*state),
            None => R::decode(bytes),
        }
    }

    /// Runs `f` on the state `bytes` encode, and keeps it.
    pub(super) fn with<R: Rules, T>(
        bytes: Vec<u8>,
        f: impl FnOnce(&R::State) -> T,
    ) -> Result<T, GameError> {
        let state = take::<R>(&bytes)?;
        let answer = f(&state);
        KEPT.set(Some(Kept {
            bytes,
            state: Box::new(state),
        }));
        Ok(answer)
    }

    /// Encodes `state` for the host, and keeps it.
    pub(super) fn keep<R: Rules>(state: R::State) -> Vec<u8> {
        let bytes = R::encode(&state);
        KEPT.set(Some(Kept {
            bytes: bytes.clone(),
            state: Box::new(state),
        }));
        bytes
    }
}

/// The glue [`export_rules!`](crate::export_rules) calls: each function is
/// one export of the game interface, on bytes and JSON text.
#[doc(hidden)]
pub mod glue {
    use super::*;

    pub fn create<R: Rules>(session: Session, config: String) -> Result<Vec<u8>, GameError> {
        let config = serde_json::from_str(&config).map_err(|e| malformed("bad_config", e))?;
        Ok(kept::keep::<R>(R::create(&session, config)?))
    }

    pub fn join<R: Rules>(state: Vec<u8>, player: Player) -> Result<Vec<u8>, GameError> {
        let mut state = kept::take::<R>(&state)?;
        R::join(&mut state, &player)?;
        Ok(kept::keep::<R>(state))
    }

    pub fn act<R: Rules>(
        state: Vec<u8>,
        player: String,
        action: String,
    ) -> Result<Turn, GameError> {
        let action = serde_json::from_str(&action).map_err(|e| malformed("bad_action", e))?;
        if let Some(answer) = R::act_stateless(&player, &action) {
            answer?;
            return Ok(Turn {
                state,
                outcome: None,
            });
        }
        let mut state = kept::take::<R>(&state)?;
        let outcome = R::act(&mut state, &player, action)?;
        Ok(turn::<R>(state, outcome))
    }

    pub fn on_alarm<R: Rules>(state: Vec<u8>, payload: String) -> Result<Turn, GameError> {
        if crate::write_behind::handle(&payload)? {
            return Ok(Turn {
                state,
                outcome: None,
            });
        }
        let mut state = kept::take::<R>(&state)?;
        // A payload set as plain text arrives as a JSON string.
        let payload = serde_json::from_str(&payload).unwrap_or(Value::String(payload));
        let outcome = R::on_alarm(&mut state, payload)?;
        Ok(turn::<R>(state, outcome))
    }

    pub fn rpc<R: Rules>(
        name: String,
        caller: Option<Player>,
        input: String,
    ) -> Result<String, GameError> {
        let input = serde_json::from_str(&input).map_err(|e| malformed("bad_input", e))?;
        Ok(R::rpc(&name, caller.as_ref(), input)?.to_string())
    }

    pub fn upgrade<R: Rules>(state: Vec<u8>, from: String) -> Result<Vec<u8>, GameError> {
        Ok(kept::keep::<R>(R::upgrade(&state, &from)?))
    }

    pub fn view<R: Rules>(state: Vec<u8>, player: Option<String>) -> Result<String, GameError> {
        kept::with::<R, _>(state, |state| {
            serde_json::to_string(&R::view(state, player.as_deref()))
                .map_err(|e| GameError::malformed("bad_view", e.to_string()))
        })?
    }
}

/// Exports a [`Rules`] type as the plugin's game.
///
/// ```ignore
/// struct Pig;
/// impl hoard_sdk::Rules for Pig { /* ... */ }
/// hoard_sdk::export_rules!(Pig);
/// ```
#[macro_export]
macro_rules! export_rules {
    ($rules:ty) => {
        struct __HoardRules;

        impl $crate::Game for __HoardRules {
            fn describe() -> $crate::Info {
                <$rules as $crate::Rules>::describe()
            }
            fn create(
                session: $crate::Session,
                config: String,
            ) -> Result<Vec<u8>, $crate::GameError> {
                $crate::rules::glue::create::<$rules>(session, config)
            }
            fn join(state: Vec<u8>, player: $crate::Player) -> Result<Vec<u8>, $crate::GameError> {
                $crate::rules::glue::join::<$rules>(state, player)
            }
            fn act(
                state: Vec<u8>,
                player: String,
                action: String,
            ) -> Result<$crate::Turn, $crate::GameError> {
                $crate::rules::glue::act::<$rules>(state, player, action)
            }
            fn on_alarm(
                state: Vec<u8>,
                payload: String,
            ) -> Result<$crate::Turn, $crate::GameError> {
                $crate::rules::glue::on_alarm::<$rules>(state, payload)
            }
            fn rpc(
                name: String,
                caller: Option<$crate::Player>,
                input: String,
            ) -> Result<String, $crate::GameError> {
                $crate::rules::glue::rpc::<$rules>(name, caller, input)
            }
            fn view(state: Vec<u8>, player: Option<String>) -> Result<String, $crate::GameError> {
                $crate::rules::glue::view::<$rules>(state, player)
            }
        }

        impl $crate::Upgrade for __HoardRules {
            fn upgrade(state: Vec<u8>, from: String) -> Result<Vec<u8>, $crate::GameError> {
                $crate::rules::glue::upgrade::<$rules>(state, from)
            }
        }

        impl $crate::Accounts for __HoardRules {
            fn account_collections() -> Vec<String> {
                <$rules as $crate::Rules>::ACCOUNT_COLLECTIONS
                    .iter()
                    .map(|collection| (*collection).to_owned())
                    .collect()
            }
        }

        $crate::export!(__HoardRules);
    };
}
