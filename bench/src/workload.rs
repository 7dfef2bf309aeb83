//! The realistic event mix: several sites (Zipf), Zipf-distributed paths and
//! users per site, a page-view-heavy event-type mix and optional referrers.
//! Everything is drawn from a seeded RNG, so a run is reproducible.
//!
//! Request bodies are serialised ahead of the run (`body_pool`), so that
//! generating load costs nothing while it is measured.

use bytes::Bytes;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Zipf distribution over ranks `0..n` (rank 0 the most frequent): weight of
/// rank `k` is `1 / (k + 1)^s`. Sampled by binary search over the CDF.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let n = n.max(1);
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for k in 0..n {
            #[allow(clippy::cast_precision_loss)]
            let w = 1.0 / ((k + 1) as f64).powf(s);
            acc += w;
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Self { cdf }
    }

    pub fn len(&self) -> usize {
        self.cdf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cdf.is_empty()
    }

    /// Probability of rank `k`.
    pub fn probability(&self, k: usize) -> f64 {
        match k {
            0 => self.cdf.first().copied().unwrap_or(0.0),
            _ => match (self.cdf.get(k), self.cdf.get(k - 1)) {
                (Some(a), Some(b)) => a - b,
                _ => 0.0,
            },
        }
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// The shape of the generated traffic.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MixConfig {
    pub sites: usize,
    pub site_s: f64,
    pub paths_per_site: usize,
    pub path_s: f64,
    pub users_per_site: usize,
    pub user_s: f64,
    /// Share of events without a user_id (anonymous: not counted as users).
    pub anonymous_share: f64,
    /// Share of events that carry a referrer.
    pub referrer_share: f64,
    pub seed: u64,
}

impl Default for MixConfig {
    fn default() -> Self {
        Self {
            sites: 20,
            // With 20 sites, s = 0.9 gives the largest site 24% of the traffic.
            site_s: 0.9,
            paths_per_site: 500,
            path_s: 1.1,
            users_per_site: 50_000,
            user_s: 1.0,
            anonymous_share: 0.05,
            referrer_share: 0.3,
            seed: 42,
        }
    }
}

/// Event types and their weights (per cent).
pub const EVENT_TYPES: [(&str, u32); 4] = [("page_view", 80), ("click", 12), ("signup", 5), ("purchase", 3)];

const SECTIONS: [&str; 8] = [
    "products", "blog", "docs", "pricing", "account", "search", "about", "help",
];
const REFERRERS: [&str; 6] = [
    "https://www.google.com/",
    "https://news.ycombinator.com/",
    "https://twitter.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://github.com/",
];

pub fn site_name(i: usize) -> String {
    format!("site-{i:02}")
}

pub fn path_name(rank: usize) -> String {
    match rank {
        0 => "/".to_string(),
        r => format!("/{}/{r}", SECTIONS[r % SECTIONS.len()]),
    }
}

/// What a client sends: no event_id (the api assigns a UUIDv7), no timestamp
/// (the api uses its clock).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WireEvent {
    pub site_id: String,
    pub event_type: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
}

/// A seeded source of events in the mix.
pub struct Generator {
    cfg: MixConfig,
    rng: StdRng,
    sites: Zipf,
    paths: Zipf,
    users: Zipf,
    type_cdf: [u32; 4],
    site_names: Vec<String>,
    path_names: Vec<String>,
}

impl Generator {
    pub fn new(cfg: MixConfig) -> Self {
        Self::with_seed(cfg.seed, cfg)
    }

    pub fn with_seed(seed: u64, cfg: MixConfig) -> Self {
        let mut type_cdf = [0u32; 4];
        let mut acc = 0;
        for (i, (_, w)) in EVENT_TYPES.iter().enumerate() {
            acc += w;
            type_cdf[i] = acc;
        }
        Self {
            rng: StdRng::seed_from_u64(seed),
            sites: Zipf::new(cfg.sites, cfg.site_s),
            paths: Zipf::new(cfg.paths_per_site, cfg.path_s),
            users: Zipf::new(cfg.users_per_site, cfg.user_s),
            type_cdf,
            site_names: (0..cfg.sites).map(site_name).collect(),
            path_names: (0..cfg.paths_per_site).map(path_name).collect(),
            cfg,
        }
    }

    pub fn config(&self) -> &MixConfig {
        &self.cfg
    }

    pub fn site_share(&self, site: usize) -> f64 {
        self.sites.probability(site)
    }

    pub fn sample_site(&mut self) -> usize {
        self.sites.sample(&mut self.rng)
    }

    fn event_type(&mut self) -> &'static str {
        let total = self.type_cdf[3];
        let u = self.rng.random_range(0..total);
        let i = self.type_cdf.partition_point(|&c| c <= u).min(3);
        EVENT_TYPES[i].0
    }

    /// One event of the mix for `site` (an index), as a client would send it.
    pub fn wire_event_for(&mut self, site: usize) -> WireEvent {
        let event_type = self.event_type();
        let path = self.path_names[self.paths.sample(&mut self.rng)].clone();
        let user_id = if self.rng.random_bool(self.cfg.anonymous_share) {
            None
        } else {
            Some(format!("u{site}-{}", self.users.sample(&mut self.rng)))
        };
        let referrer = self
            .rng
            .random_bool(self.cfg.referrer_share)
            .then(|| REFERRERS[self.rng.random_range(0..REFERRERS.len())].to_string());
        WireEvent {
            site_id: self.site_names.get(site).cloned().unwrap_or_else(|| site_name(site)),
            event_type: event_type.to_string(),
            path,
            user_id,
            referrer,
        }
    }

    pub fn wire_event(&mut self) -> WireEvent {
        let site = self.sample_site();
        self.wire_event_for(site)
    }

    /// A stored event for `site` at `timestamp`, as the writer receives it.
    pub fn stored_event(
        &mut self,
        site: usize,
        timestamp: DateTime<Utc>,
        received_at: DateTime<Utc>,
    ) -> analytics_core::event::Event {
        let w = self.wire_event_for(site);
        analytics_core::event::Event {
            event_id: uuid::Uuid::now_v7(),
            site_id: w.site_id,
            event_type: w.event_type,
            path: w.path,
            user_id: w.user_id.unwrap_or_default(),
            timestamp,
            received_at,
            referrer: w.referrer,
            props: None,
            context: Default::default(),
        }
    }

    /// A timestamp on one of the `days` days ending with `last_day`: days
    /// uniform but weekends lighter, hours in a diurnal shape (quiet at night
    /// UTC, busy in the afternoon), seconds uniform.
    pub fn timestamp(&mut self, last_day: NaiveDate, days: u32) -> DateTime<Utc> {
        let day = loop {
            let back = self.rng.random_range(0..days.max(1));
            let d = last_day - Duration::days(i64::from(back));
            let weekend = matches!(d.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun);
            if !weekend || self.rng.random_bool(0.75) {
                break d;
            }
        };
        let hour = self.diurnal_hour();
        let secs = self.rng.random_range(0..3600u32);
        let start = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        start + Duration::seconds(i64::from(hour * 3600 + secs))
    }

    fn diurnal_hour(&mut self) -> u32 {
        // Weight 1 + 0.8·sin over the day, peaking at 15:00 UTC.
        loop {
            let h = self.rng.random_range(0..24u32);
            let phase = (f64::from(h) - 9.0) / 24.0 * std::f64::consts::TAU;
            let w = (1.0 + 0.8 * phase.sin()) / 1.8;
            if self.rng.random_bool(w.clamp(0.0, 1.0)) {
                return h;
            }
        }
    }
}

/// How a visit arrived: `(source, channel, referrer, utm_source,
/// utm_medium, utm_campaign, weight)`; empty texts are unknown values (a
/// direct visit has no source, as enrichment leaves it).
pub const VISIT_SOURCES: [(&str, &str, &str, &str, &str, &str, u32); 12] = [
    ("Google", "Organic Search", "https://www.google.com/", "", "", "", 340),
    ("", "Direct", "", "", "", "", 300),
    (
        "Hacker News",
        "Referral",
        "https://news.ycombinator.com/",
        "",
        "",
        "",
        60,
    ),
    ("Twitter", "Organic Social", "https://t.co/", "", "", "", 50),
    ("Bing", "Organic Search", "https://www.bing.com/", "", "", "", 45),
    ("GitHub", "Referral", "https://github.com/", "", "", "", 40),
    ("newsletter", "Email", "", "newsletter", "email", "weekly", 40),
    (
        "DuckDuckGo",
        "Organic Search",
        "https://duckduckgo.com/",
        "",
        "",
        "",
        35,
    ),
    ("Reddit", "Organic Social", "https://www.reddit.com/", "", "", "", 30),
    (
        "LinkedIn",
        "Organic Social",
        "https://www.linkedin.com/",
        "",
        "",
        "",
        20,
    ),
    (
        "Google",
        "Paid Search",
        "https://www.google.com/",
        "google",
        "cpc",
        "brand",
        20,
    ),
    ("Facebook", "Organic Social", "https://l.facebook.com/", "", "", "", 20),
];

/// Operating systems: `(os, versions, share of tablets, browsers with
/// weights, weight)`; a tablet or phone for iOS and Android, else desktop.
type OsRow = (
    &'static str,
    &'static [&'static str],
    f64,
    &'static [(&'static str, u32)],
    u32,
);
const SYSTEMS: [OsRow; 6] = [
    (
        "Windows",
        &["11", "10"],
        0.0,
        &[("Chrome", 65), ("Edge", 20), ("Firefox", 12), ("Opera", 3)],
        34,
    ),
    (
        "Android",
        &["14", "13", "15", "12"],
        0.08,
        &[("Chrome", 75), ("Samsung Internet", 20), ("Firefox", 5)],
        24,
    ),
    (
        "iOS",
        &["18.1", "17.6", "18.0", "16.7"],
        0.15,
        &[("Safari", 85), ("Chrome", 15)],
        21,
    ),
    (
        "macOS",
        &["15", "14", "13"],
        0.0,
        &[("Safari", 45), ("Chrome", 45), ("Firefox", 10)],
        14,
    ),
    ("GNU/Linux", &[""], 0.0, &[("Firefox", 55), ("Chrome", 45)], 5),
    ("Chrome OS", &[""], 0.0, &[("Chrome", 100)], 2),
];

const BROWSER_VERSIONS: [(&str, &[&str]); 6] = [
    ("Chrome", &["131.0", "130.0", "129.0", "128.0"]),
    ("Edge", &["131.0", "130.0"]),
    ("Firefox", &["133.0", "132.0", "128.0"]),
    ("Safari", &["18.1", "17.6", "18.0"]),
    ("Samsung Internet", &["26.0", "25.0"]),
    ("Opera", &["114.0"]),
];

/// Countries by Zipf rank (s = 1): the United States about a quarter, Germany an eighth.
pub const COUNTRIES: [&str; 30] = [
    "US", "DE", "GB", "IN", "FR", "CA", "NL", "BR", "JP", "ES", "IT", "PL", "SE", "AU", "CH", "AT", "BE", "DK", "NO",
    "FI", "IE", "MX", "KR", "CZ", "PT", "TR", "UA", "SG", "ZA", "NZ",
];

/// Visits: a share of one-pageview visits; the rest have 2 or more pageviews
/// (geometric), minutes apart; custom events now and then.
pub const BOUNCE_SHARE: f64 = 0.42;
/// Chance of one more pageview after the second (geometric tail).
pub const MORE_PAGES: f64 = 0.65;
pub const MAX_PAGES: usize = 20;
/// Per pageview: a `Signup` (props `plan`) or an `Outbound Link: Click`
/// (props `url`) after it.
pub const SIGNUP_CHANCE: f64 = 0.02;
pub const OUTBOUND_CHANCE: f64 = 0.03;
/// Share of the people who are logged in (a `user_id`, the same on every
/// day); the others are cookieless (a `visitor_id` that changes every day,
/// as the api's daily salt makes it).
pub const USER_SHARE: f64 = 0.1;
/// Visits per person over the dataset, about (people are drawn uniformly).
pub const VISITS_PER_PERSON: f64 = 3.0;
/// Events per visit, about (for sizing the people pool).
pub const EVENTS_PER_VISIT: f64 = 2.9;

fn pick<'a, T>(rng: &mut StdRng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut u = rng.random_range(0..total.max(1));
    for (item, w) in items {
        if u < *w {
            return item;
        }
        u -= w;
    }
    &items[items.len() - 1].0
}

/// What does not change between a person's visits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub user_id: Option<String>,
    pub os: &'static str,
    pub os_version: &'static str,
    pub browser: &'static str,
    pub browser_version: &'static str,
    pub device: &'static str,
    pub country: &'static str,
}

/// Person `person` of `site`: the same attributes in every call.
pub fn person(seed: u64, site: usize, person: u64) -> Person {
    let mut rng = StdRng::seed_from_u64(
        seed ^ (site as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ person.wrapping_mul(0xBF58_476D_1CE4_E5B9),
    );
    let systems: Vec<(usize, u32)> = SYSTEMS.iter().enumerate().map(|(i, s)| (i, s.4)).collect();
    let (os, versions, tablets, browsers, _) = SYSTEMS[*pick(&mut rng, &systems)];
    let os_version = versions[Zipf::new(versions.len(), 1.2).sample(&mut rng)];
    let device = match os {
        "Android" | "iOS" if rng.random_bool(tablets) => "tablet",
        "Android" | "iOS" => "mobile",
        _ => "desktop",
    };
    let browser = *pick(&mut rng, browsers);
    let bversions = BROWSER_VERSIONS
        .iter()
        .find(|(b, _)| *b == browser)
        .map_or(&[""][..], |(_, v)| *v);
    let browser_version = bversions[Zipf::new(bversions.len(), 1.5).sample(&mut rng)];
    let country = COUNTRIES[Zipf::new(COUNTRIES.len(), 1.0).sample(&mut rng)];
    let user_id = rng.random_bool(USER_SHARE).then(|| format!("u{site}-{person}"));
    Person {
        user_id,
        os,
        os_version,
        browser,
        browser_version,
        device,
        country,
    }
}

/// A person's cookieless id on `day`: a hash of site, person and day, as
/// the api's daily salt makes it; never 0.
pub fn cookieless_id(site: usize, person: u64, day: NaiveDate) -> i64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (site, person, day).hash(&mut h);
    #[allow(clippy::cast_possible_wrap)]
    let id = h.finish() as i64;
    if id == 0 {
        1
    } else {
        id
    }
}

impl Generator {
    /// One visit of `person` to `site` starting at `start`: pageviews
    /// seconds to minutes apart (never 30), the first one the entry page,
    /// with a custom event after some of them. The visit's source, campaign
    /// and hostname are on every event, as a browser sends them on each
    /// request of a visit.
    pub fn visit(
        &mut self,
        site: usize,
        who: u64,
        start: DateTime<Utc>,
        received_at: DateTime<Utc>,
    ) -> Vec<analytics_core::event::Event> {
        let p = person(self.cfg.seed, site, who);
        let visitor_id = match p.user_id {
            Some(_) => None,
            None => Some(cookieless_id(site, who, start.date_naive())),
        };
        let sources: Vec<(usize, u32)> = VISIT_SOURCES.iter().enumerate().map(|(i, s)| (i, s.6)).collect();
        let (source, channel, referrer, utm_source, utm_medium, utm_campaign, _) =
            VISIT_SOURCES[*pick(&mut self.rng, &sources)];
        let campaign = if utm_campaign == "weekly" {
            format!("weekly-{}", start.date_naive().iso_week().week())
        } else {
            utm_campaign.to_string()
        };
        let site_id = self.site_names.get(site).cloned().unwrap_or_else(|| site_name(site));
        let hostname = match self.rng.random_range(0..100) {
            0..92 => format!("{site_id}.example.com"),
            92..98 => format!("www.{site_id}.example.com"),
            _ => format!("docs.{site_id}.example.com"),
        };
        let context = analytics_core::event::Context::new(
            visitor_id,
            [
                &hostname,
                source,
                channel,
                utm_source,
                utm_medium,
                &campaign,
                "",
                "",
                p.browser,
                p.browser_version,
                p.os,
                p.os_version,
                p.device,
                p.country,
            ],
        );
        let pages = if self.rng.random_bool(BOUNCE_SHARE) {
            1
        } else {
            let mut n = 2;
            while n < MAX_PAGES && self.rng.random_bool(MORE_PAGES) {
                n += 1;
            }
            n
        };
        let mut out = Vec::with_capacity(pages + 1);
        let mut t = start;
        let event = |name: &str, path: &str, t, props, referrer: Option<String>| analytics_core::event::Event {
            event_id: uuid::Uuid::now_v7(),
            site_id: site_id.clone(),
            event_type: name.to_string(),
            path: path.to_string(),
            user_id: p.user_id.clone().unwrap_or_default(),
            timestamp: t,
            received_at,
            referrer,
            props,
            context: context.clone(),
        };
        for i in 0..pages {
            if i > 0 {
                t += self.gap();
            }
            let path = &self.path_names[self.paths.sample(&mut self.rng)];
            let r = (i == 0 && !referrer.is_empty()).then(|| referrer.to_string());
            out.push(event(PAGEVIEW, path, t, None, r));
            if self.rng.random_bool(SIGNUP_CHANCE) {
                t += Duration::seconds(self.rng.random_range(2..60));
                let plan = if self.rng.random_bool(0.2) { "pro" } else { "free" };
                let mut props = serde_json::Map::new();
                props.insert("plan".into(), plan.into());
                out.push(event("Signup", path, t, Some(props), None));
            } else if self.rng.random_bool(OUTBOUND_CHANCE) {
                t += Duration::seconds(self.rng.random_range(2..60));
                let mut props = serde_json::Map::new();
                let url = format!("https://github.com/example/{}", self.rng.random_range(0..20));
                props.insert("url".into(), url.into());
                out.push(event("Outbound Link: Click", path, t, Some(props), None));
            }
        }
        out
    }

    /// One of `people` people, uniformly.
    pub fn person_index(&mut self, people: u64) -> u64 {
        self.rng.random_range(0..people.max(1))
    }

    /// Seconds between two pageviews of a visit: log-uniform from 5 s to
    /// 10 min, whole seconds.
    fn gap(&mut self) -> Duration {
        let x: f64 = self.rng.random_range(5f64.ln()..600f64.ln());
        #[allow(clippy::cast_possible_truncation)]
        Duration::seconds(x.exp() as i64)
    }
}

/// The event type of a pageview.
pub const PAGEVIEW: &str = "page_view";

/// One pre-serialised request body, the number of events in it, and the
/// headers it is sent with besides the usual ones (a browser's agent and
/// the address a proxy reports, for `/api/event`).
#[derive(Debug, Clone)]
pub struct Body {
    pub bytes: Bytes,
    pub events: u64,
    pub headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
}

/// What a request carries: one event (`POST /events`) or a batch of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Shape {
    Single,
    Batch(usize),
}

impl Shape {
    pub fn path(self) -> &'static str {
        match self {
            Shape::Single => "/events",
            Shape::Batch(_) => "/events/batch",
        }
    }

    pub fn events(self) -> usize {
        match self {
            Shape::Single => 1,
            Shape::Batch(n) => n,
        }
    }

    pub fn label(self) -> String {
        match self {
            Shape::Single => "single".to_string(),
            Shape::Batch(n) => format!("batch {n}"),
        }
    }
}

/// `count` request bodies of `shape`, drawn from `gen`. A pool of a few MB is
/// enough: bodies are reused round-robin, and since the api assigns every
/// event a fresh UUIDv7, a reused body is new events each time.
pub fn body_pool(gen: &mut Generator, shape: Shape, count: usize) -> anyhow::Result<Vec<Body>> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let bytes = match shape {
            Shape::Single => serde_json::to_vec(&gen.wire_event())?,
            Shape::Batch(n) => {
                let batch: Vec<WireEvent> = (0..n).map(|_| gen.wire_event()).collect();
                serde_json::to_vec(&batch)?
            }
        };
        out.push(Body {
            bytes: Bytes::from(bytes),
            events: shape.events() as u64,
            headers: Vec::new(),
        });
    }
    Ok(out)
}

/// A pool size that gives variety without using much memory: about 8 MB of
/// bodies, at least 16 of them.
pub fn pool_size(shape: Shape) -> usize {
    match shape {
        Shape::Single => 50_000,
        Shape::Batch(n) => (50_000 / n.max(1)).max(16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_skewed_and_sums_to_one() {
        let z = Zipf::new(20, 0.9);
        let total: f64 = (0..20).map(|k| z.probability(k)).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert!(
            z.probability(0) > 0.2 && z.probability(0) < 0.26,
            "{}",
            z.probability(0)
        );
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0u32; 20];
        for _ in 0..100_000 {
            counts[z.sample(&mut rng)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[5] && counts[5] > counts[19]);
        assert!((20_000..26_000).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn zipf_sample_stays_in_range() {
        let z = Zipf::new(3, 1.0);
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..10_000).all(|_| z.sample(&mut rng) < 3));
        assert_eq!(Zipf::new(0, 1.0).len(), 1);
    }

    #[test]
    fn generator_is_reproducible_and_mostly_page_views() {
        let mut a = Generator::new(MixConfig::default());
        let mut b = Generator::new(MixConfig::default());
        let ea: Vec<WireEvent> = (0..1000).map(|_| a.wire_event()).collect();
        let eb: Vec<WireEvent> = (0..1000).map(|_| b.wire_event()).collect();
        assert_eq!(ea, eb);
        let views = ea.iter().filter(|e| e.event_type == "page_view").count();
        assert!((720..880).contains(&views), "{views}");
    }

    #[test]
    fn bodies_are_json_arrays_of_the_right_size() {
        let mut g = Generator::new(MixConfig::default());
        let pool = body_pool(&mut g, Shape::Batch(100), 2).unwrap_or_default();
        assert_eq!(pool.len(), 2);
        let parsed: Vec<serde_json::Value> = serde_json::from_slice(&pool[0].bytes).unwrap_or_default();
        assert_eq!(parsed.len(), 100);
        assert!(parsed
            .iter()
            .all(|e| e.get("event_id").is_none() && e.get("timestamp").is_none()));
    }

    #[test]
    fn visits_are_pageviews_minutes_apart_with_one_context() {
        let mut g = Generator::new(MixConfig::default());
        let start = NaiveDate::from_ymd_opt(2025, 11, 30)
            .unwrap_or_default()
            .and_hms_opt(12, 0, 0)
            .unwrap_or_default()
            .and_utc();
        let (mut events, mut bounces) = (0, 0);
        for who in 0..2000 {
            let v = g.visit(3, who, start, start);
            assert_eq!(v[0].event_type, PAGEVIEW);
            assert_eq!(v[0].timestamp, start);
            assert!(v.windows(2).all(|w| {
                let gap = w[1].timestamp - w[0].timestamp;
                gap > Duration::zero() && gap < Duration::minutes(30) && w[1].context == w[0].context
            }));
            // Cookieless people have a visitor id, logged-in ones a user id.
            assert!(v.iter().all(|e| e.user_id.is_empty() == e.context.visitor_id.is_some()));
            assert_eq!(person(42, 3, who), person(42, 3, who));
            events += v.len();
            bounces += usize::from(v.len() == 1);
        }
        #[allow(clippy::cast_precision_loss)]
        let per_visit = events as f64 / 2000.0;
        assert!((2.4..3.4).contains(&per_visit), "{per_visit}");
        assert!((700..1000).contains(&bounces), "{bounces}");
    }

    #[test]
    fn timestamps_fall_in_the_window() {
        let mut g = Generator::new(MixConfig::default());
        let last = NaiveDate::from_ymd_opt(2025, 11, 30).unwrap_or_default();
        for _ in 0..1000 {
            let t = g.timestamp(last, 30).date_naive();
            assert!(t <= last && t > last - Duration::days(30));
        }
    }
}
