//! Pig, the guest SDK's tutorial game (`plugins/sdk/README.md`), played
//! whole over HTTP by an account and a guest: every move checked against
//! the rules, every die checked against the seed revealed at the end, the
//! winner on the leaderboard through RPC. Offline and in service mode.

use hoard_tests::seeded::Stream;
use hoard_tests::services::service_host;
use hoard_tests::{Api, TestHost};
use serde_json::{Value, json};

/// The die roll `n` of a session shows: stream `n` of its seed, as
/// `plugins/sdk/README.md` states it.
fn die(seed: u64, n: u64) -> u64 {
    Stream::new(seed, n).die(6)
}

fn score(view: &Value, name: &str) -> u64 {
    view["players"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()["score"]
        .as_u64()
        .unwrap()
}

async fn play_pig(api: &Api) {
    let registered = api
        .post(
            "/v1/accounts",
            &json!({"name": "ann", "secret": "ann's secret"}),
        )
        .await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    let login = api
        .post(
            "/v1/login",
            &json!({"name": "ann", "secret": "ann's secret"}),
        )
        .await;
    let account_token = login.body["token"].as_str().unwrap().to_owned();
    let session = api.create("pig", json!({"config": {"target": 30}})).await;
    let ann = api
        .send(
            "POST",
            &format!("/v1/sessions/{session}/join"),
            Some("{}"),
            Some(&account_token),
        )
        .await;
    assert_eq!(ann.status, 201, "{:?}", ann.body);
    let ann = hoard_tests::Player {
        api: api.clone(),
        session: session.clone(),
        name: "ann".into(),
        token: ann.body["token"].as_str().unwrap().to_owned(),
    };
    let bo = api.join(&session, "bo").await;
    let early = ann.act(&json!({"type": "jump"})).await;
    assert_eq!((early.status, early.code()), (400, "bad_action"));

    let mut view = api.get(&format!("/v1/sessions/{session}")).await.body["view"].clone();
    let mut rolls = Vec::new();
    let outcome = loop {
        let name = view["turn"].as_str().unwrap().to_owned();
        let (mover, other) = if name == "ann" {
            (&ann, &bo)
        } else {
            (&bo, &ann)
        };
        let wrong = other.act(&json!({"type": "roll"})).await;
        assert_eq!((wrong.status, wrong.code()), (409, "not_your_turn"));
        let (pot, before) = (view["pot"].as_u64().unwrap(), score(&view, &name));
        let hold = pot >= 8;
        let reply = mover
            .act(&json!({"type": if hold { "hold" } else { "roll" }}))
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let next = reply.body["view"].clone();
        if hold {
            assert_eq!(score(&next, &name), before + pot, "{next}");
            assert_eq!(next["pot"], 0);
        } else {
            let roll = next["last_roll"].as_u64().unwrap();
            rolls.push(roll);
            if roll == 1 {
                assert_eq!(next["pot"], 0, "a 1 loses the pot");
                assert_ne!(next["turn"], json!(name), "a 1 passes the turn");
            } else {
                assert_eq!(next["pot"].as_u64().unwrap(), pot + roll);
                assert_eq!(next["turn"], json!(name));
            }
        }
        if !reply.body["outcome"].is_null() {
            break reply.body["outcome"].clone();
        }
        view = next;
        assert!(rolls.len() < 10_000, "the game ends");
    };
    let winner = outcome["winners"][0].as_str().unwrap();
    let summary = api.get(&format!("/v1/sessions/{session}")).await;
    assert!(score(&summary.body["view"], winner) >= 30);
    let seed = summary.body["fairness"]["seed"].as_u64().expect("revealed");
    let expected: Vec<u64> = (0..rolls.len() as u64).map(|n| die(seed, n)).collect();
    assert_eq!(rolls, expected, "every die came from the seed");
    assert_eq!(
        outcome["account_wins"],
        if winner == "ann" {
            json!(1)
        } else {
            Value::Null
        }
    );
    let wins = api
        .send("POST", "/v1/games/pig/rpc/wins", Some("{}"), None)
        .await;
    assert_eq!(
        wins.body["result"],
        json!([{"player": winner, "wins": 1.0}]),
        "{:?}",
        wins.body
    );
    let finished = ann.act(&json!({"type": "roll"})).await;
    assert_eq!((finished.status, finished.code()), (409, "game_finished"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pig_plays_to_the_end_offline() {
    let host = TestHost::start(&[("pig", "pig")]).await;
    play_pig(&host.api()).await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pig_plays_to_the_end_in_service_mode() {
    let (host, _services) = service_host(&[("pig", "pig")]).await;
    play_pig(&host.api()).await;
    host.stop().await;
}
