//! Issue 13, item 9, in service mode: a session's record is read from
//! Redis before the session goes into memory. If the same session is
//! loaded, changed and evicted while that read is in flight, the slow
//! reader must not put its stale copy in memory and build on it: that
//! would lose an acknowledged action.
//!
//! A failpoint (the `fail` crate, `failpoints` feature) holds the first
//! load of a session for 300 ms after its read: the window, made wide.
//! Own test binary: failpoints are global to a process.

use hoard_tests::TestHost;
use hoard_tests::services::{RedisKeys, TestDatabase, use_service_backends};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_load_does_not_bring_back_a_stale_session() {
    let scenario = fail::FailScenario::setup();
    let (keys, database) = (RedisKeys::new(), TestDatabase::create().await);
    let host = TestHost::start_with(&[("probe", "probe")], |config| {
        use_service_backends(config, &keys, &database);
        // One session in memory: touching one evicts the other.
        config.sessions.live_max = 1;
        config.wasm.instances_max = 9;
    })
    .await;
    let api = host.api();
    let slow = api.create("probe", json!({})).await;
    let slow = api.join(&slow, "p").await;
    let other = api.create("probe", json!({})).await;
    let other = api.join(&other, "p").await;
    assert_eq!(other.act(&json!({"do": "count"})).await.status, 200);
    // `slow` is out of memory now. Its next load is held after the read.
    fail::cfg("session-loaded", "1*sleep(300)").unwrap();
    let first = {
        let slow = slow.clone();
        tokio::spawn(async move { slow.act(&json!({"do": "count"})).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Meanwhile: the same session acts, and is evicted again.
    let second = slow.act(&json!({"do": "count"})).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    let evicting = {
        let other = other.clone();
        tokio::spawn(async move { other.act(&json!({"do": "count"})).await })
    };
    let first = first.await.unwrap();
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(evicting.await.unwrap().status, 200);
    let summary = api.get(&format!("/v1/sessions/{}", slow.session)).await;
    assert_eq!(
        summary.body["actions"],
        json!(2),
        "both acknowledged actions count"
    );
    host.stop().await;
    scenario.teardown();
}
