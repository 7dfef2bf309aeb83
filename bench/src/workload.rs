//! The realistic event mix: several sites (Zipf), Zipf-distributed paths and
//! users per site, a page-view-heavy event-type mix and optional referrers.
//! Everything is drawn from a seeded RNG, so a run is reproducible.
//!
//! Request bodies are serialised ahead of the run (`body_pool`), so that
//! generating load costs nothing while it is measured.

use bytes::Bytes;
use chrono::{DateTime, Duration, NaiveDate, Utc};
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
        use chrono::Datelike;
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
    fn timestamps_fall_in_the_window() {
        let mut g = Generator::new(MixConfig::default());
        let last = NaiveDate::from_ymd_opt(2025, 11, 30).unwrap_or_default();
        for _ in 0..1000 {
            let t = g.timestamp(last, 30).date_naive();
            assert!(t <= last && t > last - Duration::days(30));
        }
    }
}
