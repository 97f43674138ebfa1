//! A test plugin that does what its actions say: store and read through
//! every storage call, or misbehave (trap, loop forever, eat memory). The
//! host's tests use it to prove isolation and limits; it is not a game.
//!
//! State: a JSON document `{"players": [{"name", "account"}, ...], "last":
//! <result of the last action>}`; the view shows it whole.

use hoard_sdk::{
    Cache, GameError, Info, Player, Records, Session, Turn, WriteBehind, alarms, cold, hot, types,
    write_behind,
};
use serde::Deserialize;
use serde_json::{Number, Value, json};
use std::borrow::Cow;
use std::cell::Cell;

struct Probe;

/// One action. Typed and borrowed from the action text, so a storage call
/// costs the probe little: the host's benchmark measures through it.
#[derive(Deserialize)]
struct Action<'a> {
    #[serde(rename = "do", borrow)]
    op: Cow<'a, str>,
    #[serde(default, borrow)]
    key: Cow<'a, str>,
    #[serde(default, borrow)]
    value: Cow<'a, str>,
    #[serde(default, borrow)]
    member: Cow<'a, str>,
    #[serde(default, borrow)]
    collection: Cow<'a, str>,
    #[serde(default, borrow)]
    body: Cow<'a, str>,
    ttl_ms: Option<u64>,
    delta: Option<Number>,
    score: Option<f64>,
    expected: Option<u64>,
    bytes: Option<u64>,
    /// An alarm's id (`alarm-cancel`).
    id: Option<u64>,
    /// Report how long the storage call took, as the plugin saw it:
    /// `last` becomes `{"ns": <nanoseconds or null>, "result": <result>}`.
    #[serde(default)]
    timed: bool,
}

const LAST: &[u8] = b",\"last\":";

fn load(state: &[u8]) -> Value {
    serde_json::from_slice(state).unwrap_or_else(|_| json!({"players": [], "last": null}))
}

/// `state` with its `last` replaced, without parsing the players: the
/// state is always `{"players":[...],"last":...}` as written here, and
/// `,"last":` cannot occur inside a JSON string (its quote would be escaped).
fn with_last(state: &[u8], last: &Value) -> Vec<u8> {
    match state.windows(LAST.len()).position(|w| w == LAST) {
        Some(at) if state.starts_with(b"{\"players\":") => {
            let mut next = state[..at + LAST.len()].to_vec();
            serde_json::to_writer(&mut next, last).expect("a value serializes");
            next.push(b'}');
            next
        }
        _ => {
            let mut state = load(state);
            state["last"] = last.clone();
            save(&state)
        }
    }
}

/// Writes the state with `players` first and `last` last, as `with_last`
/// expects.
fn save(state: &Value) -> Vec<u8> {
    let mut out = b"{\"players\":".to_vec();
    serde_json::to_writer(&mut out, &state["players"]).expect("a value serializes");
    out.extend_from_slice(LAST);
    serde_json::to_writer(&mut out, &state["last"]).expect("a value serializes");
    out.push(b'}');
    out
}

fn storage_error(error: types::Error) -> Value {
    json!({"error": format!("{error:?}")})
}

/// Global state inside the instance: a session must never see another
/// session's count.
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// How long this action's storage call took, timed inside the plugin
    /// around the call alone: what one capability costs through the host,
    /// without the cost of calling the plugin. The host's benchmark compares
    /// it with the same command sent straight to the server.
    static CALL_NS: Cell<Option<u64>> = const { Cell::new(None) };
}

/// What a game does when a match ends, in one action: history, leaderboard
/// and a counter. Tests retry it and count.
fn record_match(key: &str, action: &Action) -> Result<Value, types::Error> {
    let seq = cold::append_history(key, &action.body)?;
    let score = hot::leaderboard_incr(key, &action.member, 1.0)?;
    let count = hot::incr(key, 1)?;
    Ok(json!([seq, score, count]))
}

#[derive(serde::Serialize, Deserialize)]
struct Tally {
    n: u64,
}

fn bump(key: &str) -> Result<i64, types::Error> {
    let now = hot::get(key)?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    hot::set(key, (now + 1).to_string().as_bytes(), None)?;
    Ok(now + 1)
}

fn json_body(action: &Action) -> Result<Value, GameError> {
    serde_json::from_str(&action.body).map_err(|e| GameError::malformed("bad_body", e.to_string()))
}

fn write_behind(action: &Action) -> WriteBehind<Value> {
    let every_ms = action.ttl_ms.unwrap_or(1_000);
    WriteBehind::new(&action.key, &action.collection, &action.member, every_ms)
}

fn timed<T>(call: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let result = call();
    let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    CALL_NS.set(Some(ns));
    result
}

fn run(action: &Action) -> Result<Value, GameError> {
    let key = &action.key;
    let result = match action.op.as_ref() {
        // The action succeeds; rendering the state afterwards traps.
        "break-view" => return Ok(json!("break-view")),
        "count" => {
            return Ok(json!(
                CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
            ));
        }
        "trap" => panic!("the probe was told to trap"),
        // `bytes` lines of `body` at level `member`, through the SDK.
        "log" => {
            let lines = action.bytes.unwrap_or(1);
            for _ in 0..lines {
                match action.member.as_ref() {
                    "error" => hoard_sdk::log::error(&action.body),
                    "warn" => hoard_sdk::log::warn(&action.body),
                    "debug" => hoard_sdk::log::debug(&action.body),
                    _ => hoard_sdk::log::info(&action.body),
                }
            }
            return Ok(json!(lines));
        }
        "log-forever" => loop {
            hoard_sdk::log::info("again");
        },
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "grow" => {
            // Allocate until the host says no; keep every block so memory grows.
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            loop {
                blocks.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&blocks);
            }
        }
        "hot-set" => {
            timed(|| hot::set(key, action.value.as_bytes(), action.ttl_ms)).map(|()| json!("ok"))
        }
        "hot-delete" => hot::delete(key).map(|existed| json!(existed)),
        // `key` is the channel: `session:<id>` reaches that session's
        // sockets when it is the session being played.
        "publish" => hot::publish(key, action.value.as_bytes()).map(|()| json!("published")),
        "hot-get-forever" => loop {
            // Each read waits on storage; the host's wall-time limit ends it.
            std::hint::black_box(hot::get(key).ok());
        },
        "hot-get" => timed(|| hot::get(key))
            .map(|v| json!(v.map(|b| String::from_utf8_lossy(&b).into_owned()))),
        "hot-incr" => {
            let delta = action.delta.as_ref().and_then(Number::as_i64).unwrap_or(1);
            timed(|| hot::incr(key, delta)).map(|n| json!(n))
        }
        "board-incr" => {
            let delta = action
                .delta
                .as_ref()
                .and_then(Number::as_f64)
                .unwrap_or(1.0);
            hot::leaderboard_incr(key, &action.member, delta).map(|s| json!(s))
        }
        "board-set" => {
            let score = action.score.unwrap_or(0.0);
            timed(|| hot::leaderboard_set(key, &action.member, score)).map(|()| json!("ok"))
        }
        "cold-transact" => {
            // Puts `body` under key-0, key-1 and key-2 at once.
            let writes: Vec<cold::Write> = (0..3)
                .map(|i| {
                    cold::Write::Put(cold::PutWrite {
                        collection: action.collection.to_string(),
                        key: format!("{key}-{i}"),
                        body: action.body.to_string(),
                        expected_version: None,
                    })
                })
                .collect();
            timed(|| cold::transact(&writes)).map(|versions| json!(versions))
        }
        "board-top" => hot::leaderboard_top(key, 10).map(|rows| {
            json!(
                rows.iter()
                    .map(|e| json!([e.member, e.score, e.rank]))
                    .collect::<Vec<_>>()
            )
        }),
        "cold-put" => timed(|| cold::put(&action.collection, key, &action.body, action.expected))
            .map(|v| json!(v)),
        // As `cold-put`, but a storage error refuses the action (`?`), as in
        // a game that does not handle it.
        "cold-put-strict" => {
            let version = cold::put(&action.collection, key, &action.body, action.expected)?;
            return Ok(json!(version));
        }
        "cold-get" => timed(|| cold::get(&action.collection, key))
            .map(|r| json!(r.map(|r| json!({"version": r.version, "body": r.body})))),
        "record-match" => record_match(key, action),
        // An alarm in `ttl_ms` ms whose payload is `body`; see `on_alarm`.
        "alarm-set" => alarms::set(action.ttl_ms.unwrap_or(0), &action.body).map(|id| json!(id)),
        "alarm-cancel" => alarms::cancel(action.id.unwrap_or(0)).map(|was| json!(was)),
        // Reads `key` as a number and writes it back one higher, in two
        // calls: two of these at once on one key would lose one.
        "bump" => bump(key).map(|n| json!(n)),
        // The SDK's typed read-modify-write: `{"n"}` in `tallies/key`, one
        // higher, retried on conflict.
        "tally" => {
            let tallies = Records::<Tally>::new("tallies");
            let updated = tallies.update(key, |tally| Tally {
                n: tally.map_or(0, |t| t.n) + 1,
            })?;
            Ok(json!({"n": updated.value.n, "version": updated.version}))
        }
        // The SDK's cache-aside: record `key` of `collection` through hot,
        // kept `ttl_ms`; with the cache's hit and miss counts.
        "cache-get" => {
            let cache = Cache::<Value>::new(&action.collection, action.ttl_ms.unwrap_or(60_000));
            let value = cache.get(key)?;
            let stats = cache.stats()?;
            Ok(json!({"value": value, "hits": stats.hits, "misses": stats.misses}))
        }
        "cache-put" => {
            let cache = Cache::<Value>::new(&action.collection, action.ttl_ms.unwrap_or(60_000));
            Ok(json!(cache.put(key, &json_body(action)?)?))
        }
        // The SDK's write-behind: hot key `key` copied every `ttl_ms` to
        // record `member` of `collection`.
        "write-behind-start" => Ok(json!(write_behind(action).start()?)),
        "write-behind-set" => {
            write_behind(action).set(&json_body(action)?)?;
            Ok(json!("ok"))
        }
        "write-behind-get" => Ok(json!(write_behind(action).get()?)),
        "write-behind-flush" => Ok(json!(write_behind(action).flush()?)),
        "history" => cold::read_history(key, 0, 100)
            .map(|rows| json!(rows.iter().map(|e| e.body.clone()).collect::<Vec<_>>())),
        "hot-set-huge" => {
            let size = action.bytes.unwrap_or(0) as usize;
            hot::set(key, &vec![0u8; size], None).map(|()| json!("ok"))
        }
        other => {
            return Err(GameError::malformed(
                "unknown_action",
                format!("unknown action {other:?}"),
            ));
        }
    };
    Ok(result.unwrap_or_else(storage_error))
}

impl hoard_sdk::Game for Probe {
    fn describe() -> Info {
        Info {
            name: "probe".into(),
            version: "0.1.0".into(),
            description: "A test plugin that does what its actions say.".into(),
            min_players: 1,
            max_players: 8,
            rpcs: vec!["do".into()],
        }
    }

    fn create(_session: Session, _config: String) -> Result<Vec<u8>, GameError> {
        Ok(save(&json!({"players": [], "last": null})))
    }

    fn join(state: Vec<u8>, player: Player) -> Result<Vec<u8>, GameError> {
        let mut state = load(&state);
        let players = state["players"].as_array_mut().ok_or(GameError::Finished)?;
        if players.len() >= 8 {
            return Err(GameError::Full);
        }
        players.push(json!({"name": player.name, "account": player.account}));
        Ok(save(&state))
    }

    fn act(state: Vec<u8>, _player: String, action: String) -> Result<Turn, GameError> {
        let action: Action = serde_json::from_str(&action)
            .map_err(|e| GameError::malformed("bad_action", e.to_string()))?;
        CALL_NS.set(None);
        let mut last = run(&action)?;
        if action.timed {
            // `null` if the action makes no timed call.
            last = json!({"ns": CALL_NS.get(), "result": last});
        }
        Ok(Turn {
            state: with_last(&state, &last),
            outcome: None,
        })
    }

    /// A write-behind alarm (see the `write-behind-*` actions) copies its
    /// value and sets the next. Any other alarm's payload is a JSON object:
    /// `"bump"` names a key to bump (as the action does), `"then"` an alarm
    /// to set next (`{"ms", "payload"}`), `"forever": true` the same alarm
    /// again, due at once. Every payload is appended to the history stream
    /// `fired`, so tests see which alarms fired, in what order, how often.
    fn on_alarm(state: Vec<u8>, payload: String) -> Result<Turn, GameError> {
        if write_behind::handle(&payload)? {
            cold::append_history("fired", &payload)?;
            return Ok(Turn {
                state,
                outcome: None,
            });
        }
        let alarm: Value = serde_json::from_str(&payload)
            .map_err(|e| GameError::malformed("bad_payload", e.to_string()))?;
        if let Some(key) = alarm["bump"].as_str() {
            bump(key)?;
        }
        if let Some(then) = alarm.get("then") {
            alarms::set(
                then["ms"].as_u64().unwrap_or(0),
                &then["payload"].to_string(),
            )?;
        }
        if alarm["forever"] == true {
            // Due again at once, every time: a plugin that never lets go.
            alarms::set(0, &payload)?;
        }
        cold::append_history("fired", &payload)?;
        Ok(Turn {
            state: with_last(&state, &json!({"alarm": alarm})),
            outcome: None,
        })
    }

    /// `do`: runs its input as an action would, outside any session, and
    /// answers `{"caller": {"name", "account"} or null, "result": ...}`.
    fn rpc(name: String, caller: Option<Player>, input: String) -> Result<String, GameError> {
        debug_assert_eq!(name, "do", "the host calls only the names in info.rpcs");
        let action: Action = serde_json::from_str(&input)
            .map_err(|e| GameError::malformed("bad_input", e.to_string()))?;
        let caller = caller.map(|c| json!({"name": c.name, "account": c.account}));
        Ok(json!({"caller": caller, "result": run(&action)?}).to_string())
    }

    fn view(state: Vec<u8>, _player: Option<String>) -> Result<String, GameError> {
        let state = load(&state);
        if state["last"] == "break-view" {
            panic!("the probe was told to fail its view");
        }
        Ok(state.to_string())
    }
}

/// The probe's state is a counter every version reads alike.
impl hoard_sdk::Upgrade for Probe {
    fn upgrade(state: Vec<u8>, _from: String) -> Result<Vec<u8>, GameError> {
        Ok(state)
    }
}

/// The probe's `profiles` collection is keyed by account: it moves with
/// one.
impl hoard_sdk::Accounts for Probe {
    fn account_collections() -> Vec<String> {
        vec!["profiles".into()]
    }
}

hoard_sdk::export!(Probe);
