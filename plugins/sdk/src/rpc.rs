//! RPC dispatch: an `rpc` call routed by name to a handler taking typed
//! input. The input is the JSON the client sent, read as the handler's
//! type: a document that does not fit is refused with `bad_input` before
//! the handler runs, and a name no handler takes with `unknown_rpc`.
//!
//! ```ignore
//! fn rpc(name: &str, caller: Option<&Player>, input: Value) -> Result<Value, GameError> {
//!     Router::new(name, caller, input)
//!         .on("leaderboard", |_, page: Page| top(page.n))
//!         .on("mine", |caller, _: Empty| mine(caller))
//!         .finish()
//! }
//! ```

use crate::{GameError, Player};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::ops::RangeInclusive;

/// One call being routed.
pub struct Router<'a> {
    name: &'a str,
    caller: Option<&'a Player>,
    input: Value,
    answer: Option<Result<Value, GameError>>,
}

/// An input without fields: `{}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

impl<'a> Router<'a> {
    pub fn new(name: &'a str, caller: Option<&'a Player>, input: Value) -> Self {
        Router {
            name,
            caller,
            input,
            answer: None,
        }
    }

    /// Routes the call named `name` to `handler`.
    pub fn on<I, O>(
        mut self,
        name: &str,
        handler: impl FnOnce(Option<&Player>, I) -> Result<O, GameError>,
    ) -> Self
    where
        I: DeserializeOwned,
        O: Serialize,
    {
        if self.answer.is_some() || self.name != name {
            return self;
        }
        let input = std::mem::take(&mut self.input);
        self.answer = Some(
            object(input, "bad_input")
                .and_then(|input| handler(self.caller, input))
                .and_then(|output| {
                    serde_json::to_value(output)
                        .map_err(|e| GameError::malformed("bad_output", e.to_string()))
                }),
        );
        self
    }

    /// The answer of the handler the call was routed to.
    pub fn finish(self) -> Result<Value, GameError> {
        self.answer.unwrap_or_else(|| {
            Err(GameError::malformed(
                "unknown_rpc",
                format!("no call named {:?}", self.name),
            ))
        })
    }
}

/// A page of a stream, as history-like calls take it: the entries after
/// `after` (default 0: from the start), at most `limit` (default 20).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default)]
    pub after: u64,
    #[serde(default = "Page::default_limit")]
    pub limit: u64,
}

impl Page {
    fn default_limit() -> u64 {
        20
    }

    /// `limit`, if it is 1 to 100.
    pub fn limit(&self) -> Result<u32, GameError> {
        within("limit", self.limit, 1..=100).map(|limit| limit as u32)
    }
}

/// A JSON object read as `T`; anything else (serde would also read a
/// struct from an array of its fields) is refused as malformed with `code`.
pub fn object<T: DeserializeOwned>(value: Value, code: &str) -> Result<T, GameError> {
    if !value.is_object() {
        return Err(GameError::malformed(code, "expected a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| GameError::malformed(code, e.to_string()))
}

/// `value` if it is in `range`, else `bad_input` naming `field`: for the
/// bounds serde does not check.
pub fn within(field: &str, value: u64, range: RangeInclusive<u64>) -> Result<u64, GameError> {
    if range.contains(&value) {
        return Ok(value);
    }
    Err(GameError::malformed(
        "bad_input",
        format!(
            "`{field}` must be a whole number from {} to {}",
            range.start(),
            range.end()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Top {
        n: u64,
    }

    fn route(name: &str, input: Value) -> Result<Value, GameError> {
        let ada = Player {
            name: "ada".into(),
            account: Some("a1".into()),
        };
        Router::new(name, Some(&ada), input)
            .on("top", |_, top: Top| Ok(json!(within("n", top.n, 1..=100)?)))
            .on("who", |caller, _: Empty| Ok(json!(caller.map(|c| &c.name))))
            .on("top", |_, _: Empty| -> Result<Value, GameError> {
                unreachable!("the first handler of a name takes it")
            })
            .finish()
    }

    fn code(result: Result<Value, GameError>) -> String {
        match result {
            Err(GameError::Malformed(problem)) => problem.code,
            other => panic!("not malformed: {other:?}"),
        }
    }

    #[test]
    fn routes_by_name_on_typed_input() {
        assert_eq!(route("top", json!({"n": 7})).unwrap(), json!(7));
        assert_eq!(route("who", json!({})).unwrap(), json!("ada"));
    }

    #[test]
    fn refuses_what_no_handler_takes() {
        assert_eq!(code(route("bottom", json!({}))), "unknown_rpc");
        assert_eq!(code(route("top", json!({"n": "all"}))), "bad_input");
        assert_eq!(code(route("top", json!({"n": 1, "m": 2}))), "bad_input");
        assert_eq!(code(route("who", json!([]))), "bad_input");
        assert_eq!(code(route("top", json!([7]))), "bad_input");
        assert_eq!(code(route("top", json!({"n": 0}))), "bad_input");
        assert_eq!(code(route("top", json!({"n": 101}))), "bad_input");
    }
}
