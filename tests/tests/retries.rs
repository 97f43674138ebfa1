//! Exactly once across retries (issue 14): an action whose writes went
//! through but whose session record failed to store is retried by its
//! client, and the writes count once; an action retried with the same
//! `Idempotency-Key` gets the first answer and does nothing more. On sled
//! and on Redis + PostgreSQL.
//!
//! A failpoint (`session-store`) fails the record's store once. Own test
//! binary: failpoints are global to a process.

use hoard::storage::Namespace;
use hoard_tests::services::{RedisKeys, TestDatabase, use_service_backends};
use hoard_tests::{Player, TestHost};
use serde_json::{Value, json};

fn record_match() -> Value {
    json!({"do": "record-match", "key": "m", "member": "ann", "body": "{\"won\": true}"})
}

async fn act_with_key(player: &Player, action: &Value, key: &str) -> reqwest::Response {
    player.act_keyed(action, key).await
}

/// History entries, the board score and the counter the probe wrote.
async fn counts(host: &TestHost) -> (usize, f64, Vec<u8>) {
    let ns = Namespace::plugin("probe").unwrap();
    let storage = host.app.storage();
    let history = storage.cold.read_history(&ns, "m", 0, 100).await.unwrap();
    let score = storage
        .hot
        .leaderboard_rank(&ns, "m", "ann")
        .await
        .unwrap()
        .map(|e| e.score)
        .unwrap_or(0.0);
    let counter = storage.hot.get(&ns, "m").await.unwrap().unwrap_or_default();
    (history.len(), score, counter)
}

async fn retried_actions_count_once(host: TestHost) {
    let api = host.api();
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, "p").await;

    // The record fails to store after the plugin's writes went through.
    fail::cfg("session-store", "1*return").unwrap();
    let failed = player.act(&record_match()).await;
    assert_eq!((failed.status, failed.code()), (503, "storage_unavailable"));
    // The client retries: the same action number, the same op ids.
    let retried = player.act(&record_match()).await;
    assert_eq!(retried.status, 200, "{:?}", retried.body);
    assert_eq!(retried.body["view"]["last"], json!([1, 1.0, 1]));
    assert_eq!(counts(&host).await, (1, 1.0, b"1".to_vec()), "counted once");

    // With an Idempotency-Key: the retry gets the first answer.
    let first = act_with_key(&player, &record_match(), "match-2").await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["view"]["last"], json!([2, 2.0, 2]));
    let again = act_with_key(&player, &record_match(), "match-2").await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        first,
        "the first answer"
    );
    assert_eq!(counts(&host).await, (2, 2.0, b"2".to_vec()), "nothing more");
    // The same key for another action is refused.
    let other = act_with_key(&player, &json!({"do": "count"}), "match-2").await;
    assert_eq!(other.status(), 422);
    // A keyed action whose record failed to store was not done: its retry
    // does it, once.
    fail::cfg("session-store", "1*return").unwrap();
    assert_eq!(
        act_with_key(&player, &record_match(), "match-3")
            .await
            .status(),
        503
    );
    assert_eq!(
        act_with_key(&player, &record_match(), "match-3")
            .await
            .status(),
        200
    );
    let replay = act_with_key(&player, &record_match(), "match-3").await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(counts(&host).await, (3, 3.0, b"3".to_vec()));
    let summary = api.get(&format!("/v1/sessions/{session}")).await;
    assert_eq!(summary.body["actions"], 3);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_actions_count_once_on_sled() {
    let scenario = fail::FailScenario::setup();
    retried_actions_count_once(TestHost::start(&[("probe", "probe")]).await).await;
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_actions_count_once_on_redis_and_postgres() {
    let scenario = fail::FailScenario::setup();
    let (keys, database) = (RedisKeys::new(), TestDatabase::create().await);
    let host = TestHost::start_with(&[("probe", "probe")], |config| {
        use_service_backends(config, &keys, &database)
    })
    .await;
    retried_actions_count_once(host).await;
    scenario.teardown();
}
