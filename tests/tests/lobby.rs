//! The lobby (`GET /v1/games/{game}/sessions`): a session is listed only
//! when its creator asked, once someone sits at it, until it is full or
//! ends; one made without asking is reached by its id only.

use hoard_tests::TestHost;
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "lobby-tests-admin-token";

async fn listed(api: &hoard_tests::Api, game: &str) -> Vec<Value> {
    let reply = api.get(&format!("/v1/games/{game}/sessions")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["sessions"].as_array().unwrap().clone()
}

fn ids(sessions: &[Value]) -> Vec<&str> {
    sessions
        .iter()
        .map(|s| s["session"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_lobby_lists_asked_for_tables_with_someone_seated_and_a_seat_free() {
    let host = TestHost::start_with(&[("hokm", "hokm"), ("pig", "pig")], |config| {
        config.admin.token = Some(ADMIN_TOKEN.into());
    })
    .await;
    let api = host.api();
    let private = api.create("hokm", json!({})).await;
    let public = api.create("hokm", json!({"listed": true})).await;
    assert!(
        listed(&api, "hokm").await.is_empty(),
        "nobody sits at either yet"
    );

    for name in ["ann", "ben"] {
        for session in [&private, &public] {
            let joined = api
                .post(
                    &format!("/v1/sessions/{session}/join"),
                    &json!({"name": name}),
                )
                .await;
            assert_eq!(joined.status, 201, "{:?}", joined.body);
        }
    }
    let open = listed(&api, "hokm").await;
    assert_eq!(ids(&open), [public.as_str()], "only the listed table");
    assert_eq!(open[0]["players"], json!(["ann", "ben"]));
    assert_eq!(open[0]["seats"], 4);
    assert!(listed(&api, "pig").await.is_empty(), "per game");

    // Full: gone from the list.
    for name in ["cy", "di"] {
        let path = format!("/v1/sessions/{public}/join");
        assert_eq!(api.post(&path, &json!({"name": name})).await.status, 201);
    }
    assert!(listed(&api, "hokm").await.is_empty());

    // Ended by an operator: gone, and no one joins it any more.
    let other = api.create("pig", json!({"listed": true})).await;
    let path = format!("/v1/sessions/{other}/join");
    assert_eq!(api.post(&path, &json!({"name": "eve"})).await.status, 201);
    assert_eq!(ids(&listed(&api, "pig").await), [other.as_str()]);
    let end = api
        .send(
            "POST",
            &format!("/admin/v1/sessions/{other}/end"),
            None,
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(end.status, 200, "{:?}", end.body);
    assert_eq!(end.body["ended"], true);
    assert!(listed(&api, "pig").await.is_empty());
    let late = api.post(&path, &json!({"name": "fay"})).await;
    assert_eq!((late.status, late.code()), (409, "game_finished"));
    let summary = api.get(&format!("/v1/sessions/{other}")).await;
    assert_eq!(summary.body["outcome"], json!({"ended_by": "operator"}));
    assert!(
        summary.body["fairness"]["seed"].is_u64(),
        "the seed is revealed"
    );

    // Bad input: an unknown game, a body field the host does not know.
    let unknown = api.get("/v1/games/chess/sessions").await;
    assert_eq!((unknown.status, unknown.code()), (404, "unknown_game"));
    let bad = api
        .post("/v1/games/hokm/sessions", &json!({"listed": "yes"}))
        .await;
    assert_eq!((bad.status, bad.code()), (400, "bad_json"));
    host.stop().await;
}
