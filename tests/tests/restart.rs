//! A host killed with SIGKILL mid-game resumes exactly where it was: every
//! acknowledged action is on disk before it was answered.

use hoard_tests::services::free_port;
use hoard_tests::{Api, HostProcess, Player, offline_config_file};
use serde_json::{Value, json};

fn suit(card: &str) -> char {
    card.chars().last().unwrap()
}

/// Plays `n` legal moves, naming trump when a hand starts.
async fn play_moves(players: &[Player], n: usize) {
    for i in 0..n {
        let view = players[0].view().await;
        let turn = view["turn"].as_u64().expect("the game is on") as usize;
        let player = &players[turn];
        let action = if view["phase"] == "choosing_trump" {
            json!({"type": "trump", "suit": ("SHDC".as_bytes()[i % 4] as char).to_string()})
        } else {
            let own = player.view().await;
            let hand: Vec<String> = serde_json::from_value(own["you"]["hand"].clone()).unwrap();
            let led = own["trick"][0]["card"].as_str().map(suit);
            let card = hand
                .iter()
                .find(|c| led.is_some_and(|l| suit(c) == l))
                .unwrap_or(&hand[i % hand.len()])
                .clone();
            json!({"type": "play", "card": card})
        };
        let reply = player.act(&action).await;
        assert_eq!(reply.status, 200, "{action}: {:?}", reply.body);
    }
}

async fn views(players: &[Player]) -> Vec<Value> {
    let mut all = Vec::new();
    for player in players {
        all.push(player.view().await);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_host_resumes_the_game_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = offline_config_file(dir.path(), port, "hokm");
    let mut host = HostProcess::start(env!("CARGO_BIN_EXE_hoard-test-host"), &config, port).await;
    let api = Api::new(([127, 0, 0, 1], port).into());
    let session = api.create("hokm", json!({})).await;
    let mut players = Vec::new();
    for name in ["n", "w", "s", "e"] {
        players.push(api.join(&session, name).await);
    }
    play_moves(&players, 23).await;
    let before = views(&players).await;
    assert_eq!(before[0]["phase"], "playing");

    host.kill();
    let mut host = HostProcess::start(env!("CARGO_BIN_EXE_hoard-test-host"), &config, port).await;

    assert_eq!(
        views(&players).await,
        before,
        "every view is exactly as before the kill"
    );
    let summary = api.get(&format!("/v1/sessions/{session}")).await;
    assert_eq!(
        summary.body["actions"],
        json!(23),
        "trump plus 22 plays, none lost"
    );
    play_moves(&players, 30).await;
    host.kill();
}
