//! A client address to its country (ISO 3166-1 alpha-2): from a
//! MaxMind-format database file when one is configured (GeoLite2 or
//! GeoIP2 Country, DB-IP's or IPtoASN's country files), else from a
//! trusted CDN's country header when enabled (`CF-IPCountry`).

use maxminddb::Reader;
use std::net::IpAddr;
use std::path::Path;

pub struct Geo {
    reader: Option<Reader<Vec<u8>>>,
    /// Whether the `CF-IPCountry` header is believed (only behind that CDN).
    trust_cdn_header: bool,
}

/// The header Cloudflare (and others following it) sets.
pub const CDN_COUNTRY_HEADER: &str = "cf-ipcountry";

#[derive(Debug, thiserror::Error)]
#[error("cannot open the country database {path}: {source}")]
pub struct GeoError {
    path: String,
    source: maxminddb::MaxMindDbError,
}

impl Geo {
    pub fn none() -> Self {
        Self {
            reader: None,
            trust_cdn_header: false,
        }
    }

    /// `database`: a `.mmdb` file, read whole into memory once.
    pub fn open(database: Option<&Path>, trust_cdn_header: bool) -> Result<Self, GeoError> {
        let reader = database
            .map(|path| {
                Reader::open_readfile(path).map_err(|source| GeoError {
                    path: path.display().to_string(),
                    source,
                })
            })
            .transpose()?;
        Ok(Self {
            reader,
            trust_cdn_header,
        })
    }

    /// The country of `addr`, or of the CDN's header when trusted and the
    /// database has no answer; empty when unknown (private addresses, no
    /// database).
    pub fn country(&self, addr: IpAddr, cdn_header: Option<&str>) -> String {
        if let Some(code) = self.lookup(addr) {
            return code;
        }
        match cdn_header {
            Some(h) if self.trust_cdn_header => iso_code(h).unwrap_or_default(),
            _ => String::new(),
        }
    }

    fn lookup(&self, addr: IpAddr) -> Option<String> {
        // `::ffff:a.b.c.d` is the IPv4 address: the files key it that way.
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        let found = self.reader.as_ref()?.lookup(addr).ok()?;
        // GeoIP2 and DB-IP: country.iso_code; IPtoASN-style files: country_code.
        let paths: [&[maxminddb::PathElement]; 3] = [
            &maxminddb::path!["country", "iso_code"],
            &maxminddb::path!["country_code"],
            &maxminddb::path!["registered_country", "iso_code"],
        ];
        paths
            .iter()
            .find_map(|p| found.decode_path::<&str>(p).ok().flatten())
            .and_then(iso_code)
    }
}

/// Two ASCII letters, upper-cased; CDNs' `XX` (unknown) and `T1` (Tor) are
/// not countries.
fn iso_code(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    let letters = code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase());
    (letters && code != "XX").then_some(code)
}
