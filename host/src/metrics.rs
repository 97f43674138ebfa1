//! Prometheus metrics (through `prometheus-client`), served at `/metrics`
//! in the OpenMetrics text format.
//!
//! | series | labels | what |
//! |---|---|---|
//! | `hoard_http_request_duration_seconds` | route, status | each HTTP request |
//! | `hoard_storage_call_duration_seconds` | backend, capability, operation | each storage call a plugin or the host makes |
//! | `hoard_plugin_call_duration_seconds` | game, call | each call into a plugin |
//! | `hoard_plugin_faults_total` | game, fault | plugin calls that trapped, ran out of time or memory |
//! | `hoard_live_sessions` | | sessions in memory |
//! | `hoard_plugin_instances` | | sessions' plugin instances kept between calls (`sessions.instances_kept_max`) |
//! | `hoard_breaker_state` | capability, backend | 0 closed, 1 half-open, 2 open |
//! | `hoard_outbox_ops`, `hoard_outbox_bytes` | capability | what waits in the outbox |
//! | `hoard_outbox_oldest_seconds` | capability | how long the oldest queued op has waited |
//! | `hoard_replayed_ops_total` | capability | ops replayed from the outbox |
//! | `hoard_dead_letters` | capability | ops replay gave up on |
//! | `hoard_ws_connections` | | WebSockets open |
//! | `hoard_ws_feeds` | | sessions whose events are kept for sockets |
//! | `hoard_ws_events_sent_total` | kind | events written to sockets (`state`, `message`) |
//! | `hoard_ws_event_delivery_seconds` | | from a change's publication to its event written to a socket |
//! | `hoard_ws_send_queue_full_total` | | events a socket's full queue could not take (its client is then closed) |
//! | `hoard_ws_closes_total` | reason | sockets the host closed, by why (`too_slow`, `idle`, `bad_token`, ...) |
//! | `hoard_cluster_lease_claims_total` | outcome | session leases claimed: `taken`, `renewed`, or `held` by another instance |
//! | `hoard_cluster_lease_takeovers_total` | | leases taken that an instance had held before (a dead, paused or evicting owner's) |
//! | `hoard_cluster_forwarded_total` | kind | requests sent on to a session's owner: `http`, `socket`, `unavailable` (the owner did not answer) |
//! | `hoard_backups_total` | outcome | scheduled backups: `written` or `failed` |
//! | `hoard_backup_last_written_seconds` | | when the last scheduled backup was written (Unix time) |
//!
//! The outbox series are read from the outage layer when scraped.

use crate::storage::resilient::{BreakerState, Resilience};
use crate::wasm::{CallError, Fault};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StorageLabels {
    backend: &'static str,
    capability: &'static str,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    game: String,
    call: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    game: String,
    fault: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CapabilityLabels {
    capability: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerLabels {
    capability: &'static str,
    backend: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// From 10 us to about 40 s, doubling.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_01, 2.0, 22))
}

/// Every series hoard exports.
pub struct Metrics {
    registry: Registry,
    http: Histograms<HttpLabels>,
    storage: Histograms<StorageLabels>,
    plugin: Histograms<PluginLabels>,
    faults: Family<FaultLabels, Counter>,
    live_sessions: Gauge,
    instances: Gauge,
    breaker: Family<BreakerLabels, Gauge>,
    outbox_ops: Family<CapabilityLabels, Gauge>,
    outbox_bytes: Family<CapabilityLabels, Gauge>,
    outbox_oldest: Family<CapabilityLabels, Gauge<f64, AtomicU64>>,
    replayed: Family<CapabilityLabels, Counter>,
    dead_letters: Family<CapabilityLabels, Gauge>,
    ws_connections: Gauge,
    ws_feeds: Gauge,
    ws_events: Family<KindLabels, Counter>,
    ws_delivery: Histogram,
    ws_queue_full: Counter,
    ws_closes: Family<ReasonLabels, Counter>,
    lease_claims: Family<OutcomeLabels, Counter>,
    lease_takeovers: Counter,
    forwarded: Family<KindLabels, Counter>,
    backups: Family<OutcomeLabels, Counter>,
    backup_last_written: Gauge,
    /// What `replayed` last showed, per capability: the layer counts in
    /// total, the counter moves by the difference.
    replayed_seen: Mutex<Vec<(&'static str, u64)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hoard");
        let http =
            Histograms::<HttpLabels>::new_with_constructor(latency_buckets as fn() -> Histogram);
        let storage =
            Histograms::<StorageLabels>::new_with_constructor(latency_buckets as fn() -> Histogram);
        let plugin =
            Histograms::<PluginLabels>::new_with_constructor(latency_buckets as fn() -> Histogram);
        let metrics = Metrics {
            http,
            storage,
            plugin,
            faults: Family::default(),
            live_sessions: Gauge::default(),
            instances: Gauge::default(),
            breaker: Family::default(),
            outbox_ops: Family::default(),
            outbox_bytes: Family::default(),
            outbox_oldest: Family::default(),
            replayed: Family::default(),
            dead_letters: Family::default(),
            ws_connections: Gauge::default(),
            ws_feeds: Gauge::default(),
            ws_events: Family::default(),
            ws_delivery: latency_buckets(),
            ws_queue_full: Counter::default(),
            ws_closes: Family::default(),
            lease_claims: Family::default(),
            lease_takeovers: Counter::default(),
            forwarded: Family::default(),
            backups: Family::default(),
            backup_last_written: Gauge::default(),
            replayed_seen: Mutex::new(Vec::new()),
            registry: Registry::default(),
        };
        registry.register(
            "http_request_duration_seconds",
            "HTTP requests by route and status",
            metrics.http.clone(),
        );
        registry.register(
            "storage_call_duration_seconds",
            "Storage calls by backend, capability and operation",
            metrics.storage.clone(),
        );
        registry.register(
            "plugin_call_duration_seconds",
            "Calls into plugins by game and call",
            metrics.plugin.clone(),
        );
        registry.register(
            "plugin_faults",
            "Plugin calls that trapped, ran out of time or memory, by game",
            metrics.faults.clone(),
        );
        registry.register(
            "live_sessions",
            "Sessions in memory",
            metrics.live_sessions.clone(),
        );
        registry.register(
            "plugin_instances",
            "Sessions' plugin instances kept between calls",
            metrics.instances.clone(),
        );
        registry.register(
            "breaker_state",
            "Circuit breaker per backend: 0 closed, 1 half-open, 2 open",
            metrics.breaker.clone(),
        );
        registry.register(
            "outbox_ops",
            "Ops waiting in the outbox",
            metrics.outbox_ops.clone(),
        );
        registry.register(
            "outbox_bytes",
            "Bytes waiting in the outbox",
            metrics.outbox_bytes.clone(),
        );
        registry.register(
            "outbox_oldest_seconds",
            "How long the oldest op in the outbox has waited",
            metrics.outbox_oldest.clone(),
        );
        registry.register(
            "replayed_ops",
            "Ops replayed from the outbox into their backend",
            metrics.replayed.clone(),
        );
        registry.register(
            "dead_letters",
            "Ops replay gave up on, kept for an operator",
            metrics.dead_letters.clone(),
        );
        registry.register(
            "ws_connections",
            "WebSockets open",
            metrics.ws_connections.clone(),
        );
        registry.register(
            "ws_feeds",
            "Sessions whose events are kept for sockets",
            metrics.ws_feeds.clone(),
        );
        registry.register(
            "ws_events_sent",
            "Events written to sockets, by kind",
            metrics.ws_events.clone(),
        );
        registry.register(
            "ws_event_delivery_seconds",
            "From a change's publication to its event written to a socket",
            metrics.ws_delivery.clone(),
        );
        registry.register(
            "ws_send_queue_full",
            "Events a socket's full send queue could not take; its client is closed",
            metrics.ws_queue_full.clone(),
        );
        registry.register(
            "ws_closes",
            "Sockets the host closed, by reason",
            metrics.ws_closes.clone(),
        );
        registry.register(
            "cluster_lease_claims",
            "Session leases claimed: taken, renewed, or held by another instance",
            metrics.lease_claims.clone(),
        );
        registry.register(
            "cluster_lease_takeovers",
            "Leases taken that an instance had held before",
            metrics.lease_takeovers.clone(),
        );
        registry.register(
            "cluster_forwarded",
            "Requests sent on to a session's owner, by kind",
            metrics.forwarded.clone(),
        );
        registry.register(
            "backups",
            "Scheduled backups, written or failed",
            metrics.backups.clone(),
        );
        registry.register(
            "backup_last_written_seconds",
            "When the last scheduled backup was written (Unix time)",
            metrics.backup_last_written.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// A scheduled backup was written (at `unix_s`), or failed (`None`).
    pub fn backup(&self, written_at_unix_s: Option<u64>) {
        let outcome = if written_at_unix_s.is_some() {
            "written"
        } else {
            "failed"
        };
        self.backups.get_or_create(&OutcomeLabels { outcome }).inc();
        if let Some(at) = written_at_unix_s {
            self.backup_last_written
                .set(i64::try_from(at).unwrap_or(i64::MAX));
        }
    }

    /// A lease claim's outcome (`taken`, `renewed`, `held`); `takeover` if
    /// a lease was taken that some instance had held before.
    pub fn lease_claimed(&self, outcome: &'static str, takeover: bool) {
        self.lease_claims
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        if takeover {
            self.lease_takeovers.inc();
        }
    }

    /// A request sent on to a session's owner (`http`, `socket`), or one
    /// that could not be (`unavailable`).
    pub fn forwarded(&self, kind: &'static str) {
        self.forwarded.get_or_create(&KindLabels { kind }).inc();
    }

    /// A socket opened (`+1`) or closed (`-1`).
    pub fn ws_connection(&self, delta: i64) {
        self.ws_connections.inc_by(delta);
    }

    /// WebSockets open now.
    pub fn ws_open(&self) -> i64 {
        self.ws_connections.get()
    }

    pub fn feed_made(&self) {
        self.ws_feeds.inc();
    }

    pub fn feed_dropped(&self) {
        self.ws_feeds.dec();
    }

    /// An event of `kind` written to a socket `took` after its publication.
    pub fn ws_event_sent(&self, kind: &'static str, took: Duration) {
        self.ws_events.get_or_create(&KindLabels { kind }).inc();
        self.ws_delivery.observe(took.as_secs_f64());
    }

    pub fn ws_send_queue_full(&self, events: u64) {
        self.ws_queue_full.inc_by(events);
    }

    pub fn ws_closed(&self, reason: &'static str) {
        self.ws_closes.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn http_request(&self, route: &'static str, status: u16, took: Duration) {
        self.http
            .get_or_create(&HttpLabels { route, status })
            .observe(took.as_secs_f64());
    }

    pub fn storage_call(
        &self,
        backend: &'static str,
        capability: &'static str,
        operation: &'static str,
        took: Duration,
    ) {
        self.storage
            .get_or_create(&StorageLabels {
                backend,
                capability,
                operation,
            })
            .observe(took.as_secs_f64());
    }

    /// Runs a plugin call, counting its time and, if it faulted, its
    /// fault.
    pub async fn time_plugin_call<T>(
        &self,
        game: &str,
        call: &'static str,
        future: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        let started = std::time::Instant::now();
        let result = future.await;
        self.plugin_call(game, call, started.elapsed());
        if let Err(CallError::Fault(fault)) = &result {
            let kind = match fault {
                Fault::TimedOut { .. } | Fault::Stalled { .. } => "timeout",
                Fault::OutOfMemory { .. } => "out_of_memory",
                Fault::Trapped(_) => "trap",
                Fault::Instantiate(_) => "instantiate",
            };
            self.plugin_fault(game, kind);
        }
        result
    }

    pub fn plugin_call(&self, game: &str, call: &'static str, took: Duration) {
        self.plugin
            .get_or_create(&PluginLabels {
                game: game.to_owned(),
                call,
            })
            .observe(took.as_secs_f64());
    }

    pub fn plugin_fault(&self, game: &str, fault: &'static str) {
        self.faults
            .get_or_create(&FaultLabels {
                game: game.to_owned(),
                fault,
            })
            .inc();
    }

    /// The text a scrape gets, with the scrape-time series refreshed.
    pub fn render(
        &self,
        live_sessions: usize,
        instances: usize,
        resilience: Option<&Resilience>,
    ) -> String {
        self.live_sessions.set(live_sessions as i64);
        self.instances.set(instances as i64);
        if let Some(resilience) = resilience {
            let mut seen = self.replayed_seen.lock().expect("metrics poisoned");
            for health in resilience.health() {
                let capability = CapabilityLabels {
                    capability: health.capability,
                };
                let state = match health.breaker {
                    BreakerState::Closed => 0,
                    BreakerState::HalfOpen => 1,
                    BreakerState::Open => 2,
                };
                self.breaker
                    .get_or_create(&BreakerLabels {
                        capability: health.capability,
                        backend: health.backend,
                    })
                    .set(state);
                self.outbox_ops
                    .get_or_create(&capability)
                    .set(health.queued_ops as i64);
                self.outbox_bytes
                    .get_or_create(&capability)
                    .set(health.queued_bytes as i64);
                self.outbox_oldest
                    .get_or_create(&capability)
                    .set(health.oldest_queued_ms.unwrap_or(0) as f64 / 1000.0);
                self.dead_letters
                    .get_or_create(&capability)
                    .set(health.dead_letters as i64);
                let before = match seen.iter_mut().find(|(c, _)| *c == health.capability) {
                    Some((_, before)) => std::mem::replace(before, health.replayed_total),
                    None => {
                        seen.push((health.capability, health.replayed_total));
                        0
                    }
                };
                self.replayed
                    .get_or_create(&capability)
                    .inc_by(health.replayed_total.saturating_sub(before));
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

impl crate::storage::measured::Observe for Metrics {
    fn storage_call(
        &self,
        backend: &'static str,
        capability: &'static str,
        operation: &'static str,
        took: Duration,
    ) {
        Metrics::storage_call(self, backend, capability, operation, took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_named_and_labelled() {
        let metrics = Metrics::new();
        metrics.http_request("actions", 200, Duration::from_micros(300));
        metrics.storage_call("redis", "hot", "set", Duration::from_micros(40));
        metrics.plugin_call("hokm", "act", Duration::from_micros(3));
        metrics.plugin_fault("hokm", "timeout");
        let text = metrics.render(7, 5, None);
        for expected in [
            r#"hoard_http_request_duration_seconds_count{route="actions",status="200"} 1"#,
            r#"hoard_storage_call_duration_seconds_count{backend="redis",capability="hot",operation="set"} 1"#,
            r#"hoard_plugin_call_duration_seconds_count{game="hokm",call="act"} 1"#,
            r#"hoard_plugin_faults_total{game="hokm",fault="timeout"} 1"#,
            "hoard_live_sessions 7",
            "hoard_plugin_instances 5",
        ] {
            assert!(text.contains(expected), "{expected} in\n{text}");
        }
    }

    #[test]
    fn the_grafana_dashboard_charts_only_series_that_exist() {
        // Families without a child are not written out, so give each one.
        let metrics = Metrics::new();
        metrics.http_request("actions", 200, Duration::from_micros(300));
        metrics.storage_call("redis", "hot", "set", Duration::from_micros(40));
        metrics.plugin_call("hokm", "act", Duration::from_micros(3));
        metrics.plugin_fault("hokm", "timeout");
        let hot = CapabilityLabels { capability: "hot" };
        metrics
            .breaker
            .get_or_create(&BreakerLabels {
                capability: "hot",
                backend: "redis",
            })
            .set(0);
        metrics.outbox_ops.get_or_create(&hot).set(0);
        metrics.outbox_bytes.get_or_create(&hot).set(0);
        metrics.outbox_oldest.get_or_create(&hot).set(0.0);
        metrics.replayed.get_or_create(&hot).inc_by(0);
        metrics.dead_letters.get_or_create(&hot).set(0);
        let text = metrics.render(0, 0, None);
        let dashboard = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../configs/grafana-dashboard.json"),
        )
        .unwrap();
        let mut charted = 0;
        for (at, _) in dashboard.match_indices("hoard_") {
            let name: String = dashboard[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            let family = ["_bucket", "_count", "_sum", "_total"]
                .iter()
                .fold(name.as_str(), |name, suffix| {
                    name.strip_suffix(suffix).unwrap_or(name)
                });
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "the dashboard charts {name}, which hoard does not export"
            );
            charted += 1;
        }
        assert!(charted >= 10);
    }
}
