//! What the outage tests need: servers they own and can kill (a durable
//! `redis-server`, a `postgres` cluster started as the `postgres` user), a
//! TCP proxy that can stall or cut connections, and a workload that
//! records every acknowledged write to check the servers against after
//! recovery. Nothing is mocked: the servers are real processes, killed
//! with SIGKILL.

use crate::services::free_port;
use crate::{Api, Player};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Kills a process group with SIGKILL.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// A durable Redis of the test's own (`appendonly yes`, fsync always), on
/// a fixed port, that survives SIGKILL with every acknowledged write.
pub struct OwnRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    pub async fn start() -> OwnRedis {
        let mut redis = OwnRedis {
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn address(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// SIGKILL: no shutdown, no last save.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }

    /// Starts (again) on the same port and files, and waits for it.
    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("redis-server starts (apt-get install redis-server)");
        self.child = Some(child);
        for _ in 0..400 {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut connection) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut connection).is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {} did not come up", self.port);
    }

    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection())
            .expect("a connection to the test's Redis")
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL cluster of the test's own, run as the `postgres` user in a
/// temp dir it owns (postgres refuses to run as root), with a database
/// `hoard`.
pub struct OwnPostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `name=value` settings passed with `-c`.
    settings: Vec<String>,
}

impl OwnPostgres {
    pub async fn start() -> OwnPostgres {
        Self::start_with(&[]).await
    }

    /// As [`OwnPostgres::start`], with `name=value` settings.
    pub async fn start_with(settings: &[&str]) -> OwnPostgres {
        let dir = tempfile::tempdir().expect("temp dir");
        let owned = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(owned.success(), "chown the cluster's dir to postgres");
        let initdb = Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{POSTGRES_BIN}/initdb")])
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .expect("initdb runs (PostgreSQL 15 in /usr/lib/postgresql/15/bin)");
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let mut postgres = OwnPostgres {
            port: free_port(),
            dir,
            child: None,
            settings: settings.iter().map(|s| (*s).to_owned()).collect(),
        };
        postgres.restart().await;
        let created = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &postgres.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-c", "CREATE DATABASE hoard"])
            .output()
            .expect("psql");
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        postgres
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/hoard", self.port)
    }

    pub fn address(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// SIGKILL to the postmaster and every backend.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }

    /// Starts (again) on the same port and data, and waits until it
    /// accepts connections (after crash recovery, if it was killed).
    pub async fn restart(&mut self) {
        let child = Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{POSTGRES_BIN}/postgres")])
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        for _ in 0..400 {
            let ready = Command::new(format!("{POSTGRES_BIN}/pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("postgres on port {} did not come up", self.port);
    }

    pub async fn connection(&self) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&self.url())
            .await
            .expect("a connection to the test's Postgres")
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward both ways.
    Pass,
    /// Keep every connection open and accept new ones, but forward
    /// nothing: a server that hangs instead of failing.
    Stall,
    /// Close every connection and refuse new ones at once.
    Cut,
}

/// A TCP proxy in front of a server, whose mode a test switches.
pub struct Proxy {
    pub port: u16,
    mode: watch::Sender<ProxyMode>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (mode, watching) = watch::channel(ProxyMode::Pass);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let watching = watching.clone();
                tokio::spawn(async move {
                    if *watching.borrow() == ProxyMode::Cut {
                        return;
                    }
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let up = pump(client_read, server_write, watching.clone());
                    let down = pump(server_read, client_write, watching);
                    tokio::select! {
                        () = up => {}
                        () = down => {}
                    }
                });
            }
        });
        Proxy { port, mode, task }
    }

    pub fn set(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    pub fn address(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies one direction until either side closes, holding still while the
/// mode is `Stall` and ending (closing both) when it turns `Cut`.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<ProxyMode>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        loop {
            let current = *mode.borrow_and_update();
            match current {
                ProxyMode::Pass => break,
                ProxyMode::Cut => return,
                ProxyMode::Stall => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            changed = mode.changed() => {
                if changed.is_err() { return; }
                continue;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while *mode.borrow() == ProxyMode::Stall {
            if mode.changed().await.is_err() {
                return;
            }
        }
        if *mode.borrow() == ProxyMode::Cut || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// Every write a workload had acknowledged, per key, in order.
#[derive(Default, Debug)]
pub struct Acknowledged {
    /// counter key -> increments acknowledged.
    pub counters: BTreeMap<String, u64>,
    /// leaderboard member -> increments acknowledged.
    pub scores: BTreeMap<String, u64>,
    /// stream -> bodies appended, in order.
    pub streams: BTreeMap<String, Vec<String>>,
    /// record key -> bodies put, in order (versions 1, 2, ...).
    pub records: BTreeMap<String, Vec<String>>,
}

/// The probe workload of the outage tests: `players` probe sessions, each
/// making `rounds` rounds of writes: a match recorded (history append,
/// leaderboard and counter increments) and a versioned record put.
/// Every action is retried until it is acknowledged (a client would), and
/// what was acknowledged is recorded.
pub async fn probe_workload(
    api: &Api,
    worker: usize,
    rounds: usize,
    pause: Duration,
) -> Acknowledged {
    let session = api.create("probe", json!({})).await;
    let player = api.join(&session, &format!("w{worker}")).await;
    let mut acknowledged = Acknowledged::default();
    let key = format!("w{worker}");
    for (version, round) in (0..rounds).enumerate() {
        let version = version as u64;
        let body = json!({"worker": worker, "round": round}).to_string();
        let recorded = act_until_acknowledged(
            &player,
            &json!({"do": "record-match", "key": key, "member": key, "body": body}),
        )
        .await;
        assert!(recorded["view"]["last"].is_array(), "{recorded}");
        *acknowledged.counters.entry(key.clone()).or_default() += 1;
        *acknowledged.scores.entry(key.clone()).or_default() += 1;
        acknowledged
            .streams
            .entry(key.clone())
            .or_default()
            .push(body.clone());
        let put = act_until_acknowledged(
            &player,
            &json!({"do": "cold-put", "collection": "records", "key": key, "body": body, "expected": version}),
        )
        .await;
        let answered = &put["view"]["last"];
        assert_eq!(
            answered,
            &json!(version + 1),
            "versioned put answered {put}"
        );
        acknowledged
            .records
            .entry(key.clone())
            .or_default()
            .push(body);
        tokio::time::sleep(pause).await;
    }
    acknowledged
}

/// Sends `action` until the host acknowledges it (200), as a client would
/// on a 503 or a dropped connection; the same action number each time, so
/// its writes apply once. Gives up after 60 s.
pub async fn act_until_acknowledged(player: &Player, action: &Value) -> Value {
    let started = Instant::now();
    loop {
        let reply = player.try_act(action).await;
        match reply {
            Some(reply) if reply.status == 200 => return reply.body,
            Some(reply) if reply.status == 503 => {}
            Some(reply) => panic!("{action} refused: {} {}", reply.status, reply.body),
            None => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{action} never acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Acknowledged {
    pub fn merge(&mut self, other: Acknowledged) {
        for (key, n) in other.counters {
            *self.counters.entry(key).or_default() += n;
        }
        for (key, n) in other.scores {
            *self.scores.entry(key).or_default() += n;
        }
        self.streams.extend(other.streams);
        self.records.extend(other.records);
    }

    /// Redis holds exactly the acknowledged counters and scores: none lost,
    /// none applied twice.
    pub fn check_redis(&self, redis: &mut redis::Connection, prefix: &str) {
        let ns = hoard::storage::Namespace::plugin("probe").expect("name");
        for (key, n) in &self.counters {
            let stored: Option<u64> = redis::cmd("GET")
                .arg(hoard::storage::redis::key(prefix, &ns, "v", key))
                .query(redis)
                .expect("GET");
            assert_eq!(stored, Some(*n), "counter {key}");
        }
        for (member, n) in &self.scores {
            let stored: Option<f64> = redis::cmd("ZSCORE")
                .arg(hoard::storage::redis::key(prefix, &ns, "b", member))
                .arg(member)
                .query(redis)
                .expect("ZSCORE");
            // Stored negated (best first).
            assert_eq!(stored.map(|s| -s), Some(*n as f64), "score of {member}");
        }
    }

    /// PostgreSQL holds exactly the acknowledged history entries, in order,
    /// and each record at the version its acknowledged puts reached, with
    /// the last body.
    pub async fn check_postgres(&self, postgres: &mut sqlx::PgConnection) {
        for (stream, bodies) in &self.streams {
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT seq, body FROM history WHERE namespace = 'probe' AND stream = $1 ORDER BY seq",
            )
            .bind(stream.as_bytes())
            .fetch_all(&mut *postgres)
            .await
            .expect("history");
            let stored: Vec<&str> = rows.iter().map(|(_, body)| body.as_str()).collect();
            assert_eq!(
                stored, *bodies,
                "history {stream}: none lost, none twice, in order"
            );
            let seqs: Vec<i64> = rows.iter().map(|(seq, _)| *seq).collect();
            assert_eq!(seqs, (1..=bodies.len() as i64).collect::<Vec<_>>());
        }
        for (key, bodies) in &self.records {
            let row: (i64, String) = sqlx::query_as(
                "SELECT version, body FROM records WHERE namespace = 'probe' AND collection = $1 AND key = $2",
            )
            .bind(&b"records"[..])
            .bind(key.as_bytes())
            .fetch_one(&mut *postgres)
            .await
            .expect("record");
            assert_eq!(row.0, bodies.len() as i64, "record {key}'s version");
            assert_eq!(
                &row.1,
                bodies.last().expect("a put"),
                "record {key}'s last body"
            );
        }
    }
}

/// Waits until the host's outboxes are empty and its breakers closed
/// (admin API), or panics after `patience`.
pub async fn wait_drained(api: &Api, token: &str, patience: Duration) {
    let started = Instant::now();
    loop {
        let status = api.send("GET", "/admin/v1/queue", None, Some(token)).await;
        assert_eq!(status.status, 200, "{:?}", status.body);
        let settled = status.body["capabilities"]
            .as_array()
            .expect("capabilities")
            .iter()
            .all(|c| c["queued_ops"] == 0 && c["breaker"] == "closed");
        if settled {
            return;
        }
        assert!(
            started.elapsed() < patience,
            "the outbox did not drain: {}",
            status.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One capability's entry in the admin API's queue status (`breaker`,
/// `queued_ops`, ...).
pub async fn queue_status(api: &Api, token: &str, capability: &str) -> Value {
    let status = api.send("GET", "/admin/v1/queue", None, Some(token)).await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    status.body["capabilities"]
        .as_array()
        .expect("capabilities")
        .iter()
        .find(|c| c["capability"] == capability)
        .cloned()
        .unwrap_or_else(|| panic!("{capability} is not guarded: {}", status.body))
}

/// Runs `act` until `capability`'s breaker is open, so that what follows
/// goes straight to the outbox.
pub async fn act_until_open<F: Future>(
    api: &Api,
    token: &str,
    capability: &str,
    mut act: impl FnMut() -> F,
) {
    let started = Instant::now();
    loop {
        act().await;
        if queue_status(api, token, capability).await["breaker"] == "open" {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the {capability} breaker never opened"
        );
    }
}

/// A shared log of what happened when, for a failing test's message.
#[derive(Clone, Default)]
pub struct Timeline(Arc<Mutex<Vec<(Duration, String)>>>);

impl Timeline {
    pub fn note(&self, started: Instant, what: impl Into<String>) {
        self.0
            .lock()
            .expect("timeline")
            .push((started.elapsed(), what.into()));
    }
}
