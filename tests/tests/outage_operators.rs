//! What an operator meets around outages: a full outbox refusing writes
//! with `limit-exceeded`, dead letters seen, retried and dropped with the
//! CLI, the admin API's guard, `/metrics`, the start-up durability checks,
//! and a damaged outbox moved aside. Real servers the tests own.

use hoard::config::{ColdBackend, Config, HotBackend};
use hoard_tests::outage::{OwnPostgres, OwnRedis, Proxy, ProxyMode, act_until_open, wait_drained};
use hoard_tests::services::{RedisKeys, TestDatabase, free_port};
use hoard_tests::{TestHost, plugin_path};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

const ADMIN_TOKEN: &str = "admin-token-for-the-operator-tests";
const BINARY: &str = env!("CARGO_BIN_EXE_hoard-test-host");

fn service_config(config: &mut Config, redis_url: &str, postgres_url: &str) {
    config.storage.hot = HotBackend::Redis;
    config.storage.cold = ColdBackend::Postgres;
    config.storage.redis.url = redis_url.to_owned();
    config.storage.redis.connect_timeout_ms = 300;
    config.storage.redis.response_timeout_ms = 300;
    config.storage.postgres.url = postgres_url.to_owned();
    config.storage.postgres.acquire_timeout_ms = 300;
    config.storage.resilience.call_timeout_ms = 300;
    config.storage.resilience.probe_interval_ms = 100;
    config.storage.resilience.probe_interval_max_ms = 500;
    config.admin.token = Some(ADMIN_TOKEN.into());
}

/// `hoard queue ...` against the host at `address`.
fn cli(address: std::net::SocketAddr, args: &[&str], token: &str) -> (bool, String) {
    let output = Command::new(BINARY)
        .arg("queue")
        .args(args)
        .args(["--url", &format!("http://{address}"), "--token", token])
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// With Redis down and the outbox bounded at 24 ops, writes queue until it
/// is full; then the plugin's write gets `limit-exceeded` and the action a
/// clear 503, `/readyz` says so; every acknowledged increment lands once
/// Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_refuses_writes_and_loses_nothing_acknowledged() {
    let mut redis = OwnRedis::start().await;
    let database = TestDatabase::create().await;
    let host = TestHost::start_with(&[("probe", "probe")], |config| {
        service_config(config, &redis.url(), &database.url);
        config.storage.resilience.outbox_ops_max = 24;
    })
    .await;
    let api = host.api();
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, "p").await;
    redis.kill();
    let mut acknowledged = 0u64;
    let refused = loop {
        let reply = player.act(&json!({"do": "hot-incr", "key": "n"})).await;
        match (reply.status, &reply.body["view"]["last"]) {
            (200, Value::Number(_)) => acknowledged += 1,
            (200, last) => {
                assert!(
                    last["error"]
                        .as_str()
                        .unwrap_or("")
                        .contains("LimitExceeded"),
                    "{last}"
                );
                assert!(
                    last["error"].as_str().unwrap_or("").contains("outbox-ops"),
                    "{last}"
                );
                break reply;
            }
            (503, _) => {
                assert_eq!(reply.code(), "outbox_full", "{:?}", reply.body);
                break reply;
            }
            _ => panic!("{:?}", reply),
        }
        assert!(acknowledged < 100, "the outbox never filled");
    };
    assert!(acknowledged >= 5, "writes were queued before it filled");
    let ready = api.get("/readyz").await;
    assert_eq!(
        ready.status, 503,
        "{:?} after {:?}",
        ready.body, refused.body
    );
    assert!(
        ready.body["reasons"].to_string().contains("full"),
        "{:?}",
        ready.body
    );
    redis.restart().await;
    wait_drained(&api, ADMIN_TOKEN, Duration::from_secs(30)).await;
    let stored: u64 = redis::cmd("GET")
        .arg(hoard::storage::redis::key(
            "hoard",
            &hoard::storage::Namespace::plugin("probe").unwrap(),
            "v",
            "n",
        ))
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(stored, acknowledged, "every acknowledged increment, once");
    host.stop().await;
}

/// Writes that the backend refuses on replay (an increment on a value that
/// turned into text meanwhile) go to the dead letters while the rest
/// flow; the CLI lists them, retries one once the value is fixed, and
/// drops the other. Wrong or missing admin tokens change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_kept_and_retried_or_dropped_from_the_cli() {
    let redis = OwnRedis::start().await;
    let proxy = Proxy::start(redis.address()).await;
    let database = TestDatabase::create().await;
    let host = TestHost::start_with(&[("probe", "probe")], |config| {
        service_config(
            config,
            &format!("redis://127.0.0.1:{}", proxy.port),
            &database.url,
        )
    })
    .await;
    let api = host.api();
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, "p").await;
    // Redis goes; once the breaker is open, writes go straight to the
    // outbox, none of them half-sent before the cut.
    proxy.set(ProxyMode::Cut);
    let write = json!({"do": "hot-incr", "key": "w"});
    act_until_open(&api, ADMIN_TOKEN, "hot", || player.act(&write)).await;
    for (key, times) in [("x", 2), ("y", 1), ("z", 3)] {
        for _ in 0..times {
            let reply = player.act(&json!({"do": "hot-incr", "key": key})).await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
        }
    }
    // Meanwhile, behind the host's back, x and y stop being numbers.
    let ns = hoard::storage::Namespace::plugin("probe").unwrap();
    let key = |name: &str| hoard::storage::redis::key("hoard", &ns, "v", name);
    let mut direct = redis.connection();
    for name in ["x", "y"] {
        let _: () = redis::cmd("SET")
            .arg(key(name))
            .arg("text")
            .query(&mut direct)
            .unwrap();
    }
    proxy.set(ProxyMode::Pass);
    wait_drained(&api, ADMIN_TOKEN, Duration::from_secs(30)).await;
    let z: u64 = redis::cmd("GET").arg(key("z")).query(&mut direct).unwrap();
    assert_eq!(z, 3, "the rest flowed");

    let address = host.address;
    let (ok, listed) = cli(
        address,
        &["dead-letters", "list", "--capability", "hot"],
        ADMIN_TOKEN,
    );
    assert!(ok, "{listed}");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "two increments of x, one of y: {listed}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("incr") && l.contains("probe")),
        "{listed}"
    );
    let (ok, json_list) = cli(
        address,
        &["dead-letters", "list", "--capability", "hot", "--json"],
        ADMIN_TOKEN,
    );
    assert!(ok);
    let letters: Value = serde_json::from_str(&json_list).unwrap();
    let ids = |write: &str| -> Vec<u64> {
        letters["dead_letters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["write"].as_str().unwrap().contains(write))
            .map(|l| l["id"].as_u64().unwrap())
            .collect()
    };
    let (x_ids, y_ids) = (ids("\"x\""), ids("\"y\""));
    assert_eq!((x_ids.len(), y_ids.len()), (2, 1), "{letters}");

    // A wrong token, and none: refused, nothing changes.
    let (ok, refused) = cli(
        address,
        &["dead-letters", "drop", "hot", &y_ids[0].to_string()],
        "not-the-admin-token",
    );
    assert!(!ok && refused.contains("401"), "{refused}");
    for token in [None, Some(player.token.clone())] {
        let reply = api
            .send("GET", "/admin/v1/queue", None, token.as_deref())
            .await;
        assert_eq!(reply.status, 401, "{:?}", reply.body);
    }
    let (_, still) = cli(address, &["status"], ADMIN_TOKEN);
    assert!(still.contains("dead letters: 3"), "{still}");

    // x is fixed; its letters replay. y's is dropped.
    let _: () = redis::cmd("SET")
        .arg(key("x"))
        .arg("40")
        .query(&mut direct)
        .unwrap();
    for id in &x_ids {
        let (ok, retried) = cli(
            address,
            &["dead-letters", "retry", "hot", &id.to_string()],
            ADMIN_TOKEN,
        );
        assert!(ok && retried.contains("queued again"), "{retried}");
    }
    let (ok, dropped) = cli(
        address,
        &["dead-letters", "drop", "hot", &y_ids[0].to_string()],
        ADMIN_TOKEN,
    );
    assert!(ok && dropped.contains("dropped"), "{dropped}");
    wait_drained(&api, ADMIN_TOKEN, Duration::from_secs(30)).await;
    let x: u64 = redis::cmd("GET").arg(key("x")).query(&mut direct).unwrap();
    assert_eq!(x, 42, "both increments of x replayed once");
    let (_, empty) = cli(
        address,
        &["dead-letters", "list", "--capability", "hot"],
        ADMIN_TOKEN,
    );
    assert_eq!(empty.trim(), "no dead letters");
    let (ok, gone) = cli(
        address,
        &["dead-letters", "drop", "hot", &y_ids[0].to_string()],
        ADMIN_TOKEN,
    );
    assert!(!ok && gone.contains("no_such_dead_letter"), "{gone}");
    host.stop().await;
}

/// A versioned put queued while PostgreSQL is away meets a record an
/// operator changed meanwhile: on replay it is a conflict, so it goes to
/// the dead letters, and the puts committed in the same replay batch as
/// it land once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_changed_during_the_outage_is_a_dead_letter_and_its_batch_lands() {
    let redis = OwnRedis::start().await;
    let database = TestDatabase::create().await;
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let host = TestHost::start_with(&[("probe", "probe")], |config| {
        service_config(
            config,
            &redis.url(),
            &format!(
                "postgres://postgres@127.0.0.1:{}/{}",
                proxy.port, database.name
            ),
        );
        // Every queued put in one batch.
        config.storage.resilience.replay_commit_max = 64;
    })
    .await;
    let api = host.api();
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, "p").await;
    let put = |key: &str, body: &str, expected: Option<u64>| json!({"do": "cold-put", "collection": "c", "key": key, "body": body, "expected": expected});
    let reply = player.act(&put("a", r#"{"by":"player"}"#, None)).await;
    assert_eq!(reply.body["view"]["last"], 1, "{:?}", reply.body);

    proxy.set(ProxyMode::Cut);
    let write = put("w", "{}", None);
    act_until_open(&api, ADMIN_TOKEN, "cold", || player.act(&write)).await;
    // Checked against what the host knows, the versioned put passes.
    let reply = player
        .act(&put("a", r#"{"by":"player again"}"#, Some(1)))
        .await;
    assert_eq!(reply.body["view"]["last"], 2, "{:?}", reply.body);
    for key in ["b1", "b2", "b3", "b4", "b5"] {
        let reply = player.act(&put(key, r#"{"n":1}"#, None)).await;
        assert_eq!(reply.body["view"]["last"], 1, "{:?}", reply.body);
    }
    // Meanwhile an operator edits a straight in the database.
    let mut direct = <sqlx::PgConnection as sqlx::Connection>::connect(&database.url)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE records SET version = 2, body = '{\"by\":\"operator\"}' WHERE namespace = 'probe' AND collection = 'c' AND key = 'a'",
    )
    .execute(&mut direct)
    .await
    .unwrap();
    proxy.set(ProxyMode::Pass);
    wait_drained(&api, ADMIN_TOKEN, Duration::from_secs(30)).await;

    let rows: Vec<(Vec<u8>, i64, String)> = sqlx::query_as(
        "SELECT key, version, body FROM records WHERE namespace = 'probe' AND collection = 'c' AND key <> 'w' ORDER BY key",
    )
    .fetch_all(&mut direct)
    .await
    .unwrap();
    let rows: Vec<(String, i64, String)> = rows
        .into_iter()
        .map(|(key, version, body)| (String::from_utf8(key).unwrap(), version, body))
        .collect();
    let mut expected = vec![("a".to_owned(), 2, r#"{"by":"operator"}"#.to_owned())];
    for key in ["b1", "b2", "b3", "b4", "b5"] {
        expected.push((key.to_owned(), 1, r#"{"n":1}"#.to_owned()));
    }
    assert_eq!(
        rows, expected,
        "the operator's edit stands; the rest landed once"
    );
    let (ok, listed) = cli(
        host.address,
        &["dead-letters", "list", "--capability", "cold"],
        ADMIN_TOKEN,
    );
    assert!(ok, "{listed}");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 1, "{listed}");
    assert!(
        lines[0].contains("onflict") && lines[0].contains("\"a\""),
        "{listed}"
    );
    host.stop().await;
}

/// An oversize write while the backend is down gets `limit-exceeded`, as
/// it would when healthy; `/metrics` names every series; the admin API is
/// off without a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_writes_metrics_and_the_admin_guard() {
    let mut redis = OwnRedis::start().await;
    let database = TestDatabase::create().await;
    let host = TestHost::start_with(&[("probe", "probe")], |config| {
        service_config(config, &redis.url(), &database.url);
        config.storage.limits.value_bytes_max = 1024;
    })
    .await;
    let api = host.api();
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, "p").await;
    redis.kill();
    let huge = player
        .act(&json!({"do": "hot-set-huge", "key": "big", "bytes": 4096}))
        .await;
    assert_eq!(huge.status, 200);
    let error = huge.body["view"]["last"]["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        error.contains("LimitExceeded") && error.contains("value-bytes"),
        "{error}"
    );
    let _ = player.act(&json!({"do": "trap"})).await;
    let read = player
        .act(&json!({"do": "cold-get", "collection": "c", "key": "k"}))
        .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    let scraped = reqwest::get(format!("http://{}/metrics", host.address))
        .await
        .unwrap();
    assert!(
        scraped.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("openmetrics")
    );
    let text = scraped.text().await.unwrap();
    for series in [
        "hoard_breaker_state{capability=\"hot\",backend=\"redis\"}",
        "hoard_outbox_ops{capability=\"hot\"}",
        "hoard_outbox_bytes{capability=\"hot\"}",
        "hoard_outbox_oldest_seconds{capability=\"hot\"}",
        "hoard_replayed_ops_total{capability=\"cold\"}",
        "hoard_dead_letters{capability=\"cold\"} 0",
        "hoard_storage_call_duration_seconds_count{backend=\"redis\",capability=\"hot\",operation=\"set\"}",
        "hoard_storage_call_duration_seconds_count{backend=\"postgres\",capability=\"cold\"",
        "hoard_http_request_duration_seconds_count{route=\"actions\",status=\"200\"}",
        "hoard_http_request_duration_seconds_count{route=\"create\",status=\"201\"}",
        "hoard_plugin_call_duration_seconds_count{game=\"probe\",call=\"act\"}",
        "hoard_plugin_faults_total{game=\"probe\",fault=\"trap\"} 1",
        "hoard_live_sessions 1",
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }
    redis.restart().await;
    host.stop().await;
    let closed = TestHost::start(&[]).await;
    let reply = closed
        .api()
        .send("GET", "/admin/v1/queue", None, Some(ADMIN_TOKEN))
        .await;
    assert_eq!((reply.status, reply.code()), (403, "admin_disabled"));
    closed.stop().await;
}

/// With `storage.require_durable`, a Redis without an append-only file or a
/// PostgreSQL with `synchronous_commit = off` stops the start with a
/// message saying how to fix it; durable ones start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_refuses_servers_that_forget() {
    let dir = tempfile::tempdir().unwrap();
    let keys = RedisKeys::new();
    let database = TestDatabase::create().await;
    let lazy_postgres = OwnPostgres::start_with(&["synchronous_commit=off"]).await;
    let durable = OwnRedis::start().await;
    let start = |redis: &str, postgres: &str| {
        let path = dir.path().join(format!("{:x}.toml", rand::random::<u32>()));
        std::fs::write(
            &path,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n[storage]\nhot = \"redis\"\ncold = \"postgres\"\nrequire_durable = true\n\
                 [storage.redis]\nurl = \"{redis}\"\nkey_prefix = \"{prefix}\"\n[storage.postgres]\nurl = \"{postgres}\"\n\
                 [storage.resilience]\noutbox_path = {outbox:?}\n[[plugins]]\nname = \"probe\"\npath = {probe:?}\n",
                port = free_port(),
                prefix = keys.config.key_prefix,
                outbox = dir.path().join(format!("outbox-{:x}", rand::random::<u32>())),
                probe = plugin_path("probe"),
            ),
        )
        .unwrap();
        let mut child = Command::new(BINARY)
            .args(["serve", "--config"])
            .arg(&path)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(3));
        match child.try_wait().unwrap() {
            Some(status) => {
                let mut stderr = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                (status.success(), stderr)
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                (true, "still serving".to_owned())
            }
        }
    };
    // The machine's Redis keeps nothing on disk.
    let (ok, stderr) = start(&keys.config.url, &database.url);
    assert!(!ok && stderr.contains("appendonly"), "{stderr}");
    let (ok, stderr) = start(&durable.url(), &lazy_postgres.url());
    assert!(!ok && stderr.contains("synchronous_commit"), "{stderr}");
    let (ok, stderr) = start(&durable.url(), &database.url);
    assert!(ok, "durable servers start: {stderr}");
}

/// An outbox sled cannot read (its files overwritten) is reported and moved
/// aside at start, never wiped; the next start makes a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_outbox_is_moved_aside_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox.sled");
    {
        let resilience = hoard::storage::resilient::Resilience::open(
            &hoard::storage::resilient::ResilienceConfig {
                outbox_path: outbox.clone(),
                ..Default::default()
            },
        )
        .unwrap();
        drop(resilience);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let data = outbox.join("db");
    let length = std::fs::metadata(&data).unwrap().len() as usize;
    std::fs::write(&data, vec![0xAB; length.max(4096)]).unwrap();
    let config = hoard::storage::resilient::ResilienceConfig {
        outbox_path: outbox.clone(),
        ..Default::default()
    };
    let error = match hoard::storage::resilient::Resilience::open(&config) {
        Ok(_) => panic!("a damaged outbox opened"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains("corrupt") && error.contains("moved to"),
        "{error}"
    );
    let moved: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("corrupt") && !name.ends_with("as-opened"))
        .collect();
    assert_eq!(moved.len(), 1, "moved aside: {moved:?}");
    let kept = std::fs::read(dir.path().join(&moved[0]).join("db")).unwrap();
    assert!(
        kept.iter().all(|b| *b == 0xAB),
        "kept exactly as found, nothing wiped"
    );
    assert!(
        hoard::storage::resilient::Resilience::open(&config).is_ok(),
        "a fresh outbox next time"
    );
}
