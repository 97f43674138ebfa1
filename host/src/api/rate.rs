//! Rate limits per client on the calls that make the host keep something
//! or work hard: creating a session, joining one, registering an account
//! and logging in (Argon2 takes tens of milliseconds by design). Everything
//! else a client does is bounded by connection limits and timeouts.
//! Logins are also limited per account, in `accounts`.
//!
//! Token buckets from `governor`, one per client (see
//! [`client_of`](super::connection::client_of)); a refused call is told how
//! long to wait. Clients whose buckets have refilled are forgotten every
//! minute, so memory follows the clients active in the last minute or so.

use crate::config::{RateLimit, ServerConfig};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// What a client may do how often: a bucket per limited call.
pub(super) struct RateLimits {
    limiters: [DefaultKeyedRateLimiter<IpAddr>; 4],
    clock: DefaultClock,
}

/// Which limited call a client made.
#[derive(Clone, Copy, Debug)]
pub(super) enum Limited {
    Create = 0,
    Join = 1,
    Register = 2,
    Login = 3,
}

fn quota(limit: &RateLimit) -> Quota {
    // `Config::validate` refuses zeroes; `max(1)` keeps this total anyway.
    let per_minute = NonZeroU32::new(limit.per_minute.max(1)).expect("at least 1");
    let burst = NonZeroU32::new(limit.burst.max(1)).expect("at least 1");
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl RateLimits {
    pub(super) fn new(config: &ServerConfig) -> Self {
        let keyed = |limit| DefaultKeyedRateLimiter::keyed(quota(limit));
        RateLimits {
            limiters: [
                keyed(&config.creates_per_client),
                keyed(&config.joins_per_client),
                keyed(&config.registrations_per_client),
                keyed(&config.logins_per_client),
            ],
            clock: DefaultClock::default(),
        }
    }

    /// Takes one call from `client`'s bucket, or says how long until one is
    /// free.
    pub(super) fn check(&self, call: Limited, client: IpAddr) -> Result<(), Duration> {
        self.limiters[call as usize]
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets clients whose buckets are full again.
    pub(super) fn forget_idle(&self) {
        for limiter in &self.limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_with_a_wait_and_other_clients_unaffected() {
        let limits = RateLimits::new(&ServerConfig {
            creates_per_client: RateLimit {
                per_minute: 6,
                burst: 3,
            },
            joins_per_client: RateLimit {
                per_minute: 60,
                burst: 1,
            },
            ..ServerConfig::default()
        });
        let client: IpAddr = "10.1.1.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check(Limited::Create, client).is_ok());
        }
        let wait = limits.check(Limited::Create, client).unwrap_err();
        assert!(
            wait > Duration::from_secs(5) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert!(
            limits
                .check(Limited::Create, "10.1.1.2".parse().unwrap())
                .is_ok()
        );
        assert!(
            limits.check(Limited::Join, client).is_ok(),
            "joins have their own bucket"
        );
        limits.forget_idle();
        assert!(
            limits.check(Limited::Create, client).is_err(),
            "a client in debt is remembered"
        );
    }
}
