//! Fair randomness (issue 13): the host chooses each session's seed,
//! publishes a commitment to it at creation, keeps the seed out of every
//! view and summary until the game ends, and reveals it then. Anyone can
//! check the commitment, and the revealed seed with the same actions
//! replays the same game. Tokens are stored only as hashes, and die with
//! their session.

use hoard::storage::Namespace;
use hoard_tests::{Player, TestHost};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

fn suit(card: &str) -> char {
    card.chars().last().unwrap()
}

/// Plays legal moves until the game ends. Returns each action (seat,
/// document) in order, every document the players and spectators saw
/// before the end, and the final action's reply.
async fn play_to_the_end(
    players: &[Player],
    summary_path: &str,
) -> (Vec<(usize, Value)>, Vec<String>, Value) {
    let api = &players[0].api;
    let mut actions = Vec::new();
    let mut seen = Vec::new();
    loop {
        let summary = api.get(summary_path).await;
        assert_eq!(summary.status, 200);
        seen.push(summary.body.to_string());
        let view = &summary.body["view"];
        let seat = view["turn"].as_u64().expect("the game is on") as usize;
        let own = players[seat].view().await;
        seen.push(own.to_string());
        let action = if view["phase"] == "choosing_trump" {
            let first: String = serde_json::from_value(own["you"]["hand"][0].clone()).unwrap();
            json!({"type": "trump", "suit": suit(&first).to_string()})
        } else {
            let hand: Vec<String> = serde_json::from_value(own["you"]["hand"].clone()).unwrap();
            let led = own["trick"][0]["card"].as_str().map(suit);
            let card = hand
                .iter()
                .find(|c| led == Some(suit(c)))
                .unwrap_or(&hand[0])
                .clone();
            json!({"type": "play", "card": card})
        };
        let reply = players[seat].act(&action).await;
        assert_eq!(reply.status, 200, "{action}: {:?}", reply.body);
        actions.push((seat, action));
        if !reply.body["outcome"].is_null() {
            return (actions, seen, reply.body);
        }
        seen.push(reply.body.to_string());
    }
}

async fn seat_four(api: &hoard_tests::Api, session: &str) -> Vec<Player> {
    let mut players = Vec::new();
    for name in ["north", "west", "south", "east"] {
        players.push(api.join(session, name).await);
    }
    players
}

/// Commit at creation, hide until the end, reveal at the end; the reveal
/// checks out and replays the game.
#[tokio::test]
async fn the_seed_is_committed_hidden_revealed_and_replays() {
    let host = TestHost::start_with(&[("hokm", "hokm")], |config| {
        config.sessions.client_seeds = false;
    })
    .await;
    let api = host.api();
    let created = api
        .post(
            "/v1/games/hokm/sessions",
            &json!({"config": {"target_points": 1}}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let session = created.body["session"].as_str().unwrap().to_owned();
    let fairness = &created.body["fairness"];
    assert_eq!(fairness["fair_play"], true);
    assert_eq!(fairness["seed"], Value::Null);
    let commitment = fairness["commitment"].as_str().unwrap().to_owned();
    assert_eq!(commitment.len(), 64);
    let summary_path = format!("/v1/sessions/{session}");
    let players = seat_four(&api, &session).await;
    let (actions, seen, last) = play_to_the_end(&players, &summary_path).await;

    let summary = api.get(&summary_path).await.body;
    assert_eq!(summary["finished"], true);
    let fairness = &summary["fairness"];
    assert_eq!(
        fairness["commitment"],
        json!(commitment),
        "the commitment never changes"
    );
    let seed = fairness["seed"]
        .as_u64()
        .expect("the seed is revealed at the end");
    let nonce = fairness["nonce"]
        .as_str()
        .expect("and the nonce")
        .to_owned();
    let recomputed = Sha256::digest(format!("hoard-seed-v1:{seed}:{nonce}"));
    let recomputed: String = recomputed.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(recomputed, commitment, "the reveal matches the commitment");
    for document in &seen {
        assert!(
            !document.contains(&seed.to_string()),
            "the seed leaked before the end: {document}"
        );
        assert!(
            !document.contains(&nonce),
            "the nonce leaked before the end: {document}"
        );
    }

    // Replaying: the revealed seed and the same actions give the same game.
    let replay_host = TestHost::start_with(&[("hokm", "hokm")], |config| {
        config.sessions.client_seeds = true;
    })
    .await;
    let replay_api = replay_host.api();
    let replay = replay_api
        .create(
            "hokm",
            json!({"seed": seed, "config": {"target_points": 1}}),
        )
        .await;
    let replayers = seat_four(&replay_api, &replay).await;
    let mut replayed_last = Value::Null;
    for (seat, action) in &actions {
        let reply = replayers[*seat].act(action).await;
        assert_eq!(reply.status, 200, "{action}: {:?}", reply.body);
        replayed_last = reply.body;
    }
    assert_eq!(replayed_last["outcome"], last["outcome"]);
    assert_eq!(
        replayed_last["view"]["last_trick"],
        last["view"]["last_trick"]
    );
    let replay_summary = replay_api.get(&format!("/v1/sessions/{replay}")).await.body;
    assert_eq!(
        replay_summary["fairness"]["fair_play"], false,
        "a chosen seed is not fair play"
    );
    replay_host.stop().await;
    host.stop().await;
}

/// A token is stored only as its hash: the session's stored record does
/// not contain it, yet it still works after the host reloads the session.
#[tokio::test]
async fn tokens_are_stored_only_as_hashes() {
    let host = TestHost::start_with(&[("hokm", "hokm")], |config| {
        config.sessions.live_max = 1;
        config.wasm.instances_max = 9;
    })
    .await;
    let api = host.api();
    let session = api.create("hokm", json!({})).await;
    let player = api.join(&session, "ali").await;
    let stored = host
        .app
        .storage()
        .hot
        .get(&Namespace::host(), &format!("session:{session}"))
        .await
        .unwrap()
        .expect("the session is stored");
    let token = player.token.as_bytes();
    assert!(
        !stored.windows(token.len()).any(|w| w == token),
        "the stored record holds the token in clear"
    );
    // Another session takes the only live place: ali's reloads from storage.
    api.create("hokm", json!({})).await;
    assert_eq!(player.view().await["you"]["seat"], 0);
    host.stop().await;
}

/// A session nobody joins is forgotten after `unjoined_ttl_ms`; a joined
/// one after `ttl_ms` since its last change, and its tokens with it, even
/// while it is still in memory.
#[tokio::test]
async fn unjoined_sessions_expire_quickly_and_tokens_with_their_session() {
    let host = TestHost::start_with(&[("hokm", "hokm")], |config| {
        config.sessions.unjoined_ttl_ms = 300;
        config.sessions.ttl_ms = 1500;
    })
    .await;
    let api = host.api();
    let unjoined = api.create("hokm", json!({})).await;
    let joined = api.create("hokm", json!({})).await;
    let player = api.join(&joined, "ali").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let gone = api.get(&format!("/v1/sessions/{unjoined}")).await;
    assert_eq!((gone.status, gone.code()), (404, "unknown_session"));
    assert_eq!(
        player.view().await["you"]["seat"],
        0,
        "a joined session lives on"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let expired = api
        .send(
            "GET",
            &format!("/v1/sessions/{joined}/view"),
            None,
            Some(&player.token),
        )
        .await;
    assert_eq!((expired.status, expired.code()), (404, "unknown_session"));
    host.stop().await;
}
