//! The cookieless visitor: SipHash-2-4 keyed by the day's random salt over
//! the site, the event's day, the client's address and its User-Agent. The
//! same person on the same site is one visitor for a UTC day; nothing links
//! them across days (the salt is gone after two), sites, addresses or
//! browsers, and neither the address nor the agent is kept. The event's
//! own day is hashed too, so that an event dated another day (a late or
//! client-dated one) never shares an id with that day's: no id is on two
//! days, and a range's distinct visitors are the sum of its days'.

use chrono::{Datelike, NaiveDate};
use siphasher::sip::SipHasher24;
use std::hash::Hasher;
use std::net::IpAddr;

/// A day's salt: SipHash's 128-bit key.
pub type Salt = [u8; 16];

pub fn visitor_id(salt: &Salt, site: &str, day: NaiveDate, addr: IpAddr, user_agent: &str) -> i64 {
    let mut h = SipHasher24::new_with_key(salt);
    // Lengths first: ("ab", "c") and ("a", "bc") must not collide.
    h.write_usize(site.len());
    h.write(site.as_bytes());
    h.write_i32(day.num_days_from_ce());
    match addr {
        IpAddr::V4(v4) => h.write(&v4.octets()),
        IpAddr::V6(v6) => h.write(&v6.octets()),
    }
    h.write_usize(user_agent.len());
    h.write(user_agent.as_bytes());
    // Reinterpreted as the stores' signed 64-bit column; 0 means "none".
    match h.finish() as i64 {
        0 => 1,
        id => id,
    }
}
