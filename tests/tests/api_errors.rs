//! Bad requests get a clear JSON error with a stable code and the right
//! status, and change nothing.

use hoard_tests::TestHost;
use serde_json::json;

/// method, path, body, token, expected status, expected code.
type Case<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    u16,
    &'a str,
);

/// A table of malformed, oversize, unknown and unauthenticated requests.
#[tokio::test]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let host = TestHost::start_with(&[("hokm", "hokm")], |c| c.server.body_bytes_max = 4096).await;
    let api = host.api();
    let session = api.create("hokm", json!({"seed": 5})).await;
    let player = api.join(&session, "ali").await;
    let before = player.view().await;
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(5000));
    let actions = format!("/v1/sessions/{session}/actions");
    let join = format!("/v1/sessions/{session}/join");
    let view = format!("/v1/sessions/{session}/view");
    let unknown = "/v1/sessions/00000000000000000000000000000000/actions";
    let cases: &[Case] = &[
        (
            "POST",
            "/v1/games/hokm/sessions",
            Some("{not json"),
            None,
            400,
            "bad_json",
        ),
        (
            "POST",
            "/v1/games/hokm/sessions",
            Some(r#"{"seed": "five"}"#),
            None,
            400,
            "bad_json",
        ),
        (
            "POST",
            "/v1/games/hokm/sessions",
            Some(r#"{"colour": "red"}"#),
            None,
            400,
            "bad_json",
        ),
        (
            "POST",
            "/v1/games/hokm/sessions",
            Some(r#"{"config": {"target_points": 0}}"#),
            None,
            400,
            "bad_config",
        ),
        (
            "POST",
            "/v1/games/chess/sessions",
            Some("{}"),
            None,
            404,
            "unknown_game",
        ),
        ("POST", &join, Some(&big), None, 413, "body_too_large"),
        (
            "POST",
            &join,
            Some(r#"{"name": "no spaces allowed"}"#),
            None,
            400,
            "invalid_name",
        ),
        (
            "POST",
            &join,
            Some(r#"{"name": "ali"}"#),
            None,
            409,
            "name_taken",
        ),
        ("POST", &join, Some("[1, 2"), None, 400, "bad_json"),
        (
            "POST",
            &actions,
            Some(r#"{"type": "play", "card": "AS"}"#),
            None,
            401,
            "missing_token",
        ),
        (
            "POST",
            &actions,
            Some(r#"{"type": "play", "card": "AS"}"#),
            Some("not-the-token"),
            401,
            "bad_token",
        ),
        (
            "POST",
            &actions,
            Some("{\"type\": "),
            Some(&player.token),
            400,
            "bad_json",
        ),
        (
            "POST",
            &actions,
            Some(r#"{"type": "dance"}"#),
            Some(&player.token),
            400,
            "bad_action",
        ),
        (
            "POST",
            &actions,
            Some(r#"{"type": "play", "card": "AS"}"#),
            Some(&player.token),
            422,
            "waiting_for_players",
        ),
        (
            "POST",
            unknown,
            Some("{}"),
            Some(&player.token),
            404,
            "unknown_session",
        ),
        (
            "GET",
            "/v1/sessions/not-an-id",
            None,
            None,
            404,
            "unknown_session",
        ),
        ("GET", &view, None, None, 401, "missing_token"),
        ("GET", &view, None, Some("x"), 401, "bad_token"),
        (
            "DELETE",
            &view,
            None,
            Some(&player.token),
            405,
            "method_not_allowed",
        ),
        ("GET", "/v2/anything", None, None, 404, "not_found"),
    ];
    for (method, path, body, token, status, code) in cases {
        let reply = api.send(method, path, *body, *token).await;
        assert_eq!(
            (reply.status, reply.code()),
            (*status, *code),
            "{method} {path} {body:?}: {:?}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "{method} {path}: an error says what is wrong"
        );
    }
    // A player's token does not work on another session.
    let other = api.create("hokm", json!({})).await;
    let reply = api
        .send(
            "GET",
            &format!("/v1/sessions/{other}/view"),
            None,
            Some(&player.token),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (401, "bad_token"));
    // Nothing changed: one player, the same view.
    assert_eq!(player.view().await, before);
    let summary = api.get(&format!("/v1/sessions/{session}")).await;
    assert_eq!(summary.body["players"], json!(["ali"]));
    assert_eq!(summary.body["actions"], json!(0));
    host.stop().await;
}

/// Health and readiness answer, and the lobby lists the loaded games.
#[tokio::test]
async fn health_readiness_and_lobby() {
    let host = TestHost::start(&[("hokm", "hokm")]).await;
    let api = host.api();
    assert_eq!(api.get("/healthz").await.body, json!({"status": "ok"}));
    let ready = api.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body["status"].as_str()),
        (200, Some("ok"))
    );
    let games = api.get("/v1/games").await;
    assert_eq!(games.body["games"][0]["name"], "hokm");
    assert_eq!(games.body["games"][0]["max_players"], 4);
    host.stop().await;
}
