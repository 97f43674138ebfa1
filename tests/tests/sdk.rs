//! The guest SDK's helpers, through the probe plugin: `Records::update`
//! retries on `conflict`, so concurrent read-modify-writes of one record
//! from many sessions lose nothing; the cache-aside helper serves hits from
//! hot, counts them, and sees writes; the write-behind helper copies hot to
//! cold on its alarm, again and again, and at once on a flush. On sled and
//! on Redis + PostgreSQL.

use hoard_tests::Player;
use hoard_tests::services::service_host;
use hoard_tests::{Api, TestHost};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

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

/// The probe's answer to `action` (its `last`), which must succeed.
async fn last(player: &Player, action: Value) -> Value {
    let reply = player.act(&action).await;
    assert_eq!(reply.status, 200, "{action}: {:?}", reply.body);
    reply.body["view"]["last"].clone()
}

/// A cold record's body, read straight from cold (not through the cache).
async fn cold_body(player: &Player, collection: &str, key: &str) -> Value {
    let read = last(
        player,
        json!({"do": "cold-get", "collection": collection, "key": key}),
    )
    .await;
    match read["body"].as_str() {
        Some(body) => serde_json::from_str(body).unwrap(),
        None => Value::Null,
    }
}

/// Ten reads of one template: one miss, nine hits, each the record's
/// value; a write through the cache is seen by the next read (a miss); a
/// copy older than its TTL is read again (a miss); a record that does not
/// exist is `null` and is not cached.
async fn cache_aside(api: &Api) {
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, "p").await;
    let orc = json!({"name": "orc", "hp": 12});
    let put =
        json!({"do": "cold-put", "collection": "monsters", "key": "orc", "body": orc.to_string()});
    last(&player, put).await;
    let get = json!({"do": "cache-get", "collection": "monsters", "key": "orc", "ttl_ms": 60_000});
    for read in 1..=10 {
        let got = last(&player, get.clone()).await;
        assert_eq!(got["value"], orc);
        assert_eq!(
            (got["hits"].as_u64(), got["misses"].as_u64()),
            (Some(read - 1), Some(1))
        );
    }

    let stronger = json!({"name": "orc", "hp": 20});
    let put = json!({"do": "cache-put", "collection": "monsters", "key": "orc", "body": stronger.to_string()});
    assert_eq!(
        last(&player, put).await,
        json!(2),
        "the record's second version"
    );
    let got = last(&player, get.clone()).await;
    assert_eq!(got["value"], stronger, "the write dropped the stale copy");
    assert_eq!(
        (got["hits"].as_u64(), got["misses"].as_u64()),
        (Some(9), Some(2))
    );

    // A short TTL: the copy expires and the next read is a miss again.
    let short = json!({"do": "cache-get", "collection": "items", "key": "sword", "ttl_ms": 200});
    let sword = json!({"name": "sword", "damage": 4});
    let put =
        json!({"do": "cold-put", "collection": "items", "key": "sword", "body": sword.to_string()});
    last(&player, put).await;
    let first = last(&player, short.clone()).await;
    let second = last(&player, short.clone()).await;
    assert_eq!(
        (first["misses"].as_u64(), second["hits"].as_u64()),
        (Some(1), Some(1))
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let third = last(&player, short).await;
    assert_eq!(third["value"], sword);
    assert_eq!(third["misses"].as_u64(), Some(2), "the copy expired");

    let absent = json!({"do": "cache-get", "collection": "items", "key": "nothing"});
    for misses in [3, 4] {
        let got = last(&player, absent.clone()).await;
        assert_eq!(got["value"], Value::Null);
        assert_eq!(
            got["misses"].as_u64(),
            Some(misses),
            "absence is not cached"
        );
    }
}

/// Polls cold until record `key` of `collection` is `want`.
async fn wait_for_cold(player: &Player, collection: &str, key: &str, want: &Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = cold_body(player, collection, key).await;
        if &body == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cold still holds {body}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A value written to hot reaches cold only when the alarm copies it, and
/// again after every period; a flush copies at once.
async fn write_behind(api: &Api) {
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, "p").await;
    let action = |what: &str, body: Option<Value>| {
        let mut action = json!({"do": format!("write-behind-{what}"), "key": "hp:ada",
            "collection": "characters", "member": "ada", "ttl_ms": 1_000});
        if let Some(body) = body {
            action["body"] = json!(body.to_string());
        }
        action
    };
    last(&player, action("set", Some(json!({"hp": 5})))).await;
    last(&player, action("start", None)).await;
    assert_eq!(
        cold_body(&player, "characters", "ada").await,
        Value::Null,
        "nothing copied before the alarm"
    );
    assert_eq!(
        last(&player, action("get", None)).await,
        json!({"hp": 5}),
        "read from hot"
    );
    wait_for_cold(&player, "characters", "ada", &json!({"hp": 5})).await;

    // The alarm set itself again: a later change is copied too.
    last(&player, action("set", Some(json!({"hp": 7})))).await;
    wait_for_cold(&player, "characters", "ada", &json!({"hp": 7})).await;

    last(&player, action("set", Some(json!({"hp": 9})))).await;
    assert_eq!(last(&player, action("flush", None)).await, json!(true));
    assert_eq!(
        cold_body(&player, "characters", "ada").await,
        json!({"hp": 9}),
        "flushed at once"
    );

    // With the hot copy gone, `get` falls back to cold.
    last(&player, json!({"do": "hot-delete", "key": "hp:ada"})).await;
    assert_eq!(last(&player, action("get", None)).await, json!({"hp": 9}));
    assert_eq!(
        last(&player, action("flush", None)).await,
        json!(false),
        "nothing to copy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_aside_and_write_behind_offline() {
    let host = TestHost::start(&[("probe", "probe")]).await;
    cache_aside(&host.api()).await;
    write_behind(&host.api()).await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_aside_and_write_behind_in_service_mode() {
    let (host, _services) = service_host(&[("probe", "probe")]).await;
    cache_aside(&host.api()).await;
    write_behind(&host.api()).await;
    host.stop().await;
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
