//! The host itself dies (SIGKILL, or a failpoint that aborts it) while its
//! outbox holds writes, in the middle of a replay, and between flushing a
//! queued write and acknowledging it: after a restart nothing is lost or
//! applied twice, and a session whose record was only in the outbox
//! resumes. Real `hoard` processes, a Redis and a PostgreSQL of the test's
//! own.

use hoard_tests::outage::{
    Acknowledged, OwnPostgres, OwnRedis, act_until_acknowledged, wait_drained,
};
use hoard_tests::services::free_port;
use hoard_tests::{Api, HostProcess, Player, plugin_path};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ADMIN_TOKEN: &str = "admin-token-for-the-crash-tests";
const BINARY: &str = env!("CARGO_BIN_EXE_hoard-test-host");

/// A service-mode config file for a host process on `port`.
fn config_file(dir: &Path, port: u16, redis: &OwnRedis, postgres: &OwnPostgres) -> PathBuf {
    let path = dir.join("hoard.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[storage]
hot = "redis"
cold = "postgres"
[storage.redis]
url = "{redis}"
connect_timeout_ms = 300
response_timeout_ms = 300
[storage.postgres]
url = "{postgres}"
acquire_timeout_ms = 300
[storage.resilience]
outbox_path = {outbox:?}
call_timeout_ms = 300
probe_interval_ms = 100
probe_interval_max_ms = 500
[sessions]
client_seeds = true
[admin]
token = "{ADMIN_TOKEN}"
[[plugins]]
name = "probe"
path = {probe:?}
"#,
            redis = redis.url(),
            postgres = postgres.url(),
            outbox = dir.join("outbox.sled"),
            probe = plugin_path("probe"),
        ),
    )
    .unwrap();
    path
}

fn record_match(round: usize) -> serde_json::Value {
    let body = json!({"round": round}).to_string();
    json!({"do": "record-match", "key": "m", "member": "m", "body": body})
}

/// Records `rounds` matches as `player`, each acknowledged.
async fn record(player: &Player, rounds: std::ops::Range<usize>, acknowledged: &mut Acknowledged) {
    for round in rounds {
        act_until_acknowledged(player, &record_match(round)).await;
        *acknowledged.counters.entry("m".into()).or_default() += 1;
        *acknowledged.scores.entry("m".into()).or_default() += 1;
        acknowledged
            .streams
            .entry("m".into())
            .or_default()
            .push(json!({"round": round}).to_string());
    }
}

/// Killed with writes in the outbox, restarted with the backend still
/// down (the session, only in the outbox, resumes), then crashed by a
/// failpoint right after the backend confirmed a replayed write and before
/// the outbox let go of it: every write lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_a_full_outbox_and_mid_replay_the_host_loses_and_doubles_nothing() {
    let mut redis = OwnRedis::start().await;
    let postgres = OwnPostgres::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config_file(dir.path(), port, &redis, &postgres);
    let api = Api::new(([127, 0, 0, 1], port).into());
    let mut acknowledged = Acknowledged::default();

    let mut host = HostProcess::start(BINARY, &config, port).await;
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, "p").await;
    record(&player, 0..3, &mut acknowledged).await;
    // Redis goes: the session's record and the counters queue.
    redis.kill();
    record(&player, 3..10, &mut acknowledged).await;
    host.kill();

    // Back with Redis still down: the session's record is only in the
    // outbox, and it loads from there.
    let mut host = HostProcess::start(BINARY, &config, port).await;
    let summary = api.get(&format!("/v1/sessions/{session}")).await;
    assert_eq!(summary.status, 200, "{:?}", summary.body);
    assert_eq!(
        summary.body["actions"], 10,
        "the queued session resumes where it was"
    );
    record(&player, 10..14, &mut acknowledged).await;
    host.kill();

    // Redis is back; the host crashes at its first replayed write, after
    // Redis confirmed it and before the outbox let go of it.
    redis.restart().await;
    let mut host = HostProcess::spawn(BINARY, &config, port, "replay-after-confirm=1*return");
    assert!(
        host.ended_within(Duration::from_secs(10)).await,
        "the failpoint crashed the host mid-replay"
    );
    // And once more, without the failpoint: it replays what is left.
    let _host = HostProcess::start(BINARY, &config, port).await;
    wait_drained(&api, ADMIN_TOKEN, Duration::from_secs(30)).await;
    record(&player, 14..16, &mut acknowledged).await;
    acknowledged.check_redis(&mut redis.connection(), "hoard");
    acknowledged
        .check_postgres(&mut postgres.connection().await)
        .await;
    let summary = api.get(&format!("/v1/sessions/{session}")).await;
    assert_eq!(summary.body["actions"], 16);
}

/// The host dies after a queued write is on disk and before the client
/// hears of it: the client retries the action, the host finds the write
/// already queued, and it lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_between_flushing_and_acknowledging_a_retry_lands_once() {
    let mut redis = OwnRedis::start().await;
    let postgres = OwnPostgres::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config_file(dir.path(), port, &redis, &postgres);
    let api = Api::new(([127, 0, 0, 1], port).into());
    let mut acknowledged = Acknowledged::default();

    let mut host =
        HostProcess::start_with_failpoints(BINARY, &config, port, "outbox-after-flush=1*return")
            .await;
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, "p").await;
    record(&player, 0..2, &mut acknowledged).await;
    // Redis goes; the next action's first queued write is flushed, then
    // the host dies before answering.
    redis.kill();
    let answer = player.try_act(&record_match(2)).await;
    assert!(
        answer.is_none(),
        "the host died before answering: {answer:?}"
    );
    assert!(host.ended_within(Duration::from_secs(5)).await);
    let _host = HostProcess::start(BINARY, &config, port).await;
    redis.restart().await;
    // The client retries the same action, and goes on.
    record(&player, 2..5, &mut acknowledged).await;
    wait_drained(&api, ADMIN_TOKEN, Duration::from_secs(30)).await;
    acknowledged.check_redis(&mut redis.connection(), "hoard");
    acknowledged
        .check_postgres(&mut postgres.connection().await)
        .await;
    let summary = api.get(&format!("/v1/sessions/{session}")).await;
    assert_eq!(summary.body["actions"], 5);
}
