//! Baselines both benchmark binaries measure in the same run.

use std::process::Command;

/// `redis-benchmark -t set -c CLIENTS` against the Redis on `port`: SETs
/// per second, or `None` if it could not run.
pub fn redis_benchmark_set(port: u16, clients: usize) -> Option<f64> {
    let output = Command::new("redis-benchmark")
        .args(["-p", &port.to_string(), "-t", "set"])
        .args(["-c", &clients.to_string(), "-n", "200000"])
        .args(["-r", "100000", "-q"])
        .output()
        .ok()?;
    // Progress lines end in '\r'; the last says
    // "SET: 81234.56 requests per second, p50=0.311 msec".
    String::from_utf8_lossy(&output.stdout)
        .split(['\r', '\n'])
        .filter_map(|line| line.trim().strip_prefix("SET: "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .next_back()
}
