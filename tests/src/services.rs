//! Real servers for tests: the machine's Redis and PostgreSQL, and Redis
//! Clusters the tests start themselves. Nothing is mocked. A server that
//! cannot be reached fails the test with a message saying how to start it.
//!
//! - [`redis_storage`]: hot storage on Redis at 127.0.0.1:6379 under a key
//!   prefix of its own (or `HOARD_TEST_REDIS_URL`).
//! - [`postgres_storage`]: cold storage on a fresh database on 127.0.0.1:5432,
//!   dropped when the guard goes (or `HOARD_TEST_POSTGRES_URL`, the server's
//!   admin URL).
//! - [`RedisCluster`]: three `redis-server --cluster-enabled yes` masters on
//!   free ports, joined by `redis-cli --cluster create`.
//! - [`RedisServer`]: one `redis-server` on a free port that a test can
//!   freeze and thaw, to make storage slow for real.

use hoard::storage::postgres::{PostgresConfig, PostgresStore};
use hoard::storage::redis::{ClusterRedis, RedisConfig, SingleRedis};
use hoard::storage::resilient::{Resilience, ResilienceConfig};
use hoard::storage::sled::{SledConfig, SledStore};
use hoard::storage::{Limits, Storage};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub fn redis_url() -> String {
    std::env::var("HOARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn postgres_admin_url() -> String {
    std::env::var("HOARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A Redis config with a key prefix no other test uses.
pub fn redis_config() -> RedisConfig {
    RedisConfig {
        url: redis_url(),
        key_prefix: format!("hoard-test-{:016x}", rand::random::<u64>()),
        ..RedisConfig::default()
    }
}

/// A sled database in a temp dir, for the capability a test does not cover.
pub fn temp_sled() -> (Arc<SledStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(&SledConfig {
        path: dir.path().join("db"),
        ..SledConfig::default()
    })
    .expect("sled");
    (store, dir)
}

/// Deletes every key under a test's prefix when dropped.
pub struct RedisKeys {
    pub config: RedisConfig,
}

impl RedisKeys {
    pub fn new() -> RedisKeys {
        RedisKeys {
            config: redis_config(),
        }
    }

    /// Connects, failing with how to start Redis if it is not there.
    pub async fn connect(&self) -> SingleRedis {
        SingleRedis::connect(&self.config).await.unwrap_or_else(|e| {
            panic!("{e}\nThe service tests need Redis on 127.0.0.1:6379: `redis-server --daemonize yes --port 6379 --save ''`")
        })
    }
}

impl Default for RedisKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        // Binary keys (NUL, newlines) cannot go through a shell: the redis
        // crate's blocking client deletes them.
        let Ok(client) = redis::Client::open(self.config.url.as_str()) else {
            return;
        };
        let Ok(mut connection) = client.get_connection() else {
            return;
        };
        let pattern = format!("{}:*", self.config.key_prefix);
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
            .arg(pattern)
            .query(&mut connection)
            .unwrap_or_default();
        for chunk in keys.chunks(256) {
            let _: redis::RedisResult<u64> = redis::cmd("DEL").arg(chunk).query(&mut connection);
        }
    }
}

/// Hot storage on the machine's Redis; cold on a throwaway sled.
pub async fn redis_storage() -> (Storage, (RedisKeys, tempfile::TempDir)) {
    let keys = RedisKeys::new();
    let redis = keys.connect().await;
    let (sled, dir) = temp_sled();
    (
        Storage {
            hot: Arc::new(redis),
            cold: sled,
            limits: Limits::default(),
        },
        (keys, dir),
    )
}

/// Both capabilities through the outage layer, over the machine's Redis and
/// a fresh Postgres database, with every write forced through the outbox
/// and replayed (failpoint `resilient-always-queue`): the queued path, on
/// real servers.
pub async fn queued_storage() -> (Storage, (RedisKeys, TestDatabase, tempfile::TempDir)) {
    fail::cfg("resilient-always-queue", "return").expect("failpoint");
    let keys = RedisKeys::new();
    let redis = keys.connect().await;
    let database = TestDatabase::create().await;
    let postgres = PostgresStore::connect(&database.config())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("temp dir");
    let resilience = Resilience::open(&ResilienceConfig {
        outbox_path: dir.path().join("outbox"),
        ..ResilienceConfig::default()
    })
    .expect("the outbox opens");
    let hot = resilience
        .guard_hot(Arc::new(redis), "redis")
        .expect("hot layer");
    let cold = resilience
        .guard_cold(Arc::new(postgres), "postgres")
        .expect("cold layer");
    (
        Storage {
            hot,
            cold,
            limits: Limits::default(),
        },
        (keys, database, dir),
    )
}

/// A fresh database, created on the machine's Postgres and dropped (even if
/// the test fails) when this guard is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        use sqlx::Connection;
        let admin_url = postgres_admin_url();
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "cannot reach PostgreSQL at {admin_url}: {e}\nThe service tests need PostgreSQL on 127.0.0.1:5432 with trust auth: \
                 `pg_ctlcluster 15 main start` (or set HOARD_TEST_POSTGRES_URL)"
            )
        });
        let name = format!("hoard_test_{:016x}", rand::random::<u64>());
        // The name is our own hex; DDL takes no bind parameters.
        let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"));
        sqlx::query(create)
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("HOARD_TEST_POSTGRES_URL must end in /DATABASE"),
        };
        TestDatabase { name, url }
    }

    pub fn config(&self) -> PostgresConfig {
        PostgresConfig {
            url: self.url.clone(),
            pool_max: 8,
            ..PostgresConfig::default()
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside async: a thread with its own runtime does it.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                use sqlx::Connection;
                if let Ok(mut admin) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                    let drop =
                        sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                    let _ = sqlx::query(drop).execute(&mut admin).await;
                }
            });
        })
        .join();
    }
}

/// Points a host config at service mode: hot on this test's Redis keys,
/// cold on this test's database.
pub fn use_service_backends(
    config: &mut hoard::config::Config,
    keys: &RedisKeys,
    database: &TestDatabase,
) {
    config.storage.hot = hoard::config::HotBackend::Redis;
    config.storage.cold = hoard::config::ColdBackend::Postgres;
    config.storage.redis = keys.config.clone();
    config.storage.postgres = database.config();
}

/// A host in service mode on this test's own Redis keys and database,
/// which are dropped with the second value (after the host stops).
pub async fn service_host(
    plugins: &[(&str, &str)],
) -> (crate::TestHost, (RedisKeys, TestDatabase)) {
    let (keys, database) = (RedisKeys::new(), TestDatabase::create().await);
    let host = crate::TestHost::start_with(plugins, |config| {
        use_service_backends(config, &keys, &database);
        // These tests are about games, not slow servers (the outage tests
        // have their own): on a loaded two-core machine a read can take
        // longer than the default 500 ms, and a read that times out is
        // answered `unavailable` (CI saw one 503 so).
        config.storage.resilience.call_timeout_ms = 5_000;
    })
    .await;
    (host, (keys, database))
}

/// Cold storage on a fresh Postgres database; hot on a throwaway sled.
pub async fn postgres_storage() -> (Storage, (TestDatabase, tempfile::TempDir)) {
    let database = TestDatabase::create().await;
    let postgres = PostgresStore::connect(&database.config())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (sled, dir) = temp_sled();
    (
        Storage {
            hot: sled,
            cold: Arc::new(postgres),
            limits: Limits::default(),
        },
        (database, dir),
    )
}

/// A Redis server of the test's own, stopped when dropped.
pub struct RedisServer {
    pub url: String,
    server: Child,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let server = spawn_redis_server(port, dir.path(), &[]);
        let address = format!("127.0.0.1:{port}");
        wait_for_redis(&address).await;
        RedisServer {
            url: format!("redis://{address}"),
            server,
            _dir: dir,
        }
    }

    pub fn config(&self) -> RedisConfig {
        RedisConfig {
            url: self.url.clone(),
            ..redis_config()
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT); it answers what was sent meanwhile.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.server.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill {signal} redis-server failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL ends a paused server too.
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// A local three-master Redis Cluster, stopped when dropped.
pub struct RedisCluster {
    pub nodes: Vec<String>,
    servers: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    pub async fn start() -> RedisCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut servers = Vec::new();
        for port in &ports {
            let node_dir = dir.path().join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let server = spawn_redis_server(
                *port,
                &node_dir,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ],
            );
            servers.push(server);
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        for node in &nodes {
            wait_for_redis(node).await;
        }
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = RedisCluster {
            nodes: nodes.iter().map(|n| format!("redis://{n}")).collect(),
            servers,
            _dir: dir,
        };
        for node in &nodes {
            for _ in 0..200 {
                let info = Command::new("redis-cli")
                    .args(["-u", &format!("redis://{node}"), "cluster", "info"])
                    .output()
                    .expect("redis-cli");
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        cluster
    }

    pub fn config(&self) -> RedisConfig {
        RedisConfig {
            cluster_nodes: self.nodes.clone(),
            ..redis_config()
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// Hot storage on a fresh local Redis Cluster; cold on a throwaway sled.
pub async fn redis_cluster_storage() -> (Storage, (RedisCluster, tempfile::TempDir)) {
    let cluster = RedisCluster::start().await;
    let redis = ClusterRedis::connect(&cluster.config())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (sled, dir) = temp_sled();
    (
        Storage {
            hot: Arc::new(redis),
            cold: sled,
            limits: Limits::default(),
        },
        (cluster, dir),
    )
}

/// Starts `redis-server` on `port` with no persistence, its files in `dir`,
/// plus `extra` arguments.
fn spawn_redis_server(port: u16, dir: &std::path::Path, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(extra)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start redis-server ({e}): install Redis 7 (`apt-get install redis-server`)"
            )
        })
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port()
}

async fn wait_for_redis(node: &str) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(node).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("redis-server on {node} did not start");
}
