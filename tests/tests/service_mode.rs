//! Service mode: Hokm on Redis (hot) and PostgreSQL (cold), the machine's
//! real servers; typed errors for bad storage input; clear start-up errors
//! when a server is missing; `hoard migrate`.

use hoard::storage::Namespace;
use hoard_tests::services::{
    RedisKeys, TestDatabase, free_port, service_host, use_service_backends,
};
use hoard_tests::{TestHost, hokm};
use serde_json::json;
use std::process::Command;

/// Full games pass on Redis + Postgres; finished games land in Postgres's
/// history table and the leaderboard is a Redis sorted set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hokm_full_games_in_service_mode() {
    let (keys, database) = (RedisKeys::new(), TestDatabase::create().await);
    let host = TestHost::start_with(&[("hokm", "hokm")], |config| {
        use_service_backends(config, &keys, &database)
    })
    .await;
    let games = [11u64, 12].map(|seed| {
        let api = host.api();
        tokio::spawn(async move { hokm::play_game(&api, seed).await })
    });
    let mut winners = std::collections::HashMap::<String, f64>::new();
    for game in games {
        let played = game.await.expect("the game completes");
        for seat in [played.winner_team, played.winner_team + 2] {
            *winners
                .entry(played.players[seat as usize].name.clone())
                .or_default() += 1.0;
        }
    }
    // Straight from Postgres: two rows of match history.
    {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&database.url).await.unwrap();
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, body FROM history WHERE namespace = 'hokm' ORDER BY seq")
                .fetch_all(&mut connection)
                .await
                .unwrap();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2]);
        let outcome: serde_json::Value = serde_json::from_str(&rows[0].1).unwrap();
        assert!(outcome["winners"].is_array());
    }
    // Straight from Redis: the leaderboard is a sorted set.
    let key = format!("{}:{{hokm:b:wins}}", keys.config.key_prefix);
    let kind = Command::new("redis-cli")
        .args(["-u", &keys.config.url, "type", &key])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&kind.stdout).trim(), "zset");
    let board = host
        .app
        .storage()
        .hot
        .leaderboard_top(&Namespace::plugin("hokm").unwrap(), "wins", 10)
        .await
        .unwrap();
    assert_eq!(board.len(), winners.len());
    for entry in board {
        assert_eq!(Some(&entry.score), winners.get(&entry.member), "{entry:?}");
    }
    // Session state lives in Redis too, with the session TTL.
    let sessions = Command::new("redis-cli")
        .args([
            "-u",
            &keys.config.url,
            "--scan",
            "--pattern",
            // Ending in the tag's `}`: not the op markers beside them.
            &format!("{}:{{_hoard:v:session:*}}", keys.config.key_prefix),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&sessions.stdout).lines().count(), 2);
    host.stop().await;
}

/// Oversize keys and values, bodies that are not JSON, unknown streams: a
/// typed error each, through a plugin, on Redis and Postgres, and the
/// backends keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_storage_input_gets_typed_errors_in_service_mode() {
    let (keys, database) = (RedisKeys::new(), TestDatabase::create().await);
    let host = TestHost::start_with(&[("probe", "probe")], |config| {
        use_service_backends(config, &keys, &database);
        config.storage.limits.key_bytes_max = 64;
        config.storage.limits.value_bytes_max = 1024;
    })
    .await;
    let api = host.api();
    let probe = api
        .join(&api.create("probe", json!({})).await, "tester")
        .await;
    let last = |reply: hoard_tests::Reply| reply.body["view"]["last"].to_string();
    let cases = [
        (
            json!({"do": "hot-set", "key": "k".repeat(65), "value": "v"}),
            "LimitExceeded",
        ),
        (
            json!({"do": "hot-set-huge", "key": "k", "bytes": 1025}),
            "LimitExceeded",
        ),
        (
            json!({"do": "cold-put", "collection": "c", "key": "k", "body": "{not json"}),
            "Invalid",
        ),
        (
            json!({"do": "cold-put", "collection": "c", "key": "k", "body": "\"\\u0000\""}),
            "Invalid",
        ),
        (
            json!({"do": "cold-put", "collection": "c".repeat(65), "key": "k", "body": "{}"}),
            "LimitExceeded",
        ),
        (json!({"do": "history", "key": "never-written"}), "NotFound"),
        (json!({"do": "hot-incr", "key": "word"}), "ok-or-invalid"),
    ];
    probe
        .act(&json!({"do": "hot-set", "key": "word", "value": "abc"}))
        .await;
    for (action, expected) in &cases {
        let reply = probe.act(action).await;
        assert_eq!(reply.status, 200, "{action}: {:?}", reply.body);
        let result = last(reply);
        let wanted = if *expected == "ok-or-invalid" {
            "Invalid"
        } else {
            expected
        };
        assert!(result.contains(wanted), "{action}: {result}");
        // And the backends keep serving.
        let ok = probe
            .act(&json!({"do": "hot-set", "key": "alive", "value": "yes"}))
            .await;
        assert_eq!(last(ok), "\"ok\"");
        let put = probe
            .act(&json!({"do": "cold-put", "collection": "c", "key": "alive", "body": "{}"}))
            .await;
        assert!(last(put).parse::<u64>().is_ok());
    }
    host.stop().await;
}

/// A storage error a plugin passes on keeps its kind: a conflict is 409
/// `storage_conflict` naming both versions, a refused value 500
/// `storage_refused`; neither is `storage_unavailable`, which would tell
/// the client to wait for a server that is up. The session is unchanged
/// and keeps serving. Offline and in service mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_error_the_plugin_passes_on_keeps_its_kind() {
    let offline = TestHost::start(&[("probe", "probe")]).await;
    let (service, _backends) = service_host(&[("probe", "probe")]).await;
    for host in [&offline, &service] {
        let api = host.api();
        let probe = api.join(&api.create("probe", json!({})).await, "p").await;
        let put = |expected: Option<u64>, body: &str| json!({"do": "cold-put-strict", "collection": "c", "key": "k", "body": body, "expected": expected});
        let first = probe.act(&put(Some(0), "{}")).await;
        assert_eq!(
            (first.status, first.body["view"]["last"].clone()),
            (200, json!(1))
        );

        let stale = probe.act(&put(Some(0), "{}")).await;
        assert_eq!(
            (stale.status, stale.code()),
            (409, "storage_conflict"),
            "{:?}",
            stale.body
        );
        let message = stale.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("expected version 0, found 1"), "{message}");

        let refused = probe.act(&put(None, "{not json")).await;
        assert_eq!(
            (refused.status, refused.code()),
            (500, "storage_refused"),
            "{:?}",
            refused.body
        );

        let next = probe.act(&put(Some(1), "{}")).await;
        assert_eq!(
            (next.status, next.body["view"]["last"].clone()),
            (200, json!(2))
        );
    }
    offline.stop().await;
    service.stop().await;
}

/// A statement that passes the Postgres statement timeout is `unavailable`,
/// and the next statement is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_statement_timeout_is_unavailable_and_passes() {
    use hoard::storage::{ColdWrite, Error, Op, RecordWrite};
    use sqlx::Connection;
    let database = TestDatabase::create().await;
    let config = hoard::storage::postgres::PostgresConfig {
        statement_timeout_ms: 300,
        ..database.config()
    };
    let store = hoard::storage::postgres::PostgresStore::connect(&config)
        .await
        .unwrap();
    let ns = Namespace::plugin("game").unwrap();
    let put = |body: &str| {
        let write = RecordWrite::Put {
            collection: "c".into(),
            key: "k".into(),
            body: body.into(),
            expected_version: None,
        };
        Op::new(ns.clone(), ColdWrite::Record(write))
    };
    use hoard::storage::ColdStore;
    store.apply(&put("{\"n\":1}")).await.unwrap();
    // Another session holds the row lock, so the update waits past its timeout.
    let mut blocker = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let mut lock = blocker.begin().await.unwrap();
    sqlx::query("SELECT version FROM records FOR UPDATE")
        .fetch_all(&mut *lock)
        .await
        .unwrap();
    let timed_out = store.apply(&put("{\"n\":2}")).await;
    assert!(
        matches!(timed_out, Err(Error::Unavailable(_))),
        "{timed_out:?}"
    );
    lock.rollback().await.unwrap();
    store.apply(&put("{\"n\":3}")).await.unwrap();
    assert_eq!(
        store.get(&ns, "c", "k").await.unwrap().unwrap().body,
        "{\"n\":3}"
    );
}

/// Without the outage layer, a missing Redis or Postgres stops `hoard
/// serve` with a message naming it (with the layer, the host starts and
/// queues: see `outages.rs`); `hoard migrate` applies the schema.
#[test]
fn startup_names_the_missing_server_and_migrate_applies_the_schema() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(TestDatabase::create());
    let dir = tempfile::tempdir().unwrap();
    let hoard = |config: &str| {
        let path = dir.path().join(format!("{:x}.toml", rand::random::<u32>()));
        std::fs::write(&path, config).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_hoard-test-host"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            path,
        )
    };
    let dead = free_port();
    let (ok, stderr, _) = hoard(&format!(
        "[storage]\nhot = \"redis\"\ncold = \"sled\"\n[storage.resilience]\nenabled = false\n[storage.redis]\nurl = \"redis://127.0.0.1:{dead}\"\n[storage.sled]\npath = {:?}\n",
        dir.path().join("a")
    ));
    assert!(
        !ok && stderr.contains("cannot reach Redis") && stderr.contains(&dead.to_string()),
        "{stderr}"
    );
    let (ok, stderr, _) = hoard(&format!(
        "[storage]\nhot = \"sled\"\ncold = \"postgres\"\n[storage.resilience]\nenabled = false\n[storage.postgres]\nurl = \"postgres://postgres@127.0.0.1:{dead}/x\"\n[storage.sled]\npath = {:?}\n",
        dir.path().join("b")
    ));
    assert!(
        !ok && stderr.contains("cannot reach PostgreSQL") && stderr.contains(&dead.to_string()),
        "{stderr}"
    );

    let config = dir.path().join("migrate.toml");
    std::fs::write(
        &config,
        format!("[storage.postgres]\nurl = {:?}\n", database.url),
    )
    .unwrap();
    let migrated = Command::new(env!("CARGO_BIN_EXE_hoard-test-host"))
        .args(["migrate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let tables = runtime.block_on(async {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&database.url).await.unwrap();
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .fetch_all(&mut connection)
        .await
        .unwrap();
        names.into_iter().map(|n| n.0).collect::<Vec<_>>()
    });
    for table in ["applied_ops", "history", "history_heads", "records"] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    // Accounts are records under the host's namespace: no table of their own.
    assert!(!tables.iter().any(|t| t == "accounts"), "{tables:?}");
    drop(runtime);
}
