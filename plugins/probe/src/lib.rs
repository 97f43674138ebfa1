//! A test plugin that does what its actions say: store and read through
//! every storage call, or misbehave (trap, loop forever, eat memory). The
//! host's tests use it to prove isolation and limits; it is not a game.
//!
//! State: a JSON document `{"players": [...], "last": <result of the last action>}`.

use hoard_sdk::{GameError, Info, Session, Turn, cold, hot, types};
use serde_json::{Value, json};

struct Probe;

fn load(state: &[u8]) -> Value {
    serde_json::from_slice(state).unwrap_or_else(|_| json!({"players": [], "last": null}))
}

fn storage_error(error: types::Error) -> Value {
    json!({"error": format!("{error:?}")})
}

fn text(action: &Value, field: &str) -> String {
    action[field].as_str().unwrap_or_default().to_owned()
}

/// Global state inside the instance: a session must never see another
/// session's count.
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn run(action: &Value) -> Result<Value, GameError> {
    let key = text(action, "key");
    let result = match action["do"].as_str().unwrap_or_default() {
        // The action succeeds; rendering the state afterwards traps.
        "break-view" => return Ok(json!("break-view")),
        "count" => {
            return Ok(json!(
                CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
            ));
        }
        "trap" => panic!("the probe was told to trap"),
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
        "hot-set" => hot::set(
            &key,
            text(action, "value").as_bytes(),
            action["ttl_ms"].as_u64(),
        )
        .map(|()| json!("ok")),
        "hot-get" => {
            hot::get(&key).map(|v| json!(v.map(|b| String::from_utf8_lossy(&b).into_owned())))
        }
        "hot-incr" => hot::incr(&key, action["delta"].as_i64().unwrap_or(1)).map(|n| json!(n)),
        "board-incr" => hot::leaderboard_incr(
            &key,
            &text(action, "member"),
            action["delta"].as_f64().unwrap_or(1.0),
        )
        .map(|s| json!(s)),
        "board-set" => hot::leaderboard_set(
            &key,
            &text(action, "member"),
            action["score"].as_f64().unwrap_or(0.0),
        )
        .map(|()| json!("ok")),
        "cold-transact" => {
            // Puts `body` under key-0, key-1 and key-2 at once.
            let writes: Vec<cold::Write> = (0..3)
                .map(|i| {
                    cold::Write::Put(cold::PutWrite {
                        collection: text(action, "collection"),
                        key: format!("{key}-{i}"),
                        body: text(action, "body"),
                        expected_version: None,
                    })
                })
                .collect();
            cold::transact(&writes).map(|versions| json!(versions))
        }
        "board-top" => hot::leaderboard_top(&key, 10).map(|rows| {
            json!(
                rows.iter()
                    .map(|e| json!([e.member, e.score, e.rank]))
                    .collect::<Vec<_>>()
            )
        }),
        "cold-put" => cold::put(
            &text(action, "collection"),
            &key,
            &text(action, "body"),
            action["expected"].as_u64(),
        )
        .map(|v| json!(v)),
        "cold-get" => cold::get(&text(action, "collection"), &key)
            .map(|r| json!(r.map(|r| json!({"version": r.version, "body": r.body})))),
        "history" => cold::read_history(&key, 0, 100)
            .map(|rows| json!(rows.iter().map(|e| e.body.clone()).collect::<Vec<_>>())),
        "hot-set-huge" => {
            let size = action["bytes"].as_u64().unwrap_or(0) as usize;
            hot::set(&key, &vec![0u8; size], None).map(|()| json!("ok"))
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
        }
    }

    fn create(_session: Session, _config: String) -> Result<Vec<u8>, GameError> {
        Ok(json!({"players": [], "last": null})
            .to_string()
            .into_bytes())
    }

    fn join(state: Vec<u8>, player: String) -> Result<Vec<u8>, GameError> {
        let mut state = load(&state);
        let players = state["players"].as_array_mut().ok_or(GameError::Finished)?;
        if players.len() >= 8 {
            return Err(GameError::Full);
        }
        players.push(json!(player));
        Ok(state.to_string().into_bytes())
    }

    fn act(state: Vec<u8>, _player: String, action: String) -> Result<Turn, GameError> {
        let action: Value = serde_json::from_str(&action)
            .map_err(|e| GameError::malformed("bad_action", e.to_string()))?;
        let mut state = load(&state);
        state["last"] = run(&action)?;
        Ok(Turn {
            state: state.to_string().into_bytes(),
            outcome: None,
        })
    }

    fn view(state: Vec<u8>, _player: Option<String>) -> Result<String, GameError> {
        let state = load(&state);
        if state["last"] == "break-view" {
            panic!("the probe was told to fail its view");
        }
        Ok(state.to_string())
    }
}

hoard_sdk::export!(Probe);
