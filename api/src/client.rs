//! Who a request comes from: the peer's address, unless the peer is a
//! trusted proxy (`TRUSTED_PROXIES`, CIDRs; default none), in which case the
//! address the proxy reports in `Forwarded` (RFC 7239) or `X-Forwarded-For`.
//! Every feature that needs the client's address (rate limits; later the
//! cookieless visitor and its country) asks here, so they all follow one
//! rule and no client can claim an address by sending a header.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// A comma list of CIDRs (or single addresses); empty trusts nobody.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = IpNet::from_str(part)
                .or_else(|_| IpAddr::from_str(part).map(IpNet::from))
                .map_err(|_| format!("`{part}` is not a CIDR such as 10.0.0.0/8 or an address"))?;
            nets.push(net);
        }
        Ok(Self(nets))
    }

    pub fn trusts(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|n| n.contains(&addr))
    }

    /// The client's address: walking the chain of addresses from the peer
    /// back towards the client (`X-Forwarded-For` is appended to by each
    /// proxy, so it is read right to left), the first one that is not a
    /// trusted proxy. A peer that is not trusted is the client, whatever it
    /// sends.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let mut addr = canonical(peer.ip());
        if !self.trusts(addr) {
            return addr;
        }
        for hop in forwarded_chain(headers).into_iter().rev() {
            addr = hop;
            if !self.trusts(hop) {
                break;
            }
        }
        addr
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`) as the IPv4 address.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// The addresses the proxies reported, client first: `Forwarded`'s `for=`
/// when present, else `X-Forwarded-For`. An unparseable entry ends the
/// chain there (nothing before it can be trusted).
fn forwarded_chain(headers: &HeaderMap) -> Vec<IpAddr> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let entries: Vec<String> = if forwarded.is_empty() {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .collect()
    } else {
        forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| v.trim().trim_matches('"').to_string())
                })
            })
            .collect()
    };
    let mut chain = Vec::with_capacity(entries.len());
    for entry in entries {
        match parse_node(&entry) {
            Some(addr) => chain.push(canonical(addr)),
            None => chain.clear(),
        }
    }
    chain
}

/// `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:80`, `2001:db8::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(addr) = IpAddr::from_str(s) {
        return Some(addr);
    }
    if let Ok(sock) = SocketAddr::from_str(s) {
        return Some(sock.ip());
    }
    let inner = s.strip_prefix('[')?.split(']').next()?;
    IpAddr::from_str(inner).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let (Ok(k), Ok(v)) = (
                axum::http::HeaderName::from_str(k),
                axum::http::HeaderValue::from_str(v),
            ) {
                h.append(k, v);
            }
        }
        h
    }

    fn peer(s: &str) -> SocketAddr {
        SocketAddr::from_str(s).unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    fn ip(s: &str) -> IpAddr {
        IpAddr::from_str(s).unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_send() {
        let none = TrustedProxies::default();
        let h = headers(&[("x-forwarded-for", "9.9.9.9"), ("forwarded", "for=8.8.8.8")]);
        assert_eq!(none.client(peer("1.2.3.4:5"), &h), ip("1.2.3.4"));
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap_or_default();
        assert_eq!(trusted.client(peer("1.2.3.4:5"), &h), ip("1.2.3.4"));
    }

    #[test]
    fn a_trusted_chain_is_read_right_to_left() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1").unwrap_or_default();
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 7.7.7.7, 10.1.1.1")]);
        // 10.1.1.1 is a trusted hop; 7.7.7.7 is the first untrusted one.
        assert_eq!(t.client(peer("10.0.0.5:1"), &h), ip("7.7.7.7"));
        let h = headers(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "7.7.7.7")]);
        assert_eq!(t.client(peer("[::ffff:192.168.1.1]:1"), &h), ip("7.7.7.7"));
        let h = headers(&[("forwarded", r#"for="[2001:db8::1]:4711";proto=https, for=10.2.2.2"#)]);
        assert_eq!(t.client(peer("10.0.0.5:1"), &h), ip("2001:db8::1"));
        // Every hop trusted: the farthest one is the client.
        let h = headers(&[("x-forwarded-for", "10.9.9.9")]);
        assert_eq!(t.client(peer("10.0.0.5:1"), &h), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(t.client(peer("10.0.0.5:1"), &HeaderMap::new()), ip("10.0.0.5"));
        // Garbage in the chain: nothing before it is believed.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, bogus, 7.7.7.7")]);
        assert_eq!(t.client(peer("10.0.0.5:1"), &h), ip("7.7.7.7"));
    }

    #[test]
    fn bad_cidrs_are_named() {
        assert!(TrustedProxies::parse("").is_ok_and(|t| t.0.is_empty()));
        assert!(TrustedProxies::parse("10.0.0.0/8,::1").is_ok_and(|t| t.0.len() == 2));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err_and(|e| e.contains("10.0.0.0/33")));
    }
}
