//! Helpers for hoard's integration tests: start the real host on port 0
//! with real compiled plugins and real storage, and talk to it over HTTP.
//!
//! - [`TestHost`]: the host in this process, via `hoard::run`.
//! - [`Player`]/[`Api`]: a thin HTTP client returning status and JSON.
//! - [`hokm`]: an independent referee for Hokm (its own rules code).
//! - [`conformance`]: the storage conformance suite, run on every backend.
//! - [`services`]: real Redis, Redis Cluster and PostgreSQL for tests.
//! - [`outage`]: servers the tests own and kill, a proxy that stalls or
//!   cuts, and a workload checked write by write after recovery.

pub mod conformance;
pub mod hokm;
pub mod outage;
pub mod seeded;
pub mod services;

use hoard::config::{Config, PluginConfig};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::sync::oneshot;

/// The compiled component of a plugin under `plugins/`, built by
/// `scripts/build-plugins.sh`.
pub fn plugin_path(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/dist")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the plugins first with scripts/build-plugins.sh (scripts/test.sh does it)",
        path.display()
    );
    path
}

/// Every game `scripts/run-offline.sh` serves, as (name, component) pairs.
pub const EVERY_GAME: &[(&str, &str)] = &[
    ("hokm", "hokm"),
    ("pig", "pig"),
    ("tabletop", "tabletop"),
    ("roguelike", "roguelike"),
];

/// A config for tests: sled in `data_dir`, listening anywhere, the given
/// plugins as (name, component) pairs.
pub fn test_config(data_dir: &std::path::Path, plugins: &[(&str, &str)]) -> Config {
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.storage.sled.path = data_dir.join("hoard.sled");
    config.storage.resilience.outbox_path = data_dir.join("outbox.sled");
    config.wasm.instances_max = 300;
    config.sessions.live_max = 256;
    // Tests replay games from chosen seeds and create sessions quickly
    // from one address; the limits have tests of their own.
    config.sessions.client_seeds = true;
    config.server.creates_per_client.per_minute = 100_000;
    config.server.creates_per_client.burst = 10_000;
    config.server.joins_per_client.per_minute = 100_000;
    config.server.joins_per_client.burst = 10_000;
    config.plugins = plugins
        .iter()
        .map(|(name, component)| PluginConfig {
            name: (*name).to_owned(),
            path: plugin_path(component),
        })
        .collect();
    config
}

/// The real host serving on a loopback port in this process.
pub struct TestHost {
    pub address: SocketAddr,
    pub app: std::sync::Arc<hoard::app::App>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Kept so the data outlives the host.
    _data: Option<tempfile::TempDir>,
}

impl TestHost {
    /// Starts a host with `plugins` on a fresh sled database.
    pub async fn start(plugins: &[(&str, &str)]) -> TestHost {
        Self::start_with(plugins, |_| {}).await
    }

    /// As [`TestHost::start`], letting the test adjust the config.
    pub async fn start_with(
        plugins: &[(&str, &str)],
        adjust: impl FnOnce(&mut Config),
    ) -> TestHost {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(data.path(), plugins);
        adjust(&mut config);
        let mut host = Self::start_config(config).await;
        host._data = Some(data);
        host
    }

    pub async fn start_config(config: Config) -> TestHost {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let app = std::sync::Arc::new(
            hoard::app::App::start(config)
                .await
                .expect("the host starts"),
        );
        let (shutdown, stop) = oneshot::channel();
        let task = tokio::spawn(hoard::api::serve(app.clone(), listener, async {
            let _ = stop.await;
        }));
        TestHost {
            address,
            app,
            shutdown: Some(shutdown),
            task: Some(task),
            _data: None,
        }
    }

    pub fn api(&self) -> Api {
        Api::new(self.address)
    }

    /// Stops serving and waits for the host to finish.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The `/metrics` text of the host at `address`.
pub async fn metrics_text(address: SocketAddr) -> String {
    reqwest::get(format!("http://{address}/metrics"))
        .await
        .expect("the host answers")
        .text()
        .await
        .expect("a body")
}

/// The next event of a session's socket, within ten seconds; panics
/// otherwise.
pub async fn next_event(events: &mut hoard_bots::socket::Events) -> Value {
    tokio::time::timeout(std::time::Duration::from_secs(10), events.event())
        .await
        .expect("an event within 10 s")
        .expect("an event")
}

/// An HTTP response: status and JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The error code of an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// A client of one host.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(address: SocketAddr) -> Api {
        Api {
            base: format!("http://{address}"),
            http: reqwest::Client::new(),
        }
    }

    /// Sends a request with an optional raw body and bearer token.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the host answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{path} answered {status} with non-JSON: {text:?}"));
        Reply { status, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, Some(&body.to_string()), None).await
    }

    /// Creates a session of `game` and returns its id.
    pub async fn create(&self, game: &str, body: Value) -> String {
        let reply = self
            .post(&format!("/v1/games/{game}/sessions"), &body)
            .await;
        assert_eq!(reply.status, 201, "create: {:?}", reply.body);
        reply.body["session"]
            .as_str()
            .expect("session id")
            .to_owned()
    }

    /// Registers account `name` and logs in: the account's token.
    pub async fn account(&self, name: &str) -> String {
        let credentials =
            serde_json::json!({"name": name, "secret": format!("{name}'s long secret")});
        let registered = self.post("/v1/accounts", &credentials).await;
        assert_eq!(registered.status, 201, "register: {:?}", registered.body);
        let login = self.post("/v1/login", &credentials).await;
        assert_eq!(login.status, 200, "login: {:?}", login.body);
        login.body["token"].as_str().expect("token").to_owned()
    }

    /// Joins `session` as the account whose token is `account_token`
    /// (named `name`).
    pub async fn join_account(&self, session: &str, account_token: &str, name: &str) -> Player {
        let path = format!("/v1/sessions/{session}/join");
        let reply = self
            .send("POST", &path, Some("{}"), Some(account_token))
            .await;
        assert_eq!(reply.status, 201, "join: {:?}", reply.body);
        Player {
            api: self.clone(),
            session: session.to_owned(),
            name: name.to_owned(),
            token: reply.body["token"].as_str().expect("token").to_owned(),
        }
    }

    /// Joins `session` as `name`.
    pub async fn join(&self, session: &str, name: &str) -> Player {
        let reply = self
            .post(
                &format!("/v1/sessions/{session}/join"),
                &serde_json::json!({"name": name}),
            )
            .await;
        assert_eq!(reply.status, 201, "join: {:?}", reply.body);
        Player {
            api: self.clone(),
            session: session.to_owned(),
            name: name.to_owned(),
            token: reply.body["token"].as_str().expect("token").to_owned(),
        }
    }
}

/// A seated player: their session and token.
#[derive(Clone)]
pub struct Player {
    pub api: Api,
    pub session: String,
    pub name: String,
    pub token: String,
}

impl Player {
    /// Sends an action with an `Idempotency-Key`; the raw response, so a
    /// test can read its headers.
    pub async fn act_keyed(&self, action: &Value, key: &str) -> reqwest::Response {
        self.api
            .http
            .post(format!(
                "{}/v1/sessions/{}/actions",
                self.api.base, self.session
            ))
            .bearer_auth(&self.token)
            .header("idempotency-key", key)
            .body(action.to_string())
            .send()
            .await
            .expect("the host answers")
    }

    /// Sends an action; `None` if the host did not answer (a dropped
    /// connection, or a body that is not JSON).
    pub async fn try_act(&self, action: &Value) -> Option<Reply> {
        let path = format!("{}/v1/sessions/{}/actions", self.api.base, self.session);
        let response = self
            .api
            .http
            .post(path)
            .bearer_auth(&self.token)
            .body(action.to_string())
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        let body = response.json().await.ok()?;
        Some(Reply { status, body })
    }

    pub async fn act(&self, action: &Value) -> Reply {
        let path = format!("/v1/sessions/{}/actions", self.session);
        self.api
            .send("POST", &path, Some(&action.to_string()), Some(&self.token))
            .await
    }

    /// This player's view; panics unless it is served.
    pub async fn view(&self) -> Value {
        let reply = self
            .api
            .send(
                "GET",
                &format!("/v1/sessions/{}/view", self.session),
                None,
                Some(&self.token),
            )
            .await;
        assert_eq!(reply.status, 200, "view: {:?}", reply.body);
        reply.body["view"].clone()
    }
}

/// Writes `dir/hoard.toml` for a host process offline: listening on
/// `port`, sled in `dir/data.sled`, the one plugin `plugin`.
pub fn offline_config_file(dir: &std::path::Path, port: u16, plugin: &str) -> PathBuf {
    let config = dir.join("hoard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[storage.sled]\npath = {:?}\n[[plugins]]\nname = {plugin:?}\npath = {:?}\n",
            dir.join("data.sled"),
            plugin_path(plugin),
        ),
    )
    .expect("the config file");
    config
}

/// The real `hoard` binary as a child process, killed with SIGKILL when
/// dropped (also when a test fails).
pub struct HostProcess {
    child: std::process::Child,
    pub port: u16,
}

impl HostProcess {
    /// Starts `BINARY serve --config CONFIG` (the config listens on `port`)
    /// and waits until it answers. `binary` is the test's
    /// `env!("CARGO_BIN_EXE_hoard-test-host")`: only integration tests see
    /// that variable.
    pub async fn start(binary: &str, config: &std::path::Path, port: u16) -> HostProcess {
        Self::start_with_failpoints(binary, config, port, "").await
    }

    /// As [`HostProcess::start`], with `FAILPOINTS` set (see the `fail`
    /// crate: `name=action;...`), e.g. to crash it at a chosen place.
    pub async fn start_with_failpoints(
        binary: &str,
        config: &std::path::Path,
        port: u16,
        failpoints: &str,
    ) -> HostProcess {
        let host = Self::spawn(binary, config, port, failpoints);
        host.wait_until_up().await;
        host
    }

    /// Starts the process and returns at once (for a host a failpoint may
    /// end before it ever answers).
    pub fn spawn(
        binary: &str,
        config: &std::path::Path,
        port: u16,
        failpoints: &str,
    ) -> HostProcess {
        let child = std::process::Command::new(binary)
            .env("FAILPOINTS", failpoints)
            .args(["serve", "--config"])
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the binary starts");
        HostProcess { child, port }
    }

    /// Starts another server's `command` that listens on `port` (the
    /// benchmark's native baseline, say) and waits until it answers
    /// `/healthz`.
    pub async fn start_command(mut command: std::process::Command, port: u16) -> HostProcess {
        let child = command
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the binary starts");
        let host = HostProcess { child, port };
        host.wait_until_up().await;
        host
    }

    /// As [`HostProcess::start`], logging all of hoard's own events (`RUST_LOG=hoard=trace,info`) to
    /// the file `log`, for tests that read what the host logs.
    pub async fn start_logging(
        binary: &str,
        config: &std::path::Path,
        port: u16,
        log: &std::path::Path,
    ) -> HostProcess {
        let file = std::fs::File::create(log).expect("the log file");
        let child = std::process::Command::new(binary)
            .env("RUST_LOG", "hoard=trace,info")
            .args(["serve", "--config"])
            .arg(config)
            .stdout(file.try_clone().expect("the log file"))
            .stderr(file)
            .spawn()
            .expect("the binary starts");
        let host = HostProcess { child, port };
        host.wait_until_up().await;
        host
    }

    /// Waits until the host answers `/healthz`.
    pub async fn wait_until_up(&self) {
        let port = self.port;
        let url = format!("http://127.0.0.1:{port}/healthz");
        for _ in 0..200 {
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the host did not come up on port {port}");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident memory, in bytes (Linux).
    pub fn resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the host process is running");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib * 1024
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `patience` for the process to end on its own (a
    /// failpoint that crashes it); whether it did.
    pub async fn ended_within(&mut self, patience: std::time::Duration) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < patience {
            if self.child.try_wait().ok().flatten().is_some() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        false
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
