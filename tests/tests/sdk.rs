//! The guest SDK's helpers, through the probe plugin: `Records::update`
//! retries on `conflict`, so concurrent read-modify-writes of one record
//! from many sessions lose nothing. On sled and on Redis + PostgreSQL.

use hoard_tests::services::service_host;
use hoard_tests::{Api, TestHost};
use serde_json::json;

/// Four sessions each add 25 to one tally at once: it ends at 100, at
/// version 100, every add answered.
async fn concurrent_updates_lose_nothing(api: &Api) {
    let mut players = Vec::new();
    for _ in 0..4 {
        let session = api.create("probe", json!({})).await;
        players.push(api.join(&session, "p").await);
    }
    let tasks: Vec<_> = players
        .into_iter()
        .map(|player| {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..25 {
                    let reply = player.act(&json!({"do": "tally", "key": "t"})).await;
                    assert_eq!(reply.status, 200, "{:?}", reply.body);
                    seen.push(reply.body["view"]["last"]["n"].as_u64().unwrap());
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    assert_eq!(
        all,
        (1..=100).collect::<Vec<u64>>(),
        "each add saw its own total"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_record_updates_lose_nothing_offline() {
    let host = TestHost::start(&[("probe", "probe")]).await;
    concurrent_updates_lose_nothing(&host.api()).await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_record_updates_lose_nothing_in_service_mode() {
    let (host, _services) = service_host(&[("probe", "probe")]).await;
    concurrent_updates_lose_nothing(&host.api()).await;
    host.stop().await;
}
