//! The example bots (`examples/bots`) play whole sessions of every game
//! against a host on port 0, as `hoard-bots --sessions 2` would, and finish
//! cleanly; the games' own records show the sessions they played.

use hoard_bots::Host;
use hoard_tests::TestHost;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bots_play_every_game_to_the_end() {
    let host = TestHost::start(&[
        ("hokm", "hokm"),
        ("roguelike", "roguelike"),
        ("tabletop", "tabletop"),
    ])
    .await;
    let client = Host::new(&format!("http://{}", host.address));
    hoard_bots::run(&client, &["hokm", "roguelike", "tabletop"], 2)
        .await
        .expect("the bots finish every session");

    let matches = client
        .rpc("hokm", "history", json!({}), None)
        .await
        .unwrap();
    assert_eq!(matches["matches"].as_array().unwrap().len(), 2);
    let runs = client
        .rpc("roguelike", "runs", json!({}), None)
        .await
        .unwrap();
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        let saved = &run["outcome"]["saved"];
        assert_eq!(saved, &json!({"delver-1": true, "delver-2": true}), "{run}");
    }
    let wins = client
        .rpc("hokm", "leaderboard", json!({}), None)
        .await
        .unwrap();
    assert!(!wins["wins"].as_array().unwrap().is_empty());
    host.stop().await;
}
