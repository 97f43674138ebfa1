//! (e) The outage layer: writes acknowledged from the outbox while Redis
//! and PostgreSQL are down, then the drain into each once it is back.
//!
//! The host's storage is opened as `hoard serve` opens it
//! ([`hoard::app::open_storage`]), against a Redis port where nothing
//! listens yet and a PostgreSQL database that does not exist yet, so every
//! connection attempt fails. Recovery is a `redis-server` started on that
//! port, and the database created (the host then connects and migrates it
//! before the first op replays).

use crate::{micros, percentile, sled_unflushed_rate};
use hoard::app::open_storage;
use hoard::config::{ColdBackend, Config, HotBackend};
use hoard::metrics::Metrics;
use hoard::storage::resilient::Resilience;
use hoard::storage::{ColdWrite, HotWrite, Namespace, Op, RecordWrite, Storage};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WRITERS: usize = 64;

pub async fn outage(duration: Duration, queued_target: u64) {
    println!(
        "\n(e) outage: writes while Redis and PostgreSQL are down, acknowledged from the sled outbox; then the drain"
    );
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        return println!("  skipped: redis-server is not on PATH");
    }
    let admin_url = "postgres://postgres@127.0.0.1:5432/postgres";
    let Ok(mut admin) = <sqlx::PgConnection as sqlx::Connection>::connect(admin_url).await else {
        return println!("  skipped: PostgreSQL is not reachable at {admin_url}");
    };
    let database = format!("hoard_bench_outage_{:x}", rand::random::<u32>());

    let dir = tempfile::tempdir().expect("temp dir");
    let redis_port = free_port();
    let mut config = Config::default();
    config.storage.hot = HotBackend::Redis;
    config.storage.cold = ColdBackend::Postgres;
    config.storage.require_durable = false;
    config.storage.redis.url = format!("redis://127.0.0.1:{redis_port}");
    config.storage.postgres.url = format!("postgres://postgres@127.0.0.1:5432/{database}");
    let resilience = &mut config.storage.resilience;
    resilience.outbox_path = dir.path().join("outbox.sled");
    // Recovery is noticed within a tenth of a second, so the drain figure
    // is the drain and not the breaker's wait.
    resilience.probe_interval_ms = 20;
    resilience.probe_interval_max_ms = 100;
    let (storage, layer) = open_storage(&config, Arc::new(Metrics::new()))
        .await
        .expect("the host starts with both backends down");
    let layer = layer.expect("the outage layer is on by default");

    let unflushed = sled_unflushed_rate(dir.path(), duration);
    let hot = write_while_down(&storage, duration, hot_write).await;
    let rate = hot.len() as f64 / duration.as_secs_f64();
    println!("  sled insert, no flush (baseline)       {unflushed:>10.0} writes/s");
    println!(
        "  outbox acks, hot set, {WRITERS} writers      {rate:>10.0} writes/s  ({:.2}x unflushed), ack p50 {:.0} us, p99 {:.0} us",
        rate / unflushed,
        micros(percentile(&hot, 0.50)),
        micros(percentile(&hot, 0.99)),
    );
    let met = percentile(&hot, 0.99) < Duration::from_millis(5);
    println!(
        "  target: ack p99 < 5 ms at {WRITERS} writers -> {}",
        if met { "met" } else { "NOT met" }
    );
    top_up(&storage, &layer, "hot", queued_target, hot_write).await;
    let cold = write_while_down(&storage, duration, cold_write).await;
    println!(
        "  outbox acks, cold put/history, {WRITERS} w.  {:>10.0} writes/s, ack p99 {:.0} us",
        cold.len() as f64 / duration.as_secs_f64(),
        micros(percentile(&cold, 0.99)),
    );
    top_up(&storage, &layer, "cold", queued_target, cold_write).await;

    // Redis comes back.
    let mut redis_server = start_redis(redis_port);
    let redis_up = wait_for_redis(redis_port).await;
    let (drained, took, first) = drain(&layer, "hot", redis_up).await;
    let into_redis = drained as f64 / took.as_secs_f64();
    let benchmark = crate::baseline::redis_benchmark_set(redis_port, 50);
    println!(
        "  drain into Redis    {drained:>7} ops in {:.2} s (first replay {:.0} ms after it answered): {into_redis:>8.0} ops/s",
        took.as_secs_f64(),
        first.as_secs_f64() * 1000.0,
    );
    match benchmark {
        Some(set_rate) => {
            let met = into_redis >= 20_000.0 && into_redis >= set_rate / 4.0;
            println!(
                "  redis-benchmark SET, 50 clients, same server {set_rate:>8.0} ops/s; drain is {:.2}x of it",
                into_redis / set_rate
            );
            println!(
                "  target: >= 20k ops/s and >= 0.25x redis-benchmark SET -> {}",
                if met { "met" } else { "NOT met" }
            );
        }
        None => println!("  redis-benchmark did not run: no same-run baseline"),
    }
    let keys = redis_dbsize(redis_port).await;
    assert!(
        keys >= drained,
        "Redis holds {keys} keys after {drained} writes were drained into it"
    );

    // PostgreSQL comes back: the database is there.
    let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}"));
    sqlx::query(create)
        .execute(&mut admin)
        .await
        .expect("create the bench database");
    let (drained, took, first) = drain(&layer, "cold", Instant::now()).await;
    let into_postgres = drained as f64 / took.as_secs_f64();
    println!(
        "  drain into Postgres {drained:>7} ops in {:.2} s (first replay {:.0} ms after it answered, incl. connect and migrations): {into_postgres:>8.0} ops/s",
        took.as_secs_f64(),
        first.as_secs_f64() * 1000.0,
    );
    println!(
        "  target: >= 5k ops/s into PostgreSQL -> {}",
        if into_postgres >= 5000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    let dead: u64 = layer.health().iter().map(|h| h.dead_letters).sum();
    assert_eq!(dead, 0, "every queued write replays");

    drop(storage);
    drop(layer);
    let _ = redis_server.kill();
    let _ = redis_server.wait();
    let drop = sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
    let _ = sqlx::query(drop).execute(&mut admin).await;
}

fn hot_write(writer: usize, i: u64) -> Write {
    Write::Hot(HotWrite::Set {
        key: format!("w{writer}-{i}"),
        value: vec![7u8; 100],
        ttl_ms: None,
    })
}

/// A game's cold writes: mostly record puts, every fourth a history entry.
fn cold_write(writer: usize, i: u64) -> Write {
    Write::Cold(if i % 4 == 3 {
        ColdWrite::AppendHistory {
            stream: format!("matches-{writer}"),
            body: format!(r#"{{"match":{i}}}"#),
        }
    } else {
        ColdWrite::Record(RecordWrite::Put {
            collection: "players".into(),
            key: format!("w{writer}-{i}"),
            body: format!(r#"{{"level":{i},"pad":"{}"}}"#, "x".repeat(60)),
            expected_version: None,
        })
    })
}

enum Write {
    Hot(HotWrite),
    Cold(ColdWrite),
}

async fn apply(storage: &Storage, write: Write) {
    let ns = Namespace::plugin("bench").expect("name");
    match write {
        Write::Hot(write) => storage.hot.apply(&Op::new(ns, write)).await.map(drop),
        Write::Cold(write) => storage.cold.apply(&Op::new(ns, write)).await.map(drop),
    }
    .expect("acknowledged from the outbox");
}

/// [`WRITERS`] tasks writing for `duration`; every ack's latency, sorted.
async fn write_while_down(
    storage: &Storage,
    duration: Duration,
    write: fn(usize, u64) -> Write,
) -> Vec<Duration> {
    // The first writes find the backend down and open its breaker.
    for i in 0..10 {
        apply(storage, write(WRITERS, u64::MAX - i)).await;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let storage = storage.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0;
            while started.elapsed() < duration {
                let sent = Instant::now();
                apply(&storage, write(writer, i)).await;
                latencies.push(sent.elapsed());
                i += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("writer"));
    }
    latencies.sort();
    latencies
}

/// Queues more writes until `capability`'s outbox holds `target` ops.
async fn top_up(
    storage: &Storage,
    layer: &Resilience,
    capability: &str,
    target: u64,
    write: fn(usize, u64) -> Write,
) {
    let queued = queued(layer, capability);
    let mut tasks = Vec::new();
    let missing = target.saturating_sub(queued);
    for writer in 0..WRITERS as u64 {
        let storage = storage.clone();
        let share = missing / WRITERS as u64 + u64::from(writer < missing % WRITERS as u64);
        tasks.push(tokio::spawn(async move {
            for i in 0..share {
                // Keys apart from the timed run's.
                apply(&storage, write(WRITERS + 1 + writer as usize, i)).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
}

fn queued(layer: &Resilience, capability: &str) -> u64 {
    layer
        .health()
        .into_iter()
        .find(|h| h.capability == capability)
        .map_or(0, |h| h.queued_ops)
}

/// Waits until `capability`'s outbox is empty: how many ops it replayed,
/// how long that took from the first replayed op, and how long after
/// `answered` the first op replayed.
async fn drain(
    layer: &Resilience,
    capability: &str,
    answered: Instant,
) -> (u64, Duration, Duration) {
    let replayed = || {
        layer
            .health()
            .into_iter()
            .find(|h| h.capability == capability)
            .map_or(0, |h| h.replayed_total)
    };
    let before = replayed();
    let waiting = queued(layer, capability);
    let give_up = Instant::now() + Duration::from_secs(600);
    let mut first = None;
    loop {
        let queued_now = queued(layer, capability);
        if first.is_none() && (replayed() > before || queued_now < waiting) {
            first = Some(Instant::now());
        }
        if queued_now == 0 {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "{capability}: {queued_now} ops still queued after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let first = first.unwrap_or_else(Instant::now);
    (
        replayed() - before,
        first.elapsed(),
        first.saturating_duration_since(answered),
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_redis(port: u16) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts")
}

/// When the Redis on `port` first answered PING.
async fn wait_for_redis(port: u16) -> Instant {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut connection) = client.get_multiplexed_async_connection().await
            && redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .is_ok()
        {
            return Instant::now();
        }
        assert!(Instant::now() < give_up, "redis-server did not start");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn redis_dbsize(port: u16) -> u64 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    redis::cmd("DBSIZE")
        .query_async(&mut connection)
        .await
        .expect("DBSIZE")
}
