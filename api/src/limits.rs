//! Rate limits: requests per client address (every public route but the
//! probes) and events per site (ingest), each a token bucket (`governor`'s
//! GCRA) with a steady rate and a burst. Beyond either, 429 with
//! `Retry-After`, counted in `analytics_rate_limited_total{scope}`. The
//! client's address is `client::TrustedProxies`'s, so a client behind a
//! trusted proxy is limited as itself and a client elsewhere cannot claim
//! another's address.

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// A steady rate per second and a burst; `None` when the rate is 0 (off).
fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// One limit: a bucket per key.
struct Limit<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
}

/// The wait answered for a request larger than a bucket can ever hold.
const OVER_BURST_WAIT: Duration = Duration::from_secs(1);

impl<K: Hash + Eq + Clone> Limit<K> {
    fn new(per_second: u32, burst: u32) -> Option<Self> {
        Some(Self {
            limiter: RateLimiter::keyed(quota(per_second, burst)?),
        })
    }

    /// Takes `n` tokens for `key`, or says how long until they are there.
    /// More than the burst can ever hold is refused outright.
    fn take(&self, key: &K, n: u32) -> Result<(), Duration> {
        let Some(n) = NonZeroU32::new(n) else { return Ok(()) };
        match self.limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(DefaultClock::default().now())),
            Err(_) => Err(OVER_BURST_WAIT),
        }
    }

    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The limits of one api process.
pub struct RateLimits {
    per_address: Option<Limit<IpAddr>>,
    per_site: Option<Limit<String>>,
}

impl RateLimits {
    /// Rates per second and bursts; a rate of 0 turns that limit off.
    pub fn new(address_rate: u32, address_burst: u32, site_rate: u32, site_burst: u32) -> Self {
        Self {
            per_address: Limit::new(address_rate, address_burst),
            per_site: Limit::new(site_rate, site_burst),
        }
    }

    /// One request from `addr`; `Err(wait)` when it is over its limit.
    pub fn request(&self, addr: IpAddr) -> Result<(), Duration> {
        self.per_address.as_ref().map_or(Ok(()), |l| l.take(&addr, 1))
    }

    /// `n` events for `site`; `Err(wait)` when the site is over its limit.
    pub fn events(&self, site: &str, n: u32) -> Result<(), Duration> {
        self.per_site.as_ref().map_or(Ok(()), |l| l.take(&site.to_string(), n))
    }

    /// Drops the buckets of keys not seen lately (they are full again), so
    /// that memory follows the active clients and sites, not all ever seen.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_address {
            l.forget_idle();
        }
        if let Some(l) = &self.per_site {
            l.forget_idle();
        }
    }
}

/// Whole seconds to wait, at least 1: the `Retry-After` value.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_then_off() {
        let l = RateLimits::new(1, 3, 0, 0);
        let a = IpAddr::from([1, 2, 3, 4]);
        let b = IpAddr::from([5, 6, 7, 8]);
        assert!((0..3).all(|_| l.request(a).is_ok()));
        let wait = l.request(a).err();
        assert!(wait.is_some_and(|w| w <= Duration::from_secs(1)), "{wait:?}");
        assert!(l.request(b).is_ok(), "another address has its own bucket");
        assert!(l.events("s", 1_000_000).is_ok(), "a rate of 0 is off");
    }

    #[test]
    fn events_take_one_token_each() {
        let l = RateLimits::new(0, 0, 10, 100);
        assert!(l.events("s", 100).is_ok());
        assert!(l.events("s", 1).is_err());
        assert!(l.events("t", 101).is_err(), "more than the burst is refused");
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
