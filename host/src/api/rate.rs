//! Rate limits per client on the calls that make the host keep something
//! or work hard: creating a session, joining one, registering an account,
//! logging in (Argon2 takes tens of milliseconds by design) and opening a
//! WebSocket (it renders a view). Everything else a client does is bounded
//! by connection limits and timeouts. Logins are also limited per account,
//! in `accounts`, and actions sent over sockets per player.
//!
//! Token buckets from `governor`, one per client (see
//! [`client_of`](super::connection::client_of)); a refused call is told how
//! long to wait. Clients whose buckets have refilled are forgotten every
//! minute, so memory follows the clients active in the last minute or so.

use crate::config::{Config, RateLimit};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// What a client may do how often: a bucket per limited call.
pub(super) struct RateLimits {
    limiters: [DefaultKeyedRateLimiter<IpAddr>; 5],
    /// Actions over sockets, per (session, player).
    actions: DefaultKeyedRateLimiter<(String, String)>,
    clock: DefaultClock,
}

/// Which limited call a client made.
#[derive(Clone, Copy, Debug)]
pub(super) enum Limited {
    Create = 0,
    Join = 1,
    Register = 2,
    Login = 3,
    Socket = 4,
}

fn quota(limit: &RateLimit) -> Quota {
    // `Config::validate` refuses zeroes; `max(1)` keeps this total anyway.
    let per_minute = NonZeroU32::new(limit.per_minute.max(1)).expect("at least 1");
    let burst = NonZeroU32::new(limit.burst.max(1)).expect("at least 1");
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl RateLimits {
    pub(super) fn new(config: &Config) -> Self {
        let keyed = |limit| DefaultKeyedRateLimiter::keyed(quota(limit));
        let server = &config.server;
        RateLimits {
            limiters: [
                keyed(&server.creates_per_client),
                keyed(&server.joins_per_client),
                keyed(&server.registrations_per_client),
                keyed(&server.logins_per_client),
                keyed(&config.realtime.sockets_per_client),
            ],
            actions: DefaultKeyedRateLimiter::keyed(quota(&config.realtime.actions_per_player)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one action from the bucket of `player` in `session`, or says
    /// how long until one is free.
    pub(super) fn check_action(&self, session: &str, player: &str) -> Result<(), Duration> {
        self.actions
            .check_key(&(session.to_owned(), player.to_owned()))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
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
        self.actions.retain_recent();
        self.actions.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_with_a_wait_and_other_clients_unaffected() {
        let mut config = Config::default();
        config.server.creates_per_client = RateLimit {
            per_minute: 6,
            burst: 3,
        };
        config.server.joins_per_client = RateLimit {
            per_minute: 60,
            burst: 1,
        };
        let limits = RateLimits::new(&config);
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

    #[test]
    fn actions_are_limited_per_player() {
        let mut config = Config::default();
        config.realtime.actions_per_player = RateLimit {
            per_minute: 60,
            burst: 2,
        };
        let limits = RateLimits::new(&config);
        assert!(limits.check_action("s", "ali").is_ok());
        assert!(limits.check_action("s", "ali").is_ok());
        let wait = limits.check_action("s", "ali").unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limits.check_action("s", "bo").is_ok(), "bo has his own");
        assert!(
            limits.check_action("t", "ali").is_ok(),
            "so has another session's ali"
        );
    }
}
