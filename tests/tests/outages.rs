//! Outage survival (issue 14), with real servers the tests own and kill:
//! games and a probe workload run through Redis and PostgreSQL outages
//! with no client error, every write is queued in the outbox while its
//! backend is down, and after recovery the servers hold exactly the
//! acknowledged writes: none lost, none applied twice, per-key order kept.

use hoard::config::{ColdBackend, Config, HotBackend};
use hoard_tests::outage::{
    Acknowledged, OwnPostgres, OwnRedis, Proxy, ProxyMode, probe_workload, queue_status,
    wait_drained,
};
use hoard_tests::services::TestDatabase;
use hoard_tests::{Api, TestHost, hokm};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "admin-token-for-the-outage-tests";

/// A host on Redis at `redis_url` and PostgreSQL at `postgres_url`, with
/// short timeouts so outages are noticed quickly.
fn service_config(config: &mut Config, redis_url: &str, postgres_url: &str) {
    config.storage.hot = HotBackend::Redis;
    config.storage.cold = ColdBackend::Postgres;
    config.storage.redis.url = redis_url.to_owned();
    config.storage.redis.key_prefix = "hoard".into();
    config.storage.redis.connect_timeout_ms = 300;
    config.storage.redis.response_timeout_ms = 300;
    config.storage.postgres.url = postgres_url.to_owned();
    config.storage.postgres.acquire_timeout_ms = 300;
    config.storage.postgres.pool_max = 8;
    config.storage.resilience.call_timeout_ms = 300;
    config.storage.resilience.probe_interval_ms = 100;
    config.storage.resilience.probe_interval_max_ms = 500;
    config.admin.token = Some(ADMIN_TOKEN.into());
}

/// Starts Hokm games and probe workers at once; the task ends with the
/// games' outcomes and what the workers had acknowledged.
fn play(
    api: &Api,
    games: &[u64],
    workers: usize,
    rounds: usize,
) -> tokio::task::JoinHandle<(Vec<hokm::Played>, Acknowledged)> {
    let game_tasks: Vec<_> = games
        .iter()
        .map(|seed| {
            let (api, seed) = (api.clone(), *seed);
            tokio::spawn(async move { hokm::play_game(&api, seed).await })
        })
        .collect();
    let worker_tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let api = api.clone();
            tokio::spawn(async move {
                probe_workload(&api, worker, rounds, Duration::from_millis(40)).await
            })
        })
        .collect();
    tokio::spawn(async move {
        let mut played = Vec::new();
        for task in game_tasks {
            played.push(task.await.expect("a game finishes with no client error"));
        }
        let mut acknowledged = Acknowledged::default();
        for task in worker_tasks {
            acknowledged.merge(task.await.expect("a worker finishes"));
        }
        (played, acknowledged)
    })
}

/// Finished games reach match history exactly once, and the wins board
/// counts each once.
async fn check_games(
    played: &[hokm::Played],
    redis: &mut redis::Connection,
    postgres: &mut sqlx::PgConnection,
) {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT body FROM history WHERE namespace = 'hokm' AND stream = 'matches' ORDER BY seq",
    )
    .fetch_all(&mut *postgres)
    .await
    .expect("match history");
    assert_eq!(
        rows.len(),
        played.len(),
        "each finished game once in match history"
    );
    let mut wins = std::collections::BTreeMap::<String, f64>::new();
    for game in played {
        for seat in [game.winner_team, game.winner_team + 2] {
            *wins
                .entry(game.players[seat as usize].name.clone())
                .or_default() += 1.0;
        }
    }
    let ns = hoard::storage::Namespace::plugin("hokm").unwrap();
    for (member, count) in wins {
        let stored: Option<f64> = redis::cmd("ZSCORE")
            .arg(hoard::storage::redis::key("hoard", &ns, "b", "wins"))
            .arg(&member)
            .query(redis)
            .unwrap();
        assert_eq!(stored.map(|s| -s), Some(count), "wins of {member}");
    }
}

/// After recovery: the outboxes drain, and Redis and PostgreSQL hold
/// exactly what was acknowledged and each finished game once.
async fn check_converged(
    api: &Api,
    (played, acknowledged): (Vec<hokm::Played>, Acknowledged),
    redis: &mut redis::Connection,
    postgres: &mut sqlx::PgConnection,
) {
    wait_drained(api, ADMIN_TOKEN, Duration::from_secs(30)).await;
    acknowledged.check_redis(redis, "hoard");
    acknowledged.check_postgres(postgres).await;
    check_games(&played, redis, postgres).await;
}

/// Redis is killed mid-game (SIGKILL) and comes back 5 s later: the games
/// and the workload go on with no client error, responses say hot storage
/// is degraded meanwhile, and afterwards Redis and PostgreSQL hold exactly
/// what was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_game_and_back_loses_and_doubles_nothing() {
    let mut redis = OwnRedis::start().await;
    let database = TestDatabase::create().await;
    let host = TestHost::start_with(&[("hokm", "hokm"), ("probe", "probe")], |config| {
        service_config(config, &redis.url(), &database.url)
    })
    .await;
    let api = host.api();
    let playing = play(&api, &[21, 22], 4, 40);
    tokio::time::sleep(Duration::from_millis(800)).await;
    redis.kill();
    let killed = Instant::now();
    // While it is down, answers say so.
    let mut saw_degraded = false;
    while killed.elapsed() < Duration::from_secs(5) {
        let reply = reqwest::get(format!("http://{}/v1/games", host.address))
            .await
            .unwrap();
        saw_degraded |= reply
            .headers()
            .get("hoard-degraded")
            .is_some_and(|v| v.to_str().unwrap_or("").contains("hot"));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(saw_degraded, "responses carried Hoard-Degraded: hot");
    let ready = api.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body["status"].as_str()),
        (200, Some("degraded")),
        "{:?}",
        ready.body
    );
    redis.restart().await;
    let mut postgres = <sqlx::PgConnection as sqlx::Connection>::connect(&database.url)
        .await
        .unwrap();
    check_converged(
        &api,
        playing.await.unwrap(),
        &mut redis.connection(),
        &mut postgres,
    )
    .await;
    host.stop().await;
}

/// PostgreSQL is killed mid-game, with transactions in flight, and comes
/// back: finished games reach match history exactly once, and every
/// acknowledged record and history entry is there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_game_and_back_loses_and_doubles_nothing() {
    let mut postgres = OwnPostgres::start().await;
    let redis = OwnRedis::start().await;
    let host = TestHost::start_with(&[("hokm", "hokm"), ("probe", "probe")], |config| {
        service_config(config, &redis.url(), &postgres.url())
    })
    .await;
    let api = host.api();
    let playing = play(&api, &[31, 32], 4, 40);
    tokio::time::sleep(Duration::from_millis(800)).await;
    postgres.kill();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cold = queue_status(&api, ADMIN_TOKEN, "cold").await;
    assert_eq!(cold["breaker"], "open", "{cold}");
    assert!(
        cold["queued_ops"].as_u64().unwrap() > 0,
        "writes were queued: {cold}"
    );
    postgres.restart().await;
    check_converged(
        &api,
        playing.await.unwrap(),
        &mut redis.connection(),
        &mut postgres.connection().await,
    )
    .await;
    host.stop().await;
}

/// Both down at once, then each back, in either order: nothing lost or
/// doubled either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_down_then_back_in_either_order() {
    for redis_first in [true, false] {
        let mut postgres = OwnPostgres::start().await;
        let mut redis = OwnRedis::start().await;
        let host = TestHost::start_with(&[("hokm", "hokm"), ("probe", "probe")], |config| {
            service_config(config, &redis.url(), &postgres.url())
        })
        .await;
        let api = host.api();
        let playing = play(&api, &[41], 3, 30);
        tokio::time::sleep(Duration::from_millis(600)).await;
        redis.kill();
        postgres.kill();
        tokio::time::sleep(Duration::from_secs(3)).await;
        if redis_first {
            redis.restart().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            postgres.restart().await;
        } else {
            postgres.restart().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            redis.restart().await;
        }
        check_converged(
            &api,
            playing.await.unwrap(),
            &mut redis.connection(),
            &mut postgres.connection().await,
        )
        .await;
        host.stop().await;
    }
}

/// A Redis that hangs instead of failing (the proxy accepts and never
/// answers): the breaker opens within 2 s and the games go on; when it
/// answers again, everything lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_opens_the_breaker_within_two_seconds() {
    let redis = OwnRedis::start().await;
    let proxy = Proxy::start(redis.address()).await;
    let database = TestDatabase::create().await;
    let host = TestHost::start_with(&[("hokm", "hokm"), ("probe", "probe")], |config| {
        service_config(
            config,
            &format!("redis://127.0.0.1:{}", proxy.port),
            &database.url,
        )
    })
    .await;
    let api = host.api();
    let playing = play(&api, &[51], 3, 30);
    tokio::time::sleep(Duration::from_millis(600)).await;
    proxy.set(ProxyMode::Stall);
    let stalled = Instant::now();
    let opened = loop {
        let hot = queue_status(&api, ADMIN_TOKEN, "hot").await;
        if hot["breaker"] == "open" {
            break stalled.elapsed();
        }
        assert!(
            stalled.elapsed() < Duration::from_secs(5),
            "the breaker never opened: {hot}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        opened < Duration::from_secs(2),
        "the breaker opened after {opened:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let hot = queue_status(&api, ADMIN_TOKEN, "hot").await;
    let cold = queue_status(&api, ADMIN_TOKEN, "cold").await;
    assert!(
        hot["queued_ops"].as_u64().unwrap() + cold["queued_ops"].as_u64().unwrap() > 0,
        "writes were queued while Redis hung: {hot} {cold}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.set(ProxyMode::Pass);
    let mut postgres = <sqlx::PgConnection as sqlx::Connection>::connect(&database.url)
        .await
        .unwrap();
    check_converged(
        &api,
        playing.await.unwrap(),
        &mut redis.connection(),
        &mut postgres,
    )
    .await;
    host.stop().await;
}
