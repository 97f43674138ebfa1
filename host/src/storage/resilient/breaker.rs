//! A circuit breaker per backend: closed (calls go through), open (calls
//! are not tried; the replayer probes the backend now and then) and
//! half-open (a probe answered; replay runs, and the first batch that lands
//! closes it).
//!
//! It opens after `failure_threshold` failures in a row (a timeout counts:
//! its outcome is unknown). While open, probes back off exponentially from
//! `probe_interval_ms` to `probe_interval_max_ms`, with full jitter, so
//! many hosts do not probe a recovering server in step.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakerState {
    Closed,
    HalfOpen,
    Open,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half-open",
            BreakerState::Open => "open",
        }
    }
}

/// The breaker's settings.
#[derive(Clone, Debug)]
pub(super) struct BreakerConfig {
    pub failure_threshold: u32,
    pub probe_interval: Duration,
    pub probe_interval_max: Duration,
}

struct Inner {
    state: BreakerState,
    /// Failures in a row while closed.
    failures: u32,
    /// Failed probes in a row while open: the backoff's exponent.
    probes_failed: u32,
    /// When the next probe may go.
    next_probe: Instant,
    /// Why it last opened, for operators.
    reason: Option<String>,
}

pub(super) struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub(super) fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                probes_failed: 0,
                next_probe: Instant::now(),
                reason: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("breaker poisoned")
    }

    pub(super) fn state(&self) -> BreakerState {
        self.lock().state
    }

    /// Why the breaker last opened, while it is not closed.
    pub(super) fn reason(&self) -> Option<String> {
        let inner = self.lock();
        (inner.state != BreakerState::Closed)
            .then(|| inner.reason.clone())
            .flatten()
    }

    /// Whether calls should try the backend.
    pub(super) fn allows_calls(&self) -> bool {
        self.state() != BreakerState::Open
    }

    pub(super) fn succeeded(&self) {
        let mut inner = self.lock();
        inner.failures = 0;
        if inner.state == BreakerState::HalfOpen {
            inner.state = BreakerState::Closed;
            inner.probes_failed = 0;
            inner.reason = None;
            tracing::info!("storage backend is back: breaker closed");
        }
    }

    /// A call failed (or timed out) with `reason`.
    pub(super) fn failed(&self, reason: &str) {
        let mut inner = self.lock();
        inner.failures = inner.failures.saturating_add(1);
        let opens = match inner.state {
            BreakerState::Closed => inner.failures >= self.config.failure_threshold,
            // The trial after a probe failed: back to waiting.
            BreakerState::HalfOpen => true,
            BreakerState::Open => false,
        };
        if opens {
            inner.state = BreakerState::Open;
            inner.reason = Some(reason.to_owned());
            inner.next_probe = Instant::now() + self.backoff(inner.probes_failed);
            tracing::warn!(reason, "storage backend failing: breaker open");
        }
    }

    /// How long until a probe may go (zero if now, or if not open).
    pub(super) fn until_probe(&self) -> Duration {
        let inner = self.lock();
        match inner.state {
            BreakerState::Open => inner.next_probe.saturating_duration_since(Instant::now()),
            _ => Duration::ZERO,
        }
    }

    /// The outcome of a probe while open.
    pub(super) fn probed(&self, answered: bool) {
        let mut inner = self.lock();
        if inner.state != BreakerState::Open {
            return;
        }
        if answered {
            inner.state = BreakerState::HalfOpen;
            inner.failures = 0;
        } else {
            inner.probes_failed = inner.probes_failed.saturating_add(1);
            inner.next_probe = Instant::now() + self.backoff(inner.probes_failed);
        }
    }

    /// Exponential backoff with full jitter: a random wait up to
    /// `probe_interval * 2^n`, capped at `probe_interval_max`.
    fn backoff(&self, n: u32) -> Duration {
        let ceiling = self
            .config
            .probe_interval
            .saturating_mul(1 << n.min(16))
            .min(self.config.probe_interval_max);
        let ceiling_us = u64::try_from(ceiling.as_micros())
            .unwrap_or(u64::MAX)
            .max(10);
        // Between a tenth of the ceiling (so probes never come back to back)
        // and the ceiling.
        let floor_us = ceiling_us / 10;
        Duration::from_micros(floor_us + rand::random::<u64>() % (ceiling_us - floor_us + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failure_threshold: 3,
            probe_interval: Duration::from_millis(100),
            probe_interval_max: Duration::from_secs(2),
        })
    }

    #[test]
    fn opens_after_the_threshold_and_closes_after_a_probe_and_a_success() {
        let breaker = breaker();
        breaker.failed("refused");
        breaker.failed("refused");
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.succeeded();
        breaker.failed("refused");
        breaker.failed("refused");
        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "a success resets the count"
        );
        breaker.failed("timed out");
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.reason().as_deref(), Some("timed out"));
        assert!(!breaker.allows_calls());
        assert!(breaker.until_probe() <= Duration::from_millis(100));
        breaker.probed(false);
        assert_eq!(breaker.state(), BreakerState::Open);
        breaker.probed(true);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.allows_calls());
        breaker.succeeded();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.reason(), None);
    }

    #[test]
    fn a_failed_trial_reopens_and_backoff_stays_under_its_cap() {
        let breaker = breaker();
        for _ in 0..3 {
            breaker.failed("x");
        }
        breaker.probed(true);
        breaker.failed("still down");
        assert_eq!(breaker.state(), BreakerState::Open);
        for _ in 0..40 {
            breaker.probed(false);
            assert!(breaker.until_probe() <= Duration::from_secs(2));
        }
    }
}
