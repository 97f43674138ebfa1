//! Why rules refuse: a plain type a game's rules return (they build
//! natively too, for property tests and benchmarks), turned into the
//! contract's [`GameError`] by `?` in the plugin.

use crate::GameError;

/// Why an action, a join or a config is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not well formed: a stable snake_case code and a message.
    Malformed(&'static str, String),
    /// Against the rules now: a stable snake_case code and a message.
    Illegal(&'static str, String),
    NotYourTurn,
    Full,
    NotSeated,
    Finished,
}

impl From<Refusal> for GameError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Malformed(code, message) => GameError::malformed(code, message),
            Refusal::Illegal(code, message) => GameError::illegal(code, message),
            Refusal::NotYourTurn => GameError::NotYourTurn,
            Refusal::Full => GameError::Full,
            Refusal::NotSeated => GameError::NotSeated,
            Refusal::Finished => GameError::Finished,
        }
    }
}
