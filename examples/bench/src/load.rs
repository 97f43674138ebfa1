//! hoard's load benchmark: players on WebSockets against real host
//! processes in service mode (Redis and PostgreSQL on this machine),
//! bounded in time, loopback only. It prints:
//!
//! (1) Hokm over WebSocket on one host: 1,000 connected players (250
//!     tables); the host's RSS per 1,000 players; action-to-event latency
//!     for all four players of a table (p50/p99/p99.9) at a player's pace
//!     (every table acts four times a second), then actions/s with every
//!     table acting as fast as it can, beside `redis-benchmark` SET at the
//!     same concurrency in the same run;
//! (2) the same tables on two instances (cluster mode; half the sockets
//!     come in through the instance that does not own their table): the
//!     throughput against one host's;
//! (3) Nakama's "Workload 6" on tabletop rooms of 10: every 0.5 s each
//!     client alternately sends a 44-byte echo and a 35-byte shout to its
//!     room; echo round trip and shout delivery p50/p99 at growing numbers
//!     of connected clients, the most held with p99 under 50 ms, and RSS.
//!
//! Run: `scripts/build-plugins.sh && cargo run --release -p hoard-bench
//! --bin hoard-load` (`-- --quick` for a short smoke run). The hosts are
//! this binary started again as `hoard-load serve --config FILE`.

mod baseline;
mod players;
mod process;

use anyhow::{Context, Result};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use players::{Samples, Socket, Table, connect, connect_table, drive, next_json, seat_table};
use process::{HostProcess, free_port};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("serve") {
        // A host for the benchmark: the `hoard` command line itself.
        return hoard::cli::main();
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    match runtime.block_on(run(quick)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hoard-load: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(quick: bool) -> Result<()> {
    let services = Services::create().await?;
    let window = if quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(8)
    };
    println!(
        "hoard-load: {} s windows; hosts in service mode on this machine's Redis and PostgreSQL (2 cores shared by the hosts, the load generator and both servers)",
        window.as_secs()
    );
    let tables = if quick { 50 } else { 250 };
    let one = hokm_one_host(&services, tables, window).await?;
    hokm_two_hosts(&services, tables, window, one).await?;
    let levels: &[usize] = if quick {
        &[500, 1000]
    } else {
        &[1000, 3000, 6000, 9000]
    };
    workload_6(&services, levels, window).await?;
    services.drop_all().await;
    Ok(())
}

/// This run's Redis key prefix and PostgreSQL database, deleted at the end.
struct Services {
    prefix: String,
    database: String,
    dir: tempfile::TempDir,
}

const REDIS_URL: &str = "redis://127.0.0.1:6379";
const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl Services {
    async fn create() -> Result<Services> {
        use sqlx::Connection;
        let client = redis::Client::open(REDIS_URL)?;
        let mut redis = client
            .get_multiplexed_async_connection()
            .await
            .context("Redis on 127.0.0.1:6379")?;
        let _: String = redis::cmd("PING").query_async(&mut redis).await?;
        let mut admin = sqlx::PgConnection::connect(POSTGRES_ADMIN)
            .await
            .context("PostgreSQL on 127.0.0.1:5432")?;
        let database = format!("hoard_load_{:x}", rand::random::<u32>());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut admin)
            .await?;
        Ok(Services {
            prefix: format!("hoard-load-{:x}", rand::random::<u32>()),
            database,
            dir: tempfile::tempdir()?,
        })
    }

    async fn drop_all(&self) {
        use sqlx::Connection;
        if let Ok(mut admin) = sqlx::PgConnection::connect(POSTGRES_ADMIN).await {
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database);
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(&mut admin)
                .await;
        }
        if let Ok(client) = redis::Client::open(REDIS_URL)
            && let Ok(mut redis) = client.get_multiplexed_async_connection().await
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}:*", self.prefix))
                .query_async(&mut redis)
                .await
                .unwrap_or_default();
            for chunk in keys.chunks(1000) {
                let _: Result<i64, _> = redis::cmd("DEL").arg(chunk).query_async(&mut redis).await;
            }
        }
    }

    /// A host config: service mode, limits opened for one load generator
    /// on loopback (every client is 127.0.0.1), `plugin` loaded.
    fn config(&self, id: &str, port: u16, plugin: &str, cluster: bool) -> PathBuf {
        self.config_kept(id, port, plugin, cluster, 2000)
    }

    /// As [`Services::config`], keeping at most `kept` plugin instances.
    fn config_kept(
        &self,
        id: &str,
        port: u16,
        plugin: &str,
        cluster: bool,
        kept: usize,
    ) -> PathBuf {
        let path = self.dir.path().join(format!("{id}-{port}.toml"));
        let plugin_path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../plugins/dist")
            .join(format!("{plugin}.wasm"));
        let text = format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
{limits}[storage]
hot = "redis"
cold = "postgres"
require_durable = false
[storage.redis]
url = "{REDIS_URL}"
key_prefix = "{prefix}"
[storage.postgres]
url = "postgres://postgres@127.0.0.1:5432/{database}"
pool_max = 8
[storage.resilience]
outbox_path = {outbox:?}
call_timeout_ms = 5000
[wasm]
instances_max = 2100
[sessions]
live_max = 2000
instances_kept_max = {kept}
client_seeds = true
[cluster]
enabled = {cluster}
instance_id = "{id}"
lease_ms = 5000
heartbeat_ms = 500
[[plugins]]
name = "{plugin}"
path = {plugin_path:?}
"#,
            limits = process::ONE_CLIENT_FOR_MANY,
            prefix = self.prefix,
            database = self.database,
            outbox = self.dir.path().join(format!("{id}-{port}-outbox.sled")),
        );
        std::fs::write(&path, text).expect("a config file");
        path
    }
}

/// Sets up `count` tables over `hosts` (created round-robin; sockets
/// spread over all hosts): seats every table, calls `seated`, then
/// connects every player.
async fn setup_tables(
    hosts: &[&HostProcess],
    count: usize,
    seated: impl FnOnce(),
) -> Result<Vec<Table>> {
    let bases: Vec<String> = hosts.iter().map(|h| h.base()).collect();
    let http = reqwest::Client::new();
    let mut seatings = futures_util::stream::iter((0..count).map(|n| {
        let (http, create_at) = (http.clone(), bases[n % bases.len()].clone());
        async move { seat_table(&http, &create_at, 1000 + n as u64).await }
    }))
    .buffered(32);
    let mut seats = Vec::new();
    while let Some(seat) = seatings.next().await {
        seats.push(seat?);
    }
    seated();
    let mut connecting =
        futures_util::stream::iter(seats.into_iter().enumerate().map(|(n, (session, tokens))| {
            // Sockets start on the creating instance, then alternate.
            let mut order = bases.clone();
            order.rotate_left(n % bases.len());
            async move { connect_table(&order, &session, &tokens).await }
        }))
        .buffer_unordered(32);
    let mut tables = Vec::new();
    while let Some(table) = connecting.next().await {
        tables.push(table?);
    }
    Ok(tables)
}

async fn play(
    tables: Vec<Table>,
    pace: Option<Duration>,
    window: Duration,
) -> Result<(f64, Samples)> {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let until = started + window;
    let drivers: Vec<_> = tables
        .into_iter()
        .enumerate()
        .map(|(n, table)| {
            tokio::spawn(drive(
                table,
                http.clone(),
                pace,
                (started, until),
                50_000 + n as u64 * 100,
            ))
        })
        .collect();
    let mut actions = 0;
    let mut latency = Samples::default();
    for driver in drivers {
        let played = driver.await??;
        actions += played.actions;
        latency.merge(played.latency);
    }
    Ok((actions as f64 / started.elapsed().as_secs_f64(), latency))
}

/// (1): one host.
async fn hokm_one_host(services: &Services, tables: usize, window: Duration) -> Result<f64> {
    let port = free_port();
    let host = HostProcess::start(&services.config("one", port, "hokm", false), port).await?;
    let idle_rss = host.rss();
    let players = (tables * 4) as f64;
    println!("\n(1) Hokm over WebSocket, one host, {players} connected players ({tables} tables)");
    let mut seated_rss = 0;
    let set_up = setup_tables(&[&host], tables, || seated_rss = host.rss()).await?;
    let loaded_rss = host.rss();
    let per_thousand = (loaded_rss.saturating_sub(idle_rss)) as f64 / players * 1000.0;
    println!(
        "  host RSS {:.1} MB idle, {:.1} MB with the tables seated ({:.0} KB per table: its session and plugin instance), {:.1} MB with every player connected ({:.1} KB per socket)",
        idle_rss as f64 / 1e6,
        seated_rss as f64 / 1e6,
        seated_rss.saturating_sub(idle_rss) as f64 / tables as f64 / 1e3,
        loaded_rss as f64 / 1e6,
        loaded_rss.saturating_sub(seated_rss) as f64 / players / 1e3,
    );
    println!(
        "  {:.1} MB per 1,000 connected players (target < 25) -> {}",
        per_thousand / 1e6,
        if per_thousand < 25e6 {
            "met"
        } else {
            "NOT met"
        }
    );
    // At a player's pace: every table acts four times a second.
    let cpu_before = host.cpu_seconds();
    let (rate, mut latency) = play(set_up, Some(Duration::from_millis(250)), window).await?;
    let paced_cpu = (host.cpu_seconds() - cpu_before) / (rate * window.as_secs_f64());
    let played_rss = host.rss();
    println!(
        "  paced ({rate:.0} actions/s): action -> event at all 4 players p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms (target p99 < 2 ms) -> {}; host CPU {:.0} us per action",
        latency.ms(50.0),
        latency.ms(99.0),
        latency.ms(99.9),
        if latency.ms(99.0) < 2.0 {
            "met"
        } else {
            "NOT met"
        },
        paced_cpu * 1e6,
    );
    println!(
        "  host RSS after playing {:.1} MB ({:.1} MB per 1,000 players, with each table's backlog of events filled)",
        played_rss as f64 / 1e6,
        played_rss.saturating_sub(idle_rss) as f64 / players * 1000.0 / 1e6
    );
    let set_up = setup_tables(&[&host], tables, || {}).await?;
    let cpu_before = host.cpu_seconds();
    let (rate, mut latency) = play(set_up, None, window).await?;
    let cpu = (host.cpu_seconds() - cpu_before) / (rate * window.as_secs_f64());
    println!(
        "  flat out: {rate:.0} actions/s, action -> 4 events p50 {:.2} ms, p99 {:.2} ms; host CPU {:.0} us per action",
        latency.ms(50.0),
        latency.ms(99.0),
        cpu * 1e6
    );
    match baseline::redis_benchmark_set(6379, tables) {
        Some(set) => println!(
            "  redis-benchmark SET, {tables} clients, same run: {set:.0} ops/s; hoard is {:.2}x of it (target >= 0.5) -> {}",
            rate / set,
            if rate / set >= 0.5 { "met" } else { "NOT met" }
        ),
        None => println!("  redis-benchmark did not run: no same-run baseline"),
    }
    drop(host);
    instances_kept(services, tables, window).await?;
    Ok(rate)
}

/// (1b): the same tables on a host that keeps at most a quarter of their
/// plugin instances: memory against CPU.
async fn instances_kept(services: &Services, tables: usize, window: Duration) -> Result<()> {
    let kept = (tables / 4).max(1);
    let port = free_port();
    let config = services.config_kept("kept", port, "hokm", false, kept);
    let host = HostProcess::start(&config, port).await?;
    let idle_rss = host.rss();
    let set_up = setup_tables(&[&host], tables, || {}).await?;
    let loaded_rss = host.rss();
    let players = (tables * 4) as f64;
    let cpu_before = host.cpu_seconds();
    let (rate, mut latency) = play(set_up, Some(Duration::from_millis(250)), window).await?;
    let cpu = (host.cpu_seconds() - cpu_before) / (rate * window.as_secs_f64());
    let per_thousand = loaded_rss.saturating_sub(idle_rss) as f64 / players * 1000.0;
    println!(
        "  with sessions.instances_kept_max = {kept} (a quarter of the tables): {:.1} MB per 1,000 connected players (target < 25) -> {}; paced p50 {:.2} ms, p99 {:.2} ms, host CPU {:.0} us per action (instances made again as tables take turns)",
        per_thousand / 1e6,
        if per_thousand < 25e6 {
            "met"
        } else {
            "NOT met"
        },
        latency.ms(50.0),
        latency.ms(99.0),
        cpu * 1e6,
    );
    Ok(())
}

/// (2): the same on two instances.
async fn hokm_two_hosts(
    services: &Services,
    tables: usize,
    window: Duration,
    one: f64,
) -> Result<()> {
    let (port_a, port_b) = (free_port(), free_port());
    let a = HostProcess::start(&services.config("a", port_a, "hokm", true), port_a).await?;
    let b = HostProcess::start(&services.config("b", port_b, "hokm", true), port_b).await?;
    // Each sees the other's heartbeat.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    println!(
        "\n(2) the same {tables} tables on two instances (cluster mode; half of each table's sockets relayed from the other instance)"
    );
    let set_up = setup_tables(&[&a, &b], tables, || {}).await?;
    let (rate, mut latency) = play(set_up, None, window).await?;
    println!(
        "  flat out: {rate:.0} actions/s ({:.2}x one host; target >= 1.6x when Redis is not the bottleneck), p50 {:.2} ms, p99 {:.2} ms",
        rate / one,
        latency.ms(50.0),
        latency.ms(99.0),
    );
    println!(
        "  what limits it: the machine's 2 cores run both instances, the load generator, Redis and PostgreSQL; a second instance adds work (the relay hop) without adding a core"
    );
    Ok(())
}

/// What one Workload 6 client measured.
#[derive(Default)]
struct Heard {
    echo: Samples,
    shout: Samples,
    failed: bool,
}

/// One Workload 6 client: every 0.5 s alternately an echo (44 bytes of
/// text) and a shout (35 bytes) to its room, until `until`; the echo's
/// round trip, and each shout's delivery to each room member (the shout's
/// text carries when it was sent).
async fn room_client(socket: Socket, epoch: Instant, offset: Duration, until: Instant) -> Heard {
    let (mut sink, mut stream): (SplitSink<Socket, Message>, SplitStream<Socket>) = socket.split();
    let mut heard = Heard::default();
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + offset,
        Duration::from_millis(500),
    );
    let mut next_id = 0u64;
    let mut echoes: Vec<(u64, Instant)> = Vec::new();
    let deadline = tokio::time::Instant::from_std(until);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = ticks.tick() => {
                next_id += 1;
                let now = Instant::now();
                let action = if next_id.is_multiple_of(2) {
                    echoes.push((next_id, now));
                    json!({"type": "echo", "text": format!("{:0>44}", 0)})
                } else {
                    // When it was sent, padded to 35 bytes.
                    let stamp = (now - epoch).as_micros();
                    json!({"type": "shout", "text": format!("{stamp:0>35}")})
                };
                let frame = json!({"type": "act", "id": next_id, "action": action});
                if sink.send(Message::Text(frame.to_string().into())).await.is_err() {
                    heard.failed = true;
                    break;
                }
            }
            frame = next_json(&mut stream) => {
                let Ok(frame) = frame else {
                    heard.failed = true;
                    break;
                };
                match frame["type"].as_str() {
                    Some("reply") => {
                        let id = frame["id"].as_u64().unwrap_or(0);
                        if let Some(at) = echoes.iter().position(|(e, _)| *e == id) {
                            let (_, sent) = echoes.swap_remove(at);
                            heard.echo.add(sent.elapsed());
                        }
                    }
                    Some("message") => {
                        let stamp = frame["message"]["shout"].as_str().and_then(|s| s.parse::<u64>().ok());
                        if let Some(micros) = stamp {
                            let sent = epoch + Duration::from_micros(micros);
                            heard.shout.add(sent.elapsed());
                        }
                    }
                    Some("error") => {
                        heard.failed = true;
                        break;
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = sink.close().await;
    heard
}

/// (3): Workload 6 at growing numbers of clients.
async fn workload_6(services: &Services, levels: &[usize], window: Duration) -> Result<()> {
    let port = free_port();
    let host = HostProcess::start(&services.config("rooms", port, "tabletop", false), port).await?;
    let base = host.base();
    println!(
        "\n(3) Workload 6 (Nakama's): tabletop rooms of 10; each client every 0.5 s alternately a 44-byte echo and a 35-byte shout to its room"
    );
    let idle_rss = host.rss();
    let http = reqwest::Client::new();
    let mut held = 0;
    for &clients in levels {
        let rooms = clients / 10;
        let epoch = Instant::now();
        let mut setups = futures_util::stream::iter((0..rooms).map(|_| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let created: Value = http
                    .post(format!("{base}/v1/games/tabletop/sessions"))
                    .json(&json!({}))
                    .send()
                    .await?
                    .json()
                    .await?;
                let session = created["session"].as_str().context("a room")?.to_owned();
                let mut sockets = Vec::new();
                for n in 0..10 {
                    let joined: Value = http
                        .post(format!("{base}/v1/sessions/{session}/join"))
                        .json(&json!({"name": format!("p{n}")}))
                        .send()
                        .await?
                        .json()
                        .await?;
                    let token = joined["token"].as_str().context("a token")?;
                    sockets.push(connect(&base, &session, token).await?.0);
                }
                Ok::<_, anyhow::Error>(sockets)
            }
        }))
        .buffer_unordered(16);
        let mut sockets = Vec::new();
        let mut failed_setup = None;
        while let Some(room) = setups.next().await {
            match room {
                Ok(room) => sockets.extend(room),
                Err(error) => {
                    failed_setup = Some(error);
                    break;
                }
            }
        }
        drop(setups);
        if let Some(error) = failed_setup {
            println!("  {clients:>6} clients: could not connect them all ({error:#}); stopping");
            break;
        }
        let connected_in = epoch.elapsed();
        let rss = host.rss();
        let until = Instant::now() + window;
        let clients_running: Vec<_> = sockets
            .into_iter()
            .enumerate()
            .map(|(n, socket)| {
                let offset = Duration::from_micros((n as u64 * 7919) % 500_000);
                tokio::spawn(room_client(socket, epoch, offset, until))
            })
            .collect();
        let (mut echo, mut shout, mut failed) = (Samples::default(), Samples::default(), 0);
        for client in clients_running {
            let heard = client.await?;
            echo.merge(heard.echo);
            shout.merge(heard.shout);
            failed += usize::from(heard.failed);
        }
        let p99 = echo.ms(99.0).max(shout.ms(99.0));
        println!(
            "  {clients:>6} clients (connected in {:.1} s): echo p50 {:.1} ms p99 {:.1} ms; shout delivery p50 {:.1} ms p99 {:.1} ms; {} failed; host RSS {:.0} MB ({:.1} MB per 1,000)",
            connected_in.as_secs_f64(),
            echo.ms(50.0),
            echo.ms(99.0),
            shout.ms(50.0),
            shout.ms(99.0),
            failed,
            rss as f64 / 1e6,
            (rss.saturating_sub(idle_rss)) as f64 / clients as f64 * 1000.0 / 1e6,
        );
        if p99 < 50.0 && failed == 0 {
            held = clients;
        } else {
            break;
        }
        // Let the closed sockets go before the next level.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "  most connected clients held with p99 < 50 ms: {held} (target >= 20,000; Nakama published 19,542 on 1 CPU). This machine caps a process at 20,000 open files (hard limit), so one host holds at most ~19,900 sockets and one load generator as many; the levels here stop below it"
    );
    Ok(())
}
