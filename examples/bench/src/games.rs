//! (f) The games: for Hokm, the tabletop room and the roguelike, the
//! plugin's size, one action through the plugin against the same rules
//! called natively (decode the state, read the action, apply it, encode
//! the state: what the plugin does, minus WASM and its storage calls), the
//! session state's size, and the tabletop template cache's hit rate.
//!
//! Each game's session is recorded natively first (Hokm's legal cards, a
//! tabletop table, two roguelike explorers deciding from their views), then
//! the same steps are replayed through the plugin from the same states.

use crate::{Step, micros, percentile, plugin_path, recorded_game, temp_storage};
use hoard::storage::OpId;
use hoard::wasm::{Instance, Runtime, WasmConfig};
use roguelike::catalog::Catalog;
use roguelike::run::{Action as Move, Config as RunConfig, Refusal as RunRefusal, Run, Saved};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tabletop::room::{Action as TableAction, Config as RoomConfig, Room, StatBlock};

const SEED: u64 = 7;
const SESSION: &str = "bench-session";

/// The roguelike plugin's state: the run and its turn clock.
#[derive(Serialize, Deserialize)]
struct RunState {
    run: Run,
    clock: Option<Value>,
}

fn run_state(run: &Run) -> Vec<u8> {
    let state = json!({"run": run, "clock": null});
    serde_json::to_vec(&state).expect("a run encodes")
}

/// Two explorers play a run of three depths; at most `limit` steps, and
/// never the one that ends the run (it also writes characters back).
fn recorded_run(limit: usize) -> Vec<Step> {
    let catalog = Catalog::builtin();
    let config = RunConfig {
        party: 2,
        depths: 3,
        turn_ms: None,
    };
    let mut run = Run::new(SESSION, SEED, &config, &catalog).expect("a run");
    for name in ["ann", "bob"] {
        run.join(name, None, Saved::default()).expect("a seat");
    }
    let mut steps = Vec::new();
    while let Some(name) = run.turn().map(str::to_owned) {
        if steps.len() == limit {
            break;
        }
        let chosen = hoard_bots::roguelike::choose(&run.view(Some(&name)));
        let before = run.clone();
        let catalog = || Ok::<_, RunRefusal>(catalog.clone());
        let legal = serde_json::from_value::<Move>(chosen.clone())
            .is_ok_and(|action| run.act(&name, action, catalog).is_ok());
        let action = match legal {
            true => chosen,
            false => {
                // A refused action changed nothing: the turn ends instead.
                run.act(&name, Move::End, catalog).expect("ending a turn");
                json!({"type": "end"})
            }
        };
        if run.turn().is_none() {
            break;
        }
        steps.push(Step {
            state: run_state(&before),
            player: name,
            action: action.to_string(),
        });
    }
    steps
}

fn roguelike_native(step: &Step) {
    let mut state: RunState = serde_json::from_slice(&step.state).expect("a run");
    let action: Move = serde_json::from_str(&step.action).expect("an action");
    let catalog = || Ok::<_, RunRefusal>(Catalog::builtin());
    state.run.act(&step.player, action, catalog).expect("legal");
    std::hint::black_box(serde_json::to_vec(&state).expect("a run encodes"));
}

/// A GM and two players at a table: tokens from templates, moves, rolls,
/// chat and attacks, `count` actions.
fn recorded_table(count: usize, blocks: &HashMap<String, StatBlock>) -> Vec<Step> {
    let config = RoomConfig {
        width: 20,
        height: 20,
        system: "basic".into(),
    };
    let mut room = Room::new(SESSION, SEED, config).expect("a room");
    for name in ["gm", "ann", "bob"] {
        room.join(name).expect("a seat");
    }
    let opening = [
        (
            "gm",
            json!({"type": "add_token", "name": "Snik", "x": 5, "y": 5, "template": "goblin"}),
        ),
        (
            "ann",
            json!({"type": "add_token", "name": "Ser Ann", "x": 1, "y": 1, "template": "knight"}),
        ),
        (
            "bob",
            json!({"type": "add_token", "name": "Bob", "x": 2, "y": 1, "template": "wizard"}),
        ),
    ];
    let mut script: Vec<(&str, Value)> = opening.into_iter().collect();
    for i in 0..count.saturating_sub(script.len()) {
        script.push(match i % 6 {
            0 => ("ann", json!({"type": "move_token", "token": "t2", "x": i % 20, "y": (i / 20) % 20})),
            1 => ("bob", json!({"type": "roll", "dice": "2d20kh1+3", "label": "to hit"})),
            2 => ("ann", json!({"type": "chat", "text": format!("onwards, round {i}")})),
            3 => ("gm", json!({"type": "attack", "token": "t1", "target": "t3", "attack": "Scimitar"})),
            4 => ("gm", json!({"type": "add_token", "name": "Grunt", "x": i % 20, "y": 10, "template": "orc"})),
            _ => ("gm", json!({"type": "remove_token", "token": format!("t{}", 4 + i / 6)})),
        });
    }
    let mut steps = Vec::new();
    for (player, action) in script {
        let parsed: TableAction = serde_json::from_value(action.clone()).expect("an action");
        let stats = room.template_key(&parsed).map(|key| blocks[&key].clone());
        let before = serde_json::to_vec(&room).expect("a room encodes");
        room.act(player, parsed, stats)
            .unwrap_or_else(|e| panic!("{action}: {e:?}"));
        steps.push(Step {
            state: before,
            player: player.into(),
            action: action.to_string(),
        });
    }
    steps
}

/// A plugin loaded on fresh sled storage, one session created so that its
/// reference data is installed, and an instance to call.
struct Loaded {
    _dir: tempfile::TempDir,
    size: u64,
    instance: Instance,
}

async fn load(name: &str, config: &str) -> Loaded {
    let dir = tempfile::tempdir().expect("temp dir");
    let (storage, _store) = temp_storage(dir.path());
    let runtime = Runtime::new(WasmConfig::default(), storage).expect("runtime");
    let path = plugin_path(name);
    let plugin = runtime.load(name, &path).await.expect("the plugin loads");
    let mut instance = plugin.instantiate().await.expect("instance");
    instance
        .create(SESSION, SEED, config)
        .await
        .expect("a session");
    Loaded {
        _dir: dir,
        size: std::fs::metadata(&path).expect("the component").len(),
        instance,
    }
}

/// Interleaved passes over `steps`, natively and through the plugin: the
/// best pass of each (the truest figure on a noisy machine) and the median.
async fn measure(
    loaded: &mut Loaded,
    steps: &[Step],
    native: impl Fn(&Step),
    rounds: usize,
) -> [Duration; 4] {
    let (mut natives, mut plugins) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        steps.iter().for_each(&native);
        natives.push(started.elapsed() / steps.len() as u32);
        let started = Instant::now();
        for step in steps {
            let turn = loaded
                .instance
                .act(&step.state, &step.player, &step.action, OpId::random())
                .await;
            std::hint::black_box(turn.unwrap_or_else(|e| panic!("{}: {e}", step.action)));
        }
        plugins.push(started.elapsed() / steps.len() as u32);
    }
    natives.sort();
    plugins.sort();
    [
        natives[0],
        percentile(&natives, 0.5),
        plugins[0],
        percentile(&plugins, 0.5),
    ]
}

fn report(
    name: &str,
    size: u64,
    steps: &[Step],
    [native, native_median, plugin, plugin_median]: [Duration; 4],
) {
    let sizes: Vec<usize> = steps.iter().map(|s| s.state.len()).collect();
    let mean = sizes.iter().sum::<usize>() / sizes.len().max(1);
    let max = sizes.iter().max().copied().unwrap_or(0);
    println!(
        "  {name:<10} {:>7} KiB {:>5} {:>9.2} ({:.2}) {:>9.2} ({:.2}) {:>6.1}x {:>7} / {} B",
        size / 1024,
        steps.len(),
        micros(native),
        micros(native_median),
        micros(plugin),
        micros(plugin_median),
        plugin.as_secs_f64() / native.as_secs_f64(),
        mean,
        max,
    );
}

pub async fn games(rounds: usize, steps: usize) {
    println!(
        "\n(f) the games: plugin size, per-action cost through the plugin against the same rules natively, state size"
    );
    println!(
        "  (natively: decode the state, read the action, apply, encode; the plugin also makes its storage calls)"
    );
    println!(
        "  {:<10} {:>11} {:>5} {:>17} {:>17} {:>7} {:>16}",
        "game",
        "component",
        "steps",
        "native us (med)",
        "plugin us (med)",
        "ratio",
        "state mean/max"
    );

    let mut hokm = load("hokm", "{}").await;
    let mut recorded = recorded_game(SEED);
    recorded.pop();
    let native = |s: &Step| {
        std::hint::black_box(hokm::act(&s.state, &s.player, &s.action).expect("legal"));
    };
    let figures = measure(&mut hokm, &recorded, native, rounds).await;
    report("hokm", hokm.size, &recorded, figures);

    let mut table = load("tabletop", "{}").await;
    let listed = table
        .instance
        .rpc("templates", None, r#"{"system": "basic"}"#)
        .await
        .expect("the templates");
    let listed: Value = serde_json::from_str(&listed).expect("JSON");
    let blocks: HashMap<String, StatBlock> = listed["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .map(|t| {
            let block = serde_json::from_value(t["stats"].clone()).expect("a stat block");
            (format!("basic:{}", t["id"].as_str().expect("an id")), block)
        })
        .collect();
    let recorded = recorded_table(steps, &blocks);
    let native = |s: &Step| {
        let mut room: Room = serde_json::from_slice(&s.state).expect("a room");
        let action: TableAction = serde_json::from_str(&s.action).expect("an action");
        let stats = room.template_key(&action).map(|key| blocks[&key].clone());
        std::hint::black_box(room.act(&s.player, action, stats).expect("legal"));
        std::hint::black_box(serde_json::to_vec(&room).expect("a room encodes"));
    };
    let figures = measure(&mut table, &recorded, native, rounds).await;
    report("tabletop", table.size, &recorded, figures);
    let cache = table
        .instance
        .rpc("cache", None, "{}")
        .await
        .expect("cache");
    let cache: Value = serde_json::from_str(&cache).expect("JSON");

    let mut dungeon = load("roguelike", "{}").await;
    let recorded = recorded_run(steps);
    let figures = measure(&mut dungeon, &recorded, roguelike_native, rounds).await;
    report("roguelike", dungeon.size, &recorded, figures);
    let descents = recorded
        .iter()
        .filter(|s| s.action.contains("descend"))
        .count();

    let rate = cache["hit_rate"].as_f64().unwrap_or(0.0);
    println!(
        "  tabletop template cache: {} hits, {} misses: hit rate {:.1} % (target over 90 % -> {})",
        cache["hits"],
        cache["misses"],
        rate * 100.0,
        if rate > 0.9 { "met" } else { "NOT met" }
    );
    let cache = dungeon
        .instance
        .rpc("cache", None, "{}")
        .await
        .expect("cache");
    let cache: Value = serde_json::from_str(&cache).expect("JSON");
    println!(
        "  roguelike template caches (read when a depth is laid out; {descents} descents per pass): hit rate {:.1} %",
        cache["all"]["hit_rate"].as_f64().unwrap_or(0.0) * 100.0
    );
}
