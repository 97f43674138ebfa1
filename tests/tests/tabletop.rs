//! The tabletop room played whole over HTTP by two accounts and a guest,
//! offline and in service mode: tokens placed, moved and removed only by
//! whom the rules allow, hidden tokens only in the GM's view, templates
//! read through the cache (its hit rate through RPC), bad input refused
//! with nothing changed, and at the end every logged roll replayed from
//! the seed the host reveals, die by die, by a model written here.

use hoard_tests::seeded::Stream;
use hoard_tests::services::service_host;
use hoard_tests::{Api, Player, TestHost};
use serde_json::{Value, json};

/// Replays a logged roll: each term (`+3d6`, `-1d4`, `+2d20kh1`, `+2`) drawn
/// again from stream `n` of `seed`, its value and the total recomputed.
fn replay(seed: u64, roll: &Value) {
    let mut stream = Stream::new(seed, roll["n"].as_u64().unwrap());
    let mut total = 0;
    for term in roll["terms"].as_array().unwrap() {
        let text = term["term"].as_str().unwrap();
        let negative = text.starts_with('-');
        let body = &text[1..];
        let value = match body.split_once('d') {
            None => body.parse::<i64>().unwrap(),
            Some((count, rest)) => {
                let (faces, keep) = match rest.split_once('k') {
                    Some((faces, keep)) => (faces, Some(keep)),
                    None => (rest, None),
                };
                let faces: u64 = faces.parse().unwrap();
                let drawn: Vec<u64> = (0..count.parse::<u64>().unwrap())
                    .map(|_| stream.die(faces))
                    .collect();
                let logged: Vec<u64> = term["dice"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap())
                    .collect();
                assert_eq!(logged, drawn, "roll {roll} replays from the seed");
                let mut sorted = drawn;
                sorted.sort();
                let kept: &[u64] = match keep {
                    None => &sorted,
                    Some(keep) => {
                        let n: usize = keep[1..].parse().unwrap();
                        if keep.starts_with('h') {
                            &sorted[sorted.len() - n..]
                        } else {
                            &sorted[..n]
                        }
                    }
                };
                kept.iter().sum::<u64>() as i64
            }
        };
        let value = if negative { -value } else { value };
        assert_eq!(term["value"].as_i64(), Some(value), "{roll}");
        total += value;
    }
    assert_eq!(roll["total"].as_i64(), Some(total), "{roll}");
}

async fn ok(player: &Player, action: Value) -> Value {
    let reply = player.act(&action).await;
    assert_eq!(reply.status, 200, "{action}: {:?}", reply.body);
    reply.body["view"].clone()
}

/// `action` is refused with `status` and `code`, and the room is as it was.
async fn refused(gm: &Player, player: &Player, action: Value, status: u16, code: &str) {
    let before = gm.view().await;
    let reply = player.act(&action).await;
    assert_eq!(
        (reply.status, reply.code()),
        (status, code),
        "{action}: {:?}",
        reply.body
    );
    assert_eq!(gm.view().await, before, "{action} changed nothing");
}

fn token_ids(view: &Value) -> Vec<String> {
    let tokens = view["tokens"].as_array().unwrap();
    tokens
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn rpc(api: &Api, name: &str, input: Value) -> Value {
    let path = format!("/v1/games/tabletop/rpc/{name}");
    let reply = api
        .send("POST", &path, Some(&input.to_string()), None)
        .await;
    assert_eq!(reply.status, 200, "{name}: {:?}", reply.body);
    reply.body["result"].clone()
}

async fn play_room(api: &Api) {
    for config in [
        json!({"width": 0}),
        json!({"height": 101}),
        json!({"system": "no-such-system"}),
        json!({"system": "Basic!"}),
        json!({"colour": "red"}),
        json!([10, 8]),
    ] {
        let reply = api
            .post("/v1/games/tabletop/sessions", &json!({"config": config}))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "bad_config"),
            "{config}: {:?}",
            reply.body
        );
    }
    let (gina, ann) = (api.account("gina").await, api.account("ann").await);
    let session = api
        .create("tabletop", json!({"config": {"width": 10, "height": 8}}))
        .await;
    let gm = api.join_account(&session, &gina, "gina").await;
    let ann = api.join_account(&session, &ann, "ann").await;
    let bob = api.join(&session, "bob").await;
    assert_eq!(
        gm.view().await["gm"],
        "gina",
        "the first to join runs the room"
    );

    // A hidden goblin from the template, seen by the GM alone.
    let view = ok(&gm, json!({"type": "add_token", "name": "Snik", "x": 2, "y": 3, "template": "goblin", "hidden": true})).await;
    let goblin = &view["tokens"][0];
    assert_eq!(
        (goblin["id"].as_str(), goblin["hp"].as_i64()),
        (Some("t1"), Some(7))
    );
    assert_eq!(goblin["stats"]["attacks"][0]["name"], "Scimitar");
    assert!(
        token_ids(&ann.view().await).is_empty(),
        "hidden from players"
    );
    let spectator = api.get(&format!("/v1/sessions/{session}")).await;
    assert!(
        token_ids(&spectator.body["view"]).is_empty(),
        "hidden from spectators"
    );
    refused(
        &gm,
        &ann,
        json!({"type": "move_token", "token": "t1", "x": 0, "y": 0}),
        422,
        "unknown_token",
    )
    .await;
    refused(
        &gm,
        &ann,
        json!({"type": "add_token", "name": "X", "x": 0, "y": 0, "hidden": true}),
        422,
        "gm_only",
    )
    .await;

    // Ann's token: hers to move; Bob's only once the GM allows it.
    ok(
        &ann,
        json!({"type": "add_token", "name": "Ann", "x": 0, "y": 0}),
    )
    .await;
    refused(
        &gm,
        &bob,
        json!({"type": "move_token", "token": "t2", "x": 1, "y": 1}),
        422,
        "not_your_token",
    )
    .await;
    refused(
        &gm,
        &bob,
        json!({"type": "remove_token", "token": "t2"}),
        422,
        "not_your_token",
    )
    .await;
    let view = ok(
        &ann,
        json!({"type": "move_token", "token": "t2", "x": 9, "y": 7}),
    )
    .await;
    assert_eq!(
        (
            view["tokens"][0]["x"].as_u64(),
            view["tokens"][0]["y"].as_u64()
        ),
        (Some(9), Some(7))
    );
    refused(
        &gm,
        &ann,
        json!({"type": "move_token", "token": "t2", "x": 10, "y": 0}),
        422,
        "out_of_bounds",
    )
    .await;
    refused(
        &gm,
        &ann,
        json!({"type": "move_token", "token": "t2", "x": -1, "y": 0}),
        400,
        "bad_action",
    )
    .await;
    refused(
        &gm,
        &bob,
        json!({"type": "free_movement", "allowed": true}),
        422,
        "gm_only",
    )
    .await;
    ok(&gm, json!({"type": "free_movement", "allowed": true})).await;
    ok(
        &bob,
        json!({"type": "move_token", "token": "t2", "x": 4, "y": 4}),
    )
    .await;
    refused(
        &gm,
        &bob,
        json!({"type": "remove_token", "token": "t2"}),
        422,
        "not_your_token",
    )
    .await;
    ok(&gm, json!({"type": "reveal", "token": "t1"})).await;
    assert_eq!(token_ids(&ann.view().await), ["t1", "t2"]);

    // Dice, an attack, chat.
    for (player, dice) in [
        (&ann, "3d6+2"),
        (&bob, "2d20kh1"),
        (&gm, "4d6kl3-1"),
        (&ann, "1d8-1+1d4"),
    ] {
        let view = ok(
            player,
            json!({"type": "roll", "dice": dice, "label": "check"}),
        )
        .await;
        let last = view["rolls"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            (last["expr"].as_str(), last["by"].as_str()),
            (Some(dice), Some(player.name.as_str()))
        );
    }
    ok(
        &gm,
        json!({"type": "add_token", "name": "Grok", "x": 3, "y": 3, "template": "orc"}),
    )
    .await;
    let view = ok(
        &gm,
        json!({"type": "attack", "token": "t3", "target": "t1", "attack": "Greataxe"}),
    )
    .await;
    let rolls = view["rolls"].as_array().unwrap();
    assert!(rolls.iter().any(|r| r["label"] == "Greataxe to hit"));
    ok(
        &ann,
        json!({"type": "chat", "text": "the goblin <b>moves</b>"}),
    )
    .await;
    assert_eq!(
        bob.view().await["chat"][0]["text"],
        "the goblin <b>moves</b>",
        "text, as sent"
    );

    // Bad input: a clear 4xx each, nothing changed.
    for (action, status, code) in [
        (
            json!({"type": "roll", "dice": "100000d100000"}),
            400,
            "dice_too_large",
        ),
        (
            json!({"type": "roll", "dice": "101d6"}),
            400,
            "dice_too_large",
        ),
        (json!({"type": "roll", "dice": "3x6"}), 400, "bad_dice"),
        (json!({"type": "roll", "dice": ""}), 400, "bad_dice"),
        (
            json!({"type": "chat", "text": "x".repeat(501)}),
            400,
            "text_too_long",
        ),
        (json!({"type": "chat", "text": ""}), 400, "bad_text"),
        (
            json!({"type": "add_token", "name": "D", "x": 0, "y": 0, "template": "dragon"}),
            422,
            "unknown_template",
        ),
        (
            json!({"type": "move_token", "token": "t99", "x": 0, "y": 0}),
            422,
            "unknown_token",
        ),
        (
            json!({"type": "attack", "token": "t2", "target": "t1", "attack": "Bite"}),
            422,
            "no_stats",
        ),
        (
            json!({"type": "attack", "token": "t3", "target": "t1", "attack": "Bite"}),
            422,
            "not_your_token",
        ),
        (json!({"type": "fly"}), 400, "bad_action"),
        (json!({"type": "close"}), 422, "gm_only"),
    ] {
        refused(&gm, &ann, action, status, code).await;
    }
    refused(
        &gm,
        &gm,
        json!({"type": "attack", "token": "t3", "target": "t1", "attack": "Bite"}),
        422,
        "unknown_attack",
    )
    .await;

    // Templates through the cache: the goblin and the orc were misses;
    // so was the dragon, which does not exist; forty more goblins are hits.
    for i in 0..40 {
        ok(&gm, json!({"type": "add_token", "name": format!("g{i}"), "x": 1, "y": 1, "template": "goblin"})).await;
    }
    let cache = rpc(api, "cache", json!({})).await;
    assert_eq!(
        (cache["hits"].as_u64(), cache["misses"].as_u64()),
        (Some(40), Some(3)),
        "{cache}"
    );
    assert!(cache["hit_rate"].as_f64().unwrap() > 0.9);
    let templates = rpc(api, "templates", json!({"system": "basic"})).await;
    assert_eq!(
        templates["templates"].as_array().unwrap().len(),
        5,
        "{templates}"
    );

    // The end: the seed is revealed and every logged roll replays from it.
    let closed = gm.act(&json!({"type": "close"})).await;
    assert_eq!(closed.status, 200, "{:?}", closed.body);
    // Four rolls, and the attack's roll to hit and, on a hit, its damage.
    let made = closed.body["outcome"]["rolls"].as_u64().unwrap();
    assert!((5..=6).contains(&made), "{:?}", closed.body);
    let summary = api.get(&format!("/v1/sessions/{session}")).await;
    let seed = summary.body["fairness"]["seed"]
        .as_u64()
        .expect("the seed, revealed");
    let log = rpc(api, "rolls", json!({"room": session})).await;
    let log = log["rolls"].as_array().unwrap();
    assert_eq!(log.len() as u64, made, "every roll is in the audit log");
    for (n, roll) in log.iter().enumerate() {
        assert_eq!(roll["n"], n as u64);
        replay(seed, roll);
    }
    let after = ann.act(&json!({"type": "chat", "text": "late"})).await;
    assert_eq!(after.status, 409, "{:?}", after.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_plays_whole_offline() {
    let host = TestHost::start(&[("tabletop", "tabletop")]).await;
    play_room(&host.api()).await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_plays_whole_in_service_mode() {
    let (host, _services) = service_host(&[("tabletop", "tabletop")]).await;
    play_room(&host.api()).await;
    host.stop().await;
}
