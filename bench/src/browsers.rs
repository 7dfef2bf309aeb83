//! Browser-like requests for `/api/event`, as a tracker sends them from a
//! site's visitors: Plausible's payload as `text/plain`, a real browser's
//! User-Agent (a few thousand distinct ones, Zipf-distributed like a
//! site's audience), the visitor's address in `X-Forwarded-For` (the api
//! trusts the load generator as its proxy), a referrer (search engines,
//! social sites, blogs, or none) and now and then a campaign URL.

use crate::workload::{Body, Zipf};
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use rand::prelude::*;
use rand::rngs::StdRng;
use std::net::Ipv4Addr;

/// Agent templates: `{v}` a major version, `{a}` an OS version, `{m}` a
/// phone or tablet model.
const AGENTS: [&str; 10] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android {a}; {m}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS {a}_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{a}.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS {a}_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{a}.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{a}.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android {a}; {m}) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/{a}.0 Chrome/{v}.0.0.0 Mobile Safari/537.36",
];
const MODELS: [&str; 8] = [
    "Pixel 8", "Pixel 7a", "SM-S918B", "SM-A546B", "M2101K6G", "CPH2449", "SM-X200", "K",
];
const REFERRERS: [&str; 10] = [
    "https://www.google.com/",
    "https://www.google.de/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://news.ycombinator.com/item?id=42",
    "https://t.co/abc",
    "https://l.facebook.com/l.php",
    "https://www.reddit.com/r/programming/",
    "https://github.com/org/repo",
    "https://blog.example.net/post",
];
const CAMPAIGNS: [&str; 4] = [
    "utm_source=newsletter&utm_medium=email&utm_campaign=december",
    "utm_source=google&utm_medium=cpc&utm_campaign=brand",
    "utm_source=twitter&utm_medium=social",
    "ref=producthunt",
];

/// Distinct agents the pool draws from.
pub const DISTINCT_AGENTS: usize = 2_000;
/// Distinct visitors (address, agent) the pool draws from.
const VISITORS: usize = 50_000;

/// One agent string of the catalogue.
fn agent(i: usize) -> String {
    let template = AGENTS[i % AGENTS.len()];
    let k = i / AGENTS.len();
    template
        .replace("{v}", &(100 + k % 32).to_string())
        .replace("{a}", &(12 + k % 7).to_string())
        .replace("{m}", MODELS[k % MODELS.len()])
}

/// A public IPv4 address (no private, loopback, link-local or multicast).
fn public_addr(rng: &mut StdRng) -> Ipv4Addr {
    loop {
        let a = Ipv4Addr::from(rng.random::<u32>());
        let [first, second, ..] = a.octets();
        let reserved = a.is_private()
            || a.is_loopback()
            || a.is_link_local()
            || a.is_multicast()
            || a.is_unspecified()
            || first == 0
            || first >= 240
            || (first == 100 && (64..128).contains(&second));
        if !reserved {
            return a;
        }
    }
}

/// `count` requests over `sites` sites (`site<i>.example`).
pub fn browser_pool(seed: u64, count: usize, sites: usize) -> anyhow::Result<Vec<Body>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let agent_dist = Zipf::new(DISTINCT_AGENTS, 1.0);
    let visitors: Vec<(Ipv4Addr, usize)> = (0..VISITORS)
        .map(|_| (public_addr(&mut rng), agent_dist.sample(&mut rng)))
        .collect();
    let visitor_dist = Zipf::new(VISITORS, 1.0);
    let path_dist = Zipf::new(200, 1.0);
    let agents: Vec<HeaderValue> = (0..DISTINCT_AGENTS)
        .map(|i| HeaderValue::from_str(&agent(i)))
        .collect::<Result<_, _>>()?;
    let forwarded = HeaderName::from_static("x-forwarded-for");
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let (addr, agent) = visitors[visitor_dist.sample(&mut rng)];
        let site = format!("site{}.example", rng.random_range(0..sites.max(1)));
        let mut url = format!("https://{site}/p/{}", path_dist.sample(&mut rng));
        if rng.random_bool(0.15) {
            url.push('?');
            url.push_str(CAMPAIGNS[rng.random_range(0..CAMPAIGNS.len())]);
        }
        let referrer = rng
            .random_bool(0.6)
            .then(|| REFERRERS[rng.random_range(0..REFERRERS.len())]);
        let body = if rng.random_bool(0.9) {
            serde_json::json!({"n": "pageview", "u": url, "d": site, "r": referrer})
        } else {
            serde_json::json!({"n": "Signup", "u": url, "d": site, "r": referrer, "p": {"plan": "pro"}})
        };
        out.push(Body {
            bytes: Bytes::from(serde_json::to_vec(&body)?),
            events: 1,
            headers: vec![
                (CONTENT_TYPE, HeaderValue::from_static("text/plain")),
                (USER_AGENT, agents[agent].clone()),
                (forwarded.clone(), HeaderValue::from_str(&addr.to_string())?),
            ],
        });
    }
    Ok(out)
}
