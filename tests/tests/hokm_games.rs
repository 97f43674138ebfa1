//! Whole Hokm games through the HTTP API, refereed independently of the
//! plugin: every trick winner, every hand's score and Kot, the Hakem's
//! rotation, illegal moves refused without effect, and no view that shows
//! another player's cards.

use hoard::storage::Namespace;
use hoard_tests::{TestHost, hokm};

/// Several seeds, played concurrently as several sessions on one host, each
/// to 7 points; the finished games land in match history and on the
/// leaderboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_games_to_seven_points_follow_the_rules() {
    let host = TestHost::start(&[("hokm", "hokm")]).await;
    let seeds = [1u64, 2, 3, 13, 17, 0xdead_beef];
    let games = seeds.map(|seed| {
        let api = host.api();
        tokio::spawn(async move { hokm::play_game(&api, seed).await })
    });
    let mut played = Vec::new();
    for game in games {
        played.push(game.await.expect("the game completes"));
    }
    for game in &played {
        assert!(game.points[game.winner_team as usize] >= 7);
        assert!(game.points[1 - game.winner_team as usize] < 7);
        assert!(
            game.tricks_checked >= 7 * game.hands,
            "every hand has at least 7 tricks"
        );
        assert!(game.views_checked > 100 && game.illegal_checked > 3);
    }
    let kinds: std::collections::HashSet<u64> = played.iter().map(|g| g.hands).collect();
    assert!(kinds.len() > 1, "different seeds play out differently");

    // The plugin recorded each game in its own namespace.
    let ns = Namespace::plugin("hokm").unwrap();
    let storage = host.app.storage();
    let history = storage
        .cold
        .read_history(&ns, "matches", 0, 100)
        .await
        .unwrap();
    assert_eq!(history.len(), played.len());
    let mut wins = std::collections::HashMap::<String, f64>::new();
    for entry in &history {
        let outcome: serde_json::Value = serde_json::from_str(&entry.body).unwrap();
        for winner in outcome["winners"].as_array().unwrap() {
            *wins.entry(winner.as_str().unwrap().to_owned()).or_default() += 1.0;
        }
    }
    let board = storage.hot.leaderboard_top(&ns, "wins", 10).await.unwrap();
    assert_eq!(board.len(), wins.len());
    for entry in board {
        assert_eq!(Some(&entry.score), wins.get(&entry.member), "{entry:?}");
    }
    host.stop().await;
}

/// The same seed deals the same game: the deck is shuffled from the seed
/// kept with the session.
#[tokio::test]
async fn a_seed_replays_the_same_deal() {
    let host = TestHost::start(&[("hokm", "hokm")]).await;
    let api = host.api();
    let mut first_views = Vec::new();
    for _ in 0..2 {
        let session = api.create("hokm", serde_json::json!({"seed": 77})).await;
        let mut players = Vec::new();
        for name in ["n", "w", "s", "e"] {
            players.push(api.join(&session, name).await);
        }
        let mut views = Vec::new();
        for player in &players {
            views.push(player.view().await["you"]["hand"].clone());
        }
        first_views.push(views);
    }
    assert_eq!(first_views[0], first_views[1]);
    host.stop().await;
}

/// Issue 12's reproduction over HTTP (see `hokm::a_led_two_takes_the_trick`).
#[tokio::test]
async fn a_led_two_nobody_follows_takes_the_trick() {
    let host = TestHost::start(&[("hokm", "hokm")]).await;
    hokm::a_led_two_takes_the_trick(&host.api()).await;
    host.stop().await;
}

/// Any valid JSON spelling of an action is accepted, escapes included.
#[tokio::test]
async fn an_escaped_action_is_accepted() {
    let host = TestHost::start(&[("hokm", "hokm")]).await;
    let api = host.api();
    let session = api.create("hokm", serde_json::json!({})).await;
    let mut players = Vec::new();
    for name in ["north", "west", "south", "east"] {
        players.push(api.join(&session, name).await);
    }
    let hakem = players[0].view().await["hakem"].as_u64().unwrap() as usize;
    let path = format!("/v1/sessions/{session}/actions");
    let reply = api
        .send(
            "POST",
            &path,
            Some(r#"{"type": "trump", "suit": "\u0048"}"#),
            Some(&players[hakem].token),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["view"]["trump"], "H");
    host.stop().await;
}
