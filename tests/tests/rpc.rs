//! Calls outside any session (issue 15): `POST /v1/games/{game}/rpc/{name}`.
//! Hokm's leaderboard and match history read through it, on sled and on
//! Redis + PostgreSQL; the caller's account reaches the plugin; an unknown
//! game or name, malformed input, and a trapping, looping or greedy RPC
//! each get a clear error while the host keeps serving.

use hoard_tests::services::service_host;
use hoard_tests::{Api, Reply, TestHost, hokm};
use serde_json::{Value, json};
use std::collections::BTreeMap;

async fn rpc(api: &Api, game: &str, name: &str, input: &str, token: Option<&str>) -> Reply {
    api.send(
        "POST",
        &format!("/v1/games/{game}/rpc/{name}"),
        Some(input),
        token,
    )
    .await
}

/// Two games, then Hokm's RPCs: each finished match once in `history`, in
/// order, and `leaderboard` counts each winner's wins.
async fn hokm_reads_through_rpc(api: &Api) {
    let mut played = Vec::new();
    for seed in [5, 6] {
        played.push(hokm::play_game(api, seed).await);
    }
    let history = rpc(api, "hokm", "history", "{}", None).await;
    assert_eq!(history.status, 200, "{:?}", history.body);
    let matches = history.body["result"]["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 2, "{matches:?}");
    for (entry, game) in matches.iter().zip(&played) {
        let winners: Vec<&str> = [game.winner_team, game.winner_team + 2]
            .iter()
            .map(|seat| game.players[*seat as usize].name.as_str())
            .collect();
        assert_eq!(entry["outcome"]["winners"], json!(winners), "{entry}");
    }
    let later = rpc(api, "hokm", "history", r#"{"after": 1, "limit": 5}"#, None).await;
    assert_eq!(later.body["result"]["matches"][0]["seq"], 2);
    assert_eq!(later.body["result"]["matches"].as_array().unwrap().len(), 1);

    let mut wins = BTreeMap::<String, f64>::new();
    for game in &played {
        for seat in [game.winner_team, game.winner_team + 2] {
            *wins
                .entry(game.players[seat as usize].name.clone())
                .or_default() += 1.0;
        }
    }
    let board = rpc(api, "hokm", "leaderboard", r#"{"n": 100}"#, None).await;
    assert_eq!(board.status, 200, "{:?}", board.body);
    let rows = board.body["result"]["wins"].as_array().unwrap();
    let read: BTreeMap<String, f64> = rows
        .iter()
        .map(|row| {
            (
                row["player"].as_str().unwrap().to_owned(),
                row["wins"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(read, wins);
    let ranks: Vec<u64> = rows.iter().map(|r| r["rank"].as_u64().unwrap()).collect();
    assert_eq!(ranks, (0..rows.len() as u64).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hokm_leaderboard_and_history_through_rpc_offline() {
    let host = TestHost::start(&[("hokm", "hokm")]).await;
    let api = host.api();
    let empty = rpc(&api, "hokm", "history", "{}", None).await;
    assert_eq!(
        empty.body["result"],
        json!({"matches": []}),
        "{:?}",
        empty.body
    );
    hokm_reads_through_rpc(&api).await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hokm_leaderboard_and_history_through_rpc_in_service_mode() {
    let (host, _services) = service_host(&[("hokm", "hokm")]).await;
    hokm_reads_through_rpc(&host.api()).await;
    host.stop().await;
}

/// The caller's account reaches the plugin; no token is no caller; a token
/// that is not an account's is refused, not taken as none. The lobby lists
/// each game's RPCs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_is_the_account_that_sent_the_call() {
    let host = TestHost::start(&[("probe", "probe")]).await;
    let api = host.api();
    let games = api.get("/v1/games").await;
    assert_eq!(games.body["games"][0]["rpcs"], json!(["do"]));
    let registered = api
        .post(
            "/v1/accounts",
            &json!({"name": "ada", "secret": "analytical engine"}),
        )
        .await;
    let id = registered.body["account"].clone();
    let login = api
        .post(
            "/v1/login",
            &json!({"name": "ada", "secret": "analytical engine"}),
        )
        .await;
    let token = login.body["token"].as_str().unwrap();
    let input = r#"{"do": "hot-set", "key": "k", "value": "v"}"#;
    let anonymous = rpc(&api, "probe", "do", input, None).await;
    assert_eq!(anonymous.status, 200, "{:?}", anonymous.body);
    assert_eq!(anonymous.body["result"]["caller"], Value::Null);
    let signed = rpc(
        &api,
        "probe",
        "do",
        r#"{"do": "hot-get", "key": "k"}"#,
        Some(token),
    )
    .await;
    assert_eq!(
        signed.body["result"],
        json!({"caller": {"name": "ada", "account": id}, "result": "v"}),
        "the RPC wrote and read the probe's own namespace"
    );
    let forged = rpc(&api, "probe", "do", input, Some("ada.not-a-real-token")).await;
    assert_eq!((forged.status, forged.code()), (401, "bad_account_token"));
    host.stop().await;
}

/// Each bad call gets its own clear error; a faulting RPC fails alone, and
/// the next call, RPC or action, is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rpcs_get_clear_errors_and_the_host_keeps_serving() {
    let host = TestHost::start_with(&[("hokm", "hokm"), ("probe", "probe")], |c| {
        c.wasm.call_timeout_ms = 200;
        c.wasm.memory_bytes_max = 32 * 1024 * 1024;
    })
    .await;
    let api = host.api();
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, "p").await;
    let cases: [(&str, &str, &str, u16, &str); 9] = [
        ("chess", "top", "{}", 404, "unknown_game"),
        ("hokm", "secrets", "{}", 404, "unknown_rpc"),
        ("hokm", "leaderboard", "{not json", 400, "bad_json"),
        ("hokm", "leaderboard", "[1, 2]", 400, "bad_json"),
        ("hokm", "leaderboard", r#"{"n": 0}"#, 400, "bad_input"),
        ("hokm", "history", r#"{"limit": "all"}"#, 400, "bad_input"),
        ("probe", "do", r#"{"do": "trap"}"#, 500, "plugin_failed"),
        ("probe", "do", r#"{"do": "loop"}"#, 500, "plugin_timeout"),
        (
            "probe",
            "do",
            r#"{"do": "grow"}"#,
            500,
            "plugin_out_of_memory",
        ),
    ];
    for round in 0..2 {
        for (game, name, input, status, code) in cases {
            let reply = rpc(&api, game, name, input, None).await;
            assert_eq!(
                (reply.status, reply.code()),
                (status, code),
                "round {round}: {game}/{name} {input}: {:?}",
                reply.body
            );
            let fine = rpc(&api, "probe", "do", r#"{"do": "count"}"#, None).await;
            assert_eq!(fine.status, 200, "{:?}", fine.body);
            let acted = player
                .act(&json!({"do": "hot-set", "key": "alive", "value": "yes"}))
                .await;
            assert_eq!(acted.status, 200, "{:?}", acted.body);
        }
    }
    let wrong_method = api.get("/v1/games/hokm/rpc/leaderboard").await;
    assert_eq!(
        (wrong_method.status, wrong_method.code()),
        (405, "method_not_allowed")
    );
    host.stop().await;
}
