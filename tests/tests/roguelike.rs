//! The roguelike played whole over HTTP, offline and in service mode, by
//! the example bots' explorer (which decides from views alone):
//!
//! - every view served is checked for fog of war by a model written here:
//!   a cell is shown only if it lies within sight (a circle of radius 6) of
//!   somewhere the hero's views placed them on this depth, and monsters,
//!   items and heroes only within sight of where the hero stands;
//! - a character's level, stats, experience and inventory survive into its
//!   next run;
//! - a write-back that fails part-way (a character another run wrote
//!   meanwhile) leaves that character as the other run left it, and saves
//!   the rest of the party;
//! - bad input (walls, the map's edge, unknown items, acting out of turn
//!   or while dead) is a 4xx and changes nothing.

use hoard_bots::roguelike::choose;
use hoard_tests::services::service_host;
use hoard_tests::{Api, Player, TestHost};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The sight circle, from the plugin's README: radius 6.
fn within_sight(a: (i64, i64), b: (i64, i64)) -> bool {
    let (dx, dy) = (a.0 - b.0, a.1 - b.1);
    dx * dx + dy * dy <= 6 * 6 + 6
}

fn at(thing: &Value) -> (i64, i64) {
    (thing["x"].as_i64().unwrap(), thing["y"].as_i64().unwrap())
}

/// Where each hero's views have placed them on the depth they are on.
#[derive(Default)]
struct Fog {
    stood: HashMap<String, (u64, Vec<(i64, i64)>)>,
    views: usize,
}

impl Fog {
    /// Checks one view served to `name`.
    fn check(&mut self, name: &str, view: &Value) {
        if view["phase"] == "gathering" {
            return;
        }
        self.views += 1;
        let you = &view["you"];
        let depth = view["depth"].as_u64().unwrap();
        let (on, stood) = self.stood.entry(name.into()).or_default();
        if *on != depth {
            *on = depth;
            stood.clear();
        }
        let here = at(you);
        stood.push(here);
        let rows = view["map"]["rows"].as_array().unwrap();
        let ascii: Vec<&str> = view["ascii"].as_str().unwrap().lines().collect();
        assert_eq!((rows.len(), ascii.len()), (20, 20));
        for (y, row) in rows.iter().enumerate() {
            for (x, tile) in row.as_str().unwrap().bytes().enumerate() {
                let cell = (x as i64, y as i64);
                if tile == b' ' {
                    assert_eq!(ascii[y].as_bytes()[x], b' ', "{name} sees {cell:?} drawn");
                    continue;
                }
                assert!(
                    stood.iter().any(|&s| within_sight(s, cell)),
                    "{name} is shown {cell:?}, never within sight of {stood:?}"
                );
            }
        }
        let alive = you["fate"] == "alive";
        for what in ["monsters", "items", "heroes"] {
            for thing in view[what].as_array().unwrap() {
                assert!(
                    alive && within_sight(here, at(thing)),
                    "{name} at {here:?} sees {thing}"
                );
            }
        }
    }
}

async fn rpc(api: &Api, name: &str, input: Value, token: Option<&str>) -> Value {
    let path = format!("/v1/games/roguelike/rpc/{name}");
    let reply = api
        .send("POST", &path, Some(&input.to_string()), token)
        .await;
    assert_eq!(reply.status, 200, "{name}: {:?}", reply.body);
    reply.body["result"].clone()
}

async fn spectate(api: &Api, session: &str) -> Value {
    api.get(&format!("/v1/sessions/{session}")).await.body
}

/// Creates a run of `config` with `seed`.
async fn create(api: &Api, config: Value, seed: u64) -> String {
    api.create("roguelike", json!({"config": config, "seed": seed}))
        .await
}

/// Plays until the run ends: each hero does what `policy` says with its
/// view (an action refused ends the turn instead). Every view is checked
/// for fog. The outcome, and each hero's last view.
async fn play_out(
    api: &Api,
    session: &str,
    heroes: &[Player],
    fog: &mut Fog,
    policy: impl Fn(&str, &Value) -> Value,
) -> (Value, HashMap<String, Value>) {
    let mut last = HashMap::new();
    for _ in 0..6_000 {
        let state = spectate(api, session).await;
        if state["finished"] == true {
            return (state["outcome"].clone(), last);
        }
        let (name, view) = step(heroes, fog, &state, &policy).await;
        last.insert(name, view);
    }
    panic!("run {session} did not end");
}

/// One action by the hero whose turn `state` (the spectators' view) says
/// it is: the hero's name and view after it.
async fn step(
    heroes: &[Player],
    fog: &mut Fog,
    state: &Value,
    policy: impl Fn(&str, &Value) -> Value,
) -> (String, Value) {
    let turn = state["view"]["turn"].as_str().expect("someone's turn");
    let hero = heroes.iter().find(|h| h.name == turn).unwrap();
    let view = hero.view().await;
    fog.check(turn, &view);
    let action = policy(turn, &view);
    let reply = hero.act(&action).await;
    let reply = match reply.status {
        200 => reply,
        400..500 => hero.act(&json!({"type": "end"})).await,
        _ => panic!("{action}: {:?}", reply.body),
    };
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    fog.check(turn, &reply.body["view"]);
    (turn.to_owned(), reply.body["view"].clone())
}

fn ids(items: &Value) -> Vec<String> {
    let mut ids: Vec<String> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// `action` by `player` is refused with `status` and `code`, and neither
/// the player's view nor the spectators' changed.
async fn refused(
    api: &Api,
    session: &str,
    player: &Player,
    action: Value,
    status: u16,
    code: &str,
) {
    let before = (
        player.view().await,
        spectate(api, session).await["view"].clone(),
    );
    let reply = player.act(&action).await;
    assert_eq!(
        (reply.status, reply.code()),
        (status, code),
        "{action}: {:?}",
        reply.body
    );
    let after = (
        player.view().await,
        spectate(api, session).await["view"].clone(),
    );
    assert_eq!(after, before, "{action} changed nothing");
}

async fn bad_configs(api: &Api) {
    for config in [
        json!({"party": 0}),
        json!({"party": 5}),
        json!({"depths": 0}),
        json!({"depths": 11}),
        json!({"turn_ms": 5}),
        json!({"colour": "red"}),
        json!([1]),
    ] {
        let reply = api
            .post("/v1/games/roguelike/sessions", &json!({"config": config}))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "bad_config"),
            "{config}: {:?}",
            reply.body
        );
    }
}

/// A character's first run, played out, then its second: it comes back as
/// it left.
async fn progress_survives(api: &Api, fog: &mut Fog) {
    let token = api.account("rhea").await;
    assert_eq!(
        rpc(api, "character", json!({}), Some(&token)).await["character"],
        Value::Null,
        "no character before the first run"
    );
    let session = create(api, json!({"depths": 2}), 11).await;
    let rhea = api.join_account(&session, &token, "rhea").await;
    let (outcome, last) = play_out(api, &session, &[rhea], fog, |_, view| choose(view)).await;
    assert_eq!(outcome["saved"], json!({"rhea": true}), "{outcome}");
    let you = &last["rhea"]["you"];
    let stored = rpc(api, "character", json!({}), Some(&token)).await;
    let character = &stored["character"];
    assert_eq!(character["runs"], 1);
    assert_eq!(character["level"], you["level"]);
    assert_eq!(character["total_experience"], you["experience"]);
    assert_eq!(character["base_stats"], you["stats"]);
    assert_eq!(character["skill_levels"], you["skills"]);
    assert_eq!(ids(&stored["inventory"]), ids(&you["inventory"]));
    let died = outcome["players"][0]["fate"] == "died";
    assert_eq!(character["death_count"], u64::from(died));
    if died {
        assert!(
            ids(&stored["inventory"]).is_empty(),
            "the dead keep nothing"
        );
    }

    let next = create(api, json!({}), 12).await;
    let rhea = api.join_account(&next, &token, "rhea").await;
    let view = rhea.view().await;
    fog.check("rhea", &view);
    let you = &view["you"];
    assert_eq!(you["level"], character["level"]);
    assert_eq!(you["experience"], character["total_experience"]);
    assert_eq!(you["stats"], character["base_stats"]);
    assert_eq!(you["runs"], 1);
    assert_eq!(
        ids(&you["inventory"]),
        ids(&stored["inventory"]),
        "the same items, by id"
    );
    assert_eq!(rhea.act(&json!({"type": "leave"})).await.status, 200);
    let stored = rpc(api, "character", json!({}), Some(&token)).await;
    assert_eq!(stored["character"]["runs"], 2);
    assert_eq!(ids(&stored["inventory"]), ids(&you["inventory"]));

    // The finished runs are archived, and the boards rank accounts.
    let runs = rpc(api, "runs", json!({}), None).await;
    let runs = runs["runs"].as_array().unwrap();
    assert!(runs.iter().any(|r| r["outcome"]["run"] == session.as_str()));
    let depth = rpc(api, "leaderboard", json!({"board": "depth"}), None).await;
    assert_eq!(depth["rows"][0]["player"], "rhea");
    assert_eq!(
        depth["rows"][0]["score"].as_f64(),
        outcome["depth"].as_f64()
    );
}

/// The direction from `from` one step towards `to`.
fn towards(from: (i64, i64), to: (i64, i64)) -> &'static str {
    match ((to.0 - from.0).signum(), (to.1 - from.1).signum()) {
        (0, -1) => "n",
        (1, -1) => "ne",
        (1, 0) => "e",
        (1, 1) => "se",
        (0, 1) => "s",
        (-1, 1) => "sw",
        (-1, 0) => "w",
        _ => "nw",
    }
}

/// Vex keeps a potion from an earlier run, then goes into two runs at
/// once. The second ends first and writes Vex back. In the first, Vex
/// drops the potion and Ulla picks it up; when that run ends, its
/// write-back of Vex and Ulla together fails on Vex's record, so Vex stays
/// exactly as the second run left them, and Ulla is saved on her own,
/// without the potion: it is Vex's, already written by the other run, and
/// writing it to Ulla too would duplicate it.
async fn a_failed_write_back_changes_nothing(api: &Api) {
    let (vex, ulla) = (api.account("vex").await, api.account("ulla").await);
    let earlier = create(api, json!({}), 20).await;
    let vex_earlier = api.join_account(&earlier, &vex, "vex").await;
    assert_eq!(vex_earlier.act(&json!({"type": "leave"})).await.status, 200);
    let kept = rpc(api, "character", json!({}), Some(&vex)).await;
    let potion = kept["inventory"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["template"] == "potion")
        .expect("a potion kept")["id"]
        .clone();

    let first = create(api, json!({"party": 2}), 21).await;
    let vex_first = api.join_account(&first, &vex, "vex").await;
    let ulla_first = api.join_account(&first, &ulla, "ulla").await;
    let second = create(api, json!({}), 22).await;
    let vex_second = api.join_account(&second, &vex, "vex").await;
    assert_eq!(vex_second.act(&json!({"type": "leave"})).await.status, 200);
    let after_second = rpc(api, "character", json!({}), Some(&vex)).await;
    assert_eq!(after_second["character"]["runs"], 2);
    assert_eq!(ids(&after_second["inventory"]), ids(&kept["inventory"]));

    // Vex drops the potion and steps off it; Ulla walks over, picks it up;
    // both leave.
    let (mut dropped_at, mut picked) = (None, false);
    for _ in 0..200 {
        let state = spectate(api, &first).await;
        if state["finished"] == true {
            break;
        }
        let vex_turn = state["view"]["turn"] == "vex";
        let player = if vex_turn { &vex_first } else { &ulla_first };
        let view = player.view().await;
        let here = at(&view["you"]);
        let action = match (vex_turn, dropped_at) {
            (true, None) => {
                dropped_at = Some(here);
                json!({"type": "drop", "item": potion})
            }
            (true, Some(cell)) if cell == here => {
                let rows = view["map"]["rows"].as_array().unwrap();
                let free = ["e", "w", "s", "n", "se", "sw", "ne", "nw"]
                    .into_iter()
                    .find(|d| {
                        let (dx, dy) = match *d {
                            "e" => (1, 0),
                            "w" => (-1, 0),
                            "s" => (0, 1),
                            "n" => (0, -1),
                            "se" => (1, 1),
                            "sw" => (-1, 1),
                            "ne" => (1, -1),
                            _ => (-1, -1),
                        };
                        let (x, y) = (here.0 + dx, here.1 + dy);
                        let floor =
                            rows[y as usize].as_str().unwrap().as_bytes()[x as usize] == b'.';
                        let taken = view["heroes"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|h| at(h) == (x, y));
                        floor && !taken
                    });
                json!({"type": "move", "dir": free.expect("room to step aside")})
            }
            (true, _) if picked => json!({"type": "leave"}),
            (false, Some(cell)) if !picked && cell == here => {
                picked = true;
                json!({"type": "pickup"})
            }
            (false, Some(cell)) if !picked => json!({"type": "move", "dir": towards(here, cell)}),
            (false, _) if picked => json!({"type": "leave"}),
            _ => json!({"type": "end"}),
        };
        let reply = player.act(&action).await;
        assert_eq!(reply.status, 200, "{action}: {:?}", reply.body);
    }
    assert!(picked, "ulla picked the potion up");
    let state = spectate(api, &first).await;
    assert_eq!(state["finished"], true);
    assert_eq!(
        state["outcome"]["saved"],
        json!({"vex": false, "ulla": true}),
        "{}",
        state["outcome"]
    );
    let now = rpc(api, "character", json!({}), Some(&vex)).await;
    assert_eq!(now, after_second, "vex is as the second run left them");
    let ulla_now = rpc(api, "character", json!({}), Some(&ulla)).await;
    assert_eq!(ulla_now["character"]["runs"], 1);
    let ulla_items = ids(&ulla_now["inventory"]);
    assert!(
        !ulla_items.contains(&potion.as_str().unwrap().to_owned()),
        "the potion is vex's alone"
    );
    assert_eq!(ulla_items.len(), 2, "ulla's kit: {ulla_items:?}");
    assert!(ulla_items.iter().all(|id| id.starts_with(&first)));
}

/// `doomed` explores but never fights back: it walks up to a monster and
/// waits there. The other hero waits where they arrived.
fn doomed_policy(doomed: &str, name: &str, view: &Value) -> Value {
    let action = choose(view);
    if name != doomed || action["type"] == "attack" {
        return json!({"type": "end"});
    }
    action
}

async fn bad_input(api: &Api, fog: &mut Fog) {
    // Gus never fights back; Hal waits. Once Gus is dead (in one of a few
    // seeded runs), he may not act.
    let mut dead_refused = false;
    for seed in 31..41 {
        let session = create(api, json!({"party": 2, "depths": 1}), seed).await;
        let heroes = [
            api.join(&session, "gus").await,
            api.join(&session, "hal").await,
        ];
        let turn = spectate(api, &session).await["view"]["turn"]
            .as_str()
            .unwrap()
            .to_owned();
        let (mover, waiter) = match turn.as_str() {
            "gus" => (&heroes[0], &heroes[1]),
            _ => (&heroes[1], &heroes[0]),
        };
        if seed == 31 {
            let view = mover.view().await;
            let (x, y) = at(&view["you"]);
            let rows: Vec<&str> = view["map"]["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            let dirs = [
                ("n", 0, -1),
                ("s", 0, 1),
                ("e", 1, 0),
                ("w", -1, 0),
                ("ne", 1, -1),
                ("nw", -1, -1),
                ("se", 1, 1),
                ("sw", -1, 1),
            ];
            let wall = dirs
                .iter()
                .find(|(_, dx, dy)| rows[(y + dy) as usize].as_bytes()[(x + dx) as usize] == b'#')
                .map(|(d, ..)| *d);
            let potion = view["you"]["inventory"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["template"] == "potion")
                .unwrap()["id"]
                .clone();
            let cases = [
                (
                    mover,
                    json!({"type": "move", "dir": wall.expect("a wall next to the start")}),
                    422,
                    "wall",
                ),
                (
                    mover,
                    json!({"type": "shoot", "x": -1, "y": 3}),
                    422,
                    "out_of_bounds",
                ),
                (
                    mover,
                    json!({"type": "shoot", "x": 48, "y": 3}),
                    422,
                    "out_of_bounds",
                ),
                (
                    mover,
                    json!({"type": "shoot", "x": x + 1, "y": y}),
                    422,
                    "not_ranged",
                ),
                (
                    mover,
                    json!({"type": "use", "item": "no-such-item"}),
                    422,
                    "unknown_item",
                ),
                (
                    mover,
                    json!({"type": "drop", "item": format!("{session}.999")}),
                    422,
                    "unknown_item",
                ),
                (
                    mover,
                    json!({"type": "equip", "item": potion}),
                    422,
                    "not_equipment",
                ),
                (mover, json!({"type": "descend"}), 422, "no_stairs"),
                (
                    mover,
                    json!({"type": "move", "dir": "up"}),
                    400,
                    "bad_action",
                ),
                (mover, json!({"type": "teleport"}), 400, "bad_action"),
                (
                    mover,
                    json!({"type": "move", "dir": "n", "far": true}),
                    400,
                    "bad_action",
                ),
                (waiter, json!({"type": "end"}), 409, "not_your_turn"),
            ];
            for (player, action, status, code) in cases {
                refused(api, &session, player, action, status, code).await;
            }
        }
        for actions in 0.. {
            let state = spectate(api, &session).await;
            if state["finished"] == true || actions == 2_000 {
                break; // Gus did not die here: another seed.
            }
            let fate = |n: usize| {
                state["view"]["party"][n]["fate"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            };
            if (fate(0).as_str(), fate(1).as_str()) == ("died", "alive") {
                for action in [json!({"type": "end"}), json!({"type": "move", "dir": "n"})] {
                    refused(api, &session, &heroes[0], action, 422, "dead").await;
                }
                let hal = heroes[1].act(&json!({"type": "leave"})).await;
                assert_eq!(hal.status, 200, "{:?}", hal.body);
                dead_refused = true;
                break;
            }
            step(&heroes, fog, &state, |name, view| {
                doomed_policy("gus", name, view)
            })
            .await;
        }
        if dead_refused {
            break;
        }
    }
    assert!(
        dead_refused,
        "in ten seeded runs Gus never died while Hal lived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_play_whole_offline() {
    let host = TestHost::start(&[("roguelike", "roguelike")]).await;
    play_runs(&host.api()).await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_play_whole_in_service_mode() {
    let (host, _services) = service_host(&[("roguelike", "roguelike")]).await;
    play_runs(&host.api()).await;
    host.stop().await;
}

async fn play_runs(api: &Api) {
    let mut fog = Fog::default();
    bad_configs(api).await;
    progress_survives(api, &mut fog).await;
    a_failed_write_back_changes_nothing(api).await;
    bad_input(api, &mut fog).await;
    assert!(fog.views > 100, "{} views checked", fog.views);
    let cache = rpc(api, "cache", json!({}), None).await;
    assert!(cache["all"]["hits"].as_u64().unwrap() > 0, "{cache}");
}
