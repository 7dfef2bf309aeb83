//! What the test suites share. A service a test needs and does not find
//! makes the test fail, never skip. `TEST_DATABASE_ADMIN_URL` and
//! `TEST_KAFKA_BROKERS` point at other PostgreSQL and broker instances.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

pub mod check;
pub mod db;
pub mod inproc;
pub mod kafka;
pub mod load;
pub mod outage;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod rollups;
pub mod workload;

/// The MaxMind-format country database the tests look addresses up in:
/// `GEOIP_TEST_DATABASE`, else where `scripts/prerequisites.sh`
/// (`ensure_geoip_db`) puts it. Missing, the test fails.
pub fn geoip_database() -> String {
    let path = std::env::var_os("GEOIP_TEST_DATABASE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")));
            cache.map(|c| c.join("analytics/geoip/iptoasn-country.mmdb"))
        });
    match path {
        Some(p) if p.exists() => p.display().to_string(),
        other => panic!("no country database at {other:?}: run `source scripts/prerequisites.sh && ensure_geoip_db`"),
    }
}
