//! Servers for the benchmarks: this binary started again as a hoard host
//! (or, in `hoard-bench`, as the native Hokm server), on a free port, with
//! its memory and CPU time read from /proc.

use anyhow::{Result, bail};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What a host's config needs for one load generator standing for many
/// players on loopback (every client is 127.0.0.1): the per-client
/// connection shares and rates opened. Goes right after `listen` in
/// `[server]`.
pub(crate) const ONE_CLIENT_FOR_MANY: &str = r#"connections_max = 30000
connections_per_client_max = 30000
[server.creates_per_client]
per_minute = 1000000
burst = 100000
[server.joins_per_client]
per_minute = 1000000
burst = 100000
[realtime.actions_per_player]
per_minute = 10000000
burst = 100000
[realtime.sockets_per_client]
per_minute = 10000000
burst = 100000
"#;

/// A server process (this binary started again), killed when dropped.
pub(crate) struct HostProcess {
    child: Child,
    port: u16,
}

impl HostProcess {
    /// A hoard host: `serve --config CONFIG`, listening on `port`.
    pub(crate) async fn start(config: &Path, port: u16) -> Result<HostProcess> {
        let args = [
            OsStr::new("serve"),
            OsStr::new("--config"),
            config.as_os_str(),
        ];
        Self::start_with(&args, port).await
    }

    /// This binary with `args`, serving HTTP on `port`; returns once it
    /// answers `/healthz`.
    pub(crate) async fn start_with(args: &[&OsStr], port: u16) -> Result<HostProcess> {
        let child = Command::new(std::env::current_exe()?)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let host = HostProcess { child, port };
        for _ in 0..400 {
            if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(host);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the host on port {port} did not come up")
    }

    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Resident memory, bytes.
    pub(crate) fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    }

    /// CPU time used so far, seconds (user + system).
    pub(crate) fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // Fields after the name: state is 0, utime 11, stime 12.
        (ticks(11) + ticks(12)) / 100.0
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
