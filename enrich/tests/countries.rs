//! Addresses with their countries, looked up in a real MaxMind-format
//! database: IPtoASN's country file (public domain), which
//! `scripts/prerequisites.sh` (`ensure_geoip_db`) fetches and names in
//! `GEOIP_TEST_DATABASE`. Without it the test fails: run the script.

use analytics_enrich::Geo;
use std::net::IpAddr;
use std::path::PathBuf;

fn database() -> PathBuf {
    PathBuf::from(testkit::geoip_database())
}

#[test]
fn addresses_to_countries() {
    let geo = Geo::open(Some(&database()), false).unwrap_or_else(|e| panic!("{e}"));
    let cases = [
        ("8.8.8.8", "US"),                   // Google Public DNS
        ("193.0.6.139", "NL"),               // RIPE NCC, Amsterdam
        ("200.160.2.3", "BR"),               // NIC.br
        ("202.12.29.205", "AU"),             // APNIC, Brisbane
        ("2001:67c:2e8:22::c100:68b", "NL"), // RIPE NCC over IPv6
        ("::ffff:193.0.6.139", "NL"),        // an IPv4-mapped address
        ("10.1.2.3", ""),                    // private: no country
        ("127.0.0.1", ""),
    ];
    let mut wrong = Vec::new();
    for (addr, want) in cases {
        let ip: IpAddr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
        let got = geo.country(ip, None);
        if got != want {
            wrong.push(format!("{addr}: got {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_cdn_header_fills_in_only_when_trusted() {
    let trusted = Geo::open(Some(&database()), true).unwrap_or_else(|e| panic!("{e}"));
    let private: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    assert_eq!(trusted.country(private, Some("fr")), "FR");
    assert_eq!(trusted.country(private, Some("XX")), "", "XX is Cloudflare's unknown");
    assert_eq!(trusted.country(private, Some("T1")), "", "T1 is Tor, not a country");
    let untrusted = Geo::open(Some(&database()), false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(untrusted.country(private, Some("fr")), "");
    // The database answers first.
    let public: IpAddr = "8.8.8.8".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    assert_eq!(trusted.country(public, Some("fr")), "US");
}
