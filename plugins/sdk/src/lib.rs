//! # hoard-sdk: write a hoard game plugin in Rust
//!
//! The generated bindings of hoard's WIT (`wit/` at the repository root),
//! with shorter names and a few helpers:
//!
//! - [`hot`] and [`cold`]: the storage a plugin gets (keys, hashes,
//!   leaderboards; versioned JSON records, transactions, history).
//! - [`Game`]: the trait a plugin implements; [`export!`] registers it.
//! - [`GameError`] helpers: [`GameError::illegal`], [`GameError::malformed`],
//!   and `?` on a storage call turns its error into [`GameError::Storage`].
//!   [`Refusal`]: the same refusals as a plain type for rules that also
//!   build natively; `?` turns it into a [`GameError`].
//! - [`Rules`] and [`export_rules!`]: a game on typed state and actions; the
//!   SDK does the bytes, the JSON and the refusals. `plugins/sdk/README.md`
//!   builds one step by step.
//! - Typed storage, each naming its key once and doing the JSON:
//!   [`Records`] (a cold collection, with [`Records::update`], a
//!   read-modify-write that retries on `conflict`), [`Key`] (a hot value
//!   with a TTL), [`Counter`], [`Leaderboard`], [`History`] (a stream).
//! - [`Cache`]: cold records read through hot (cache-aside), hits and
//!   misses counted. [`Install`]: reference data a plugin ships, written
//!   to cold once.
//! - [`WriteBehind`]: a hot value copied to cold by an alarm every few
//!   seconds.
//! - [`alarms`] and [`TurnClock`]: call me back on this session later.
//! - [`tell_session`]: a message to the session's WebSockets (chat,
//!   effects) that is not part of its state.
//! - [`Router`]: `rpc` calls dispatched by name to handlers on typed input.
//! - [`Rng`]: random numbers from the session's seed, so a session replays.
//! - [`log`]: lines for the host's log, with a level, tagged by the host
//!   with the plugin, its version and the session.
//!
//! ```ignore
//! struct MyGame;
//! impl hoard_sdk::Game for MyGame { /* describe, create, join, act, view */ }
//! impl hoard_sdk::Upgrade for MyGame { /* upgrade: earlier versions' state */ }
//! impl hoard_sdk::Accounts for MyGame { /* the collections keyed by account */ }
//! hoard_sdk::export!(MyGame);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`: the result is a
//! component the host loads (`hoard plugin check FILE.wasm` tells whether it
//! fits).

wit_bindgen::generate!({
    path: "../../wit",
    world: "upgradable",
    pub_export_macro: true,
    export_macro_name: "export",
    default_bindings_module: "hoard_sdk",
});

pub use cache::{Cache, CacheStats};
pub use clock::TurnClock;
pub use exports::hoard::plugin::accounts::Guest as Accounts;
pub use exports::hoard::plugin::game::{
    GameError, Guest as Game, Info, Player, Problem, Session, Turn,
};
pub use exports::hoard::plugin::upgrade::Guest as Upgrade;
pub use history::{Entry, History};
pub use hoard::plugin::{alarms, cold, hot, types};
pub use install::Install;
pub use keys::{Counter, Key, Leaderboard};
pub use records::{Records, UPDATE_TRIES, Versioned};
pub use refusal::Refusal;
pub use rng::Rng;
pub use rpc::Router;
pub use rules::Rules;
pub use write_behind::WriteBehind;

mod cache;
mod clock;
mod history;
mod install;
mod keys;
pub mod log;
mod records;
mod refusal;
mod rng;
pub mod rpc;
pub mod rules;
pub mod write_behind;

impl GameError {
    /// The rules forbid this action now; `code` is a stable snake_case name.
    pub fn illegal(code: &str, message: impl Into<String>) -> Self {
        GameError::Illegal(Problem {
            code: code.to_owned(),
            message: message.into(),
        })
    }

    /// The action or config is not well formed.
    pub fn malformed(code: &str, message: impl Into<String>) -> Self {
        GameError::Malformed(Problem {
            code: code.to_owned(),
            message: message.into(),
        })
    }
}

impl From<types::Error> for GameError {
    fn from(error: types::Error) -> Self {
        GameError::Storage(error)
    }
}

/// Sends `message` to the WebSockets of the session being played: every
/// player and spectator connected gets it as a `message` event, in order
/// with the session's changes, once the current call's change is stored (a
/// call that fails sends nothing). For what is not part of the state:
/// chat, effects, sounds. Only during a call on a session (`join`, `act`,
/// `on-alarm`); it publishes on the channel `session` (see `hot::publish`).
pub fn tell_session(message: &impl serde::Serialize) -> Result<(), GameError> {
    let json = serde_json::to_vec(message).map_err(|e| misfit("message", "the message", e))?;
    Ok(hot::publish("session", &json)?)
}

/// A storage error naming an argument at fault.
fn invalid(field: &str, reason: String) -> GameError {
    GameError::Storage(types::Error::Invalid(types::Invalid {
        field: field.to_owned(),
        reason,
    }))
}

/// A stored value (`what`) that does not fit the type it is read as, or a
/// value that does not serialize.
fn misfit(field: &str, what: &str, error: serde_json::Error) -> GameError {
    invalid(field, format!("{what} does not fit its type: {error}"))
}
