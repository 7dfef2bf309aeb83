//! Random sites and random queries for property tests (here, and of the
//! stores in `analytics-core`): a few days of events in visits, with long
//! chains across day edges; queries over random metrics, dimensions,
//! nested filters, ranges and pagination. Small vocabularies, so that
//! filters match some events and miss others.

use crate::goal::Goal;
use crate::reference::RawEvent;
use chrono::{DateTime, Duration, Utc};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use serde_json::{json, Value};

const PAGES: [&str; 5] = ["/", "/blog", "/Blog/rust", "/pricing", "/docs/a"];
const NAMES: [&str; 4] = ["page_view", "page_view", "Signup", "click"];
const HOSTNAMES: [&str; 2] = ["shop.example", "blog.shop.example"];
const SOURCES: [&str; 4] = ["", "Google", "Hacker News", "news.example"];
const REFERRERS: [&str; 3] = ["", "https://google.com/", "https://news.example/x"];
const CHANNELS: [&str; 3] = ["Direct", "Organic Search", "Referral"];
const UTM: [&str; 2] = ["", "newsletter"];
const BROWSERS: [&str; 3] = ["Chrome", "Firefox", "Safari"];
const VERSIONS: [&str; 3] = ["", "120", "17"];
const OSES: [&str; 2] = ["Linux", "iOS"];
const DEVICES: [&str; 2] = ["desktop", "mobile"];
const COUNTRIES: [&str; 4] = ["", "DE", "IN", "NP"];
const PLANS: [&str; 3] = ["free", "pro", "Pro"];
const AMOUNTS: [&str; 6] = ["12.5", "3", "0.99", "-1.25", "100.000001", "n/a"];
const CURRENCIES: [&str; 3] = ["EUR", "EUR", "USD"];

fn pick<R: Rng + ?Sized>(rng: &mut R, from: &[&str]) -> String {
    from.choose(rng).copied().unwrap_or_default().to_string()
}

/// The visitor of random events: `u:<user id>` for five users,
/// `c:<number>` for five cookieless visitors, none for a few events (the
/// names the stores give their visitors).
pub fn visitor_name(k: u32) -> Option<String> {
    match k {
        0..=4 => Some(format!("u:user{k}")),
        5..=9 => Some(format!("c:{}", i64::from(k) * 1_000_003)),
        _ => None,
    }
}

fn event<R: Rng + ?Sized>(rng: &mut R, ts: DateTime<Utc>, visitor: u32) -> RawEvent {
    let mut e = RawEvent {
        event_id: rng.random(),
        timestamp: ts,
        name: pick(rng, &NAMES),
        path: pick(rng, &PAGES),
        visitor: visitor_name(visitor),
        hostname: pick(rng, &HOSTNAMES),
        referrer: pick(rng, &REFERRERS),
        source: pick(rng, &SOURCES),
        channel: pick(rng, &CHANNELS),
        utm_source: pick(rng, &UTM),
        utm_medium: pick(rng, &UTM),
        browser: pick(rng, &BROWSERS),
        browser_version: pick(rng, &VERSIONS),
        os: pick(rng, &OSES),
        device: pick(rng, &DEVICES),
        country: pick(rng, &COUNTRIES),
        ..RawEvent::default()
    };
    if rng.random_bool(0.4) {
        e.props.insert("plan".into(), pick(rng, &PLANS));
    }
    // Revenue on most sign-ups (some in another currency, some not a number).
    if e.name == "Signup" && rng.random_bool(0.8) {
        e.props.insert("revenue_amount".into(), pick(rng, &AMOUNTS));
        e.props.insert("revenue_currency".into(), pick(rng, &CURRENCIES));
    }
    e
}

/// `scattered` events over three days from `start`, plus two long chains
/// (gaps of at most 30 minutes, so one visit each) across the days' edges.
pub fn events<R: Rng + ?Sized>(rng: &mut R, start: DateTime<Utc>, scattered: usize) -> Vec<RawEvent> {
    let mut out = Vec::new();
    for _ in 0..scattered {
        let ts = start + Duration::seconds(rng.random_range(0..3 * 86_400));
        let visitor = rng.random_range(0..12);
        out.push(event(rng, ts, visitor));
    }
    for visitor in [1, 6] {
        let mut ts = start + Duration::hours(rng.random_range(10..50));
        for _ in 0..rng.random_range(10..40) {
            out.push(event(rng, ts, visitor));
            ts += Duration::minutes(rng.random_range(5..=30));
        }
    }
    out
}

/// A random subset of a fixed list of goals, in random order: pageview
/// goals with and without wildcards, event goals with and without a
/// property.
pub fn goals<R: Rng + ?Sized>(rng: &mut R) -> Vec<Goal> {
    let all = [
        Goal::page("Home", "/"),
        Goal::page("Docs", "/docs/*"),
        Goal::page("Blogs", "/*log**"),
        Goal::page("Everything", "/**"),
        Goal::event("Signup", "Signup", None),
        Goal::event("Pro signup", "Signup", Some(("plan", "pro"))),
        Goal::event("Click", "click", None),
        Goal::event("Revenue", "Signup", None).and_then(|g| g.with_currency("EUR")),
        Goal::event("Pro revenue", "Signup", Some(("plan", "pro"))).and_then(|g| g.with_currency("eur")),
        Goal::event("Dollars", "Signup", None).and_then(|g| g.with_currency("USD")),
    ];
    let mut goals: Vec<Goal> = all.into_iter().flatten().filter(|_| rng.random_bool(0.6)).collect();
    goals.shuffle(rng);
    goals
}

const METRICS: [&str; 12] = [
    "visitors",
    "visits",
    "pageviews",
    "events",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "percentage",
    "conversion_rate",
    "group_conversion_rate",
    "total_revenue",
    "average_revenue",
];
const DIMENSIONS: [&str; 18] = [
    "event:goal",
    "event:goal",
    "event:page",
    "event:name",
    "event:props:plan",
    "event:props:missing",
    "event:hostname",
    "visit:entry_page",
    "visit:exit_page",
    "visit:source",
    "visit:channel",
    "visit:browser",
    "visit:country",
    "visit:referrer",
    "time:day",
    "time:hour",
    "time:week",
    "time",
];
const FILTER_DIMENSIONS: [&str; 14] = [
    "event:goal",
    "event:goal",
    "event:page",
    "event:name",
    "event:props:plan",
    "event:props:missing",
    "event:hostname",
    "visit:entry_page",
    "visit:exit_page",
    "visit:source",
    "visit:browser",
    "visit:country",
    "visit:utm_source",
    "visit:os",
];
const CLAUSES: [&str; 13] = [
    "/",
    "/blog",
    "blog",
    "Google",
    "Chrome",
    "DE",
    "pro",
    "Pro",
    "page_view",
    "shop",
    "^/B",
    "e$",
    "(none)",
];
/// Goal names (some of them a site's) and parts of them.
const GOAL_CLAUSES: [&str; 9] = [
    "Home",
    "Docs",
    "Blogs",
    "Everything",
    "Signup",
    "Pro signup",
    "Click",
    "sign",
    "^[A-D]",
];
const OPERATORS: [&str; 6] = ["is", "is_not", "contains", "contains_not", "matches", "matches_not"];

fn filter<R: Rng + ?Sized>(rng: &mut R, depth: u32) -> Value {
    if depth < 2 && rng.random_bool(0.3) {
        return match rng.random_range(0..3) {
            0 => json!(["not", filter(rng, depth + 1)]),
            k => {
                let parts: Vec<Value> = (0..rng.random_range(1..=3)).map(|_| filter(rng, depth + 1)).collect();
                json!([if k == 1 { "and" } else { "or" }, parts])
            }
        };
    }
    let dimension = pick(rng, &FILTER_DIMENSIONS);
    let vocabulary: &[&str] = if dimension == "event:goal" {
        &GOAL_CLAUSES
    } else {
        &CLAUSES
    };
    let clauses: Vec<String> = (0..rng.random_range(1..=2)).map(|_| pick(rng, vocabulary)).collect();
    let mut f = json!([pick(rng, &OPERATORS), dimension, clauses]);
    if rng.random_bool(0.3) {
        if let Value::Array(parts) = &mut f {
            parts.push(json!({"case_sensitive": false}));
        }
    }
    f
}

/// A random request for `site` over days around `start` (some invalid:
/// the caller skips what `Query::parse` refuses).
pub fn query<R: Rng + ?Sized>(rng: &mut R, site: &str, start: DateTime<Utc>) -> Value {
    let n = rng.random_range(1..=4);
    let mut metrics: Vec<&str> = METRICS.choose_multiple(rng, n).copied().collect();
    metrics.shuffle(rng);
    let n = rng.random_range(0..=2);
    let dimensions: Vec<&str> = DIMENSIONS.choose_multiple(rng, n).copied().collect();
    let mut dimensions = dimensions;
    let mut filters: Vec<Value> = (0..rng.random_range(0..=2)).map(|_| filter(rng, 0)).collect();
    // Goal metrics need a goal: give most such queries one.
    let has_goal = dimensions.contains(&"event:goal") || filters.iter().any(|f| f.to_string().contains("event:goal"));
    let goal_metric = metrics
        .iter()
        .any(|m| m.contains("conversion") || m.contains("revenue"));
    if goal_metric && !has_goal && rng.random_bool(0.8) {
        if rng.random_bool(0.5) && dimensions.len() < 2 {
            dimensions.push("event:goal");
        } else {
            let clause = pick(rng, &GOAL_CLAUSES);
            filters.push(json!([
                pick(rng, &["is", "contains", "is_not"]),
                "event:goal",
                [clause]
            ]));
        }
    }
    let date_range = date_range(rng, start);
    let mut q = json!({"site_id": site, "metrics": metrics, "date_range": date_range, "dimensions": dimensions,
                       "filters": filters, "include": {"total_rows": true, "time_labels": rng.random_bool(0.2)}});
    if rng.random_bool(0.3) {
        q["pagination"] = json!({"limit": rng.random_range(1..4), "offset": rng.random_range(0..3)});
    }
    q
}

/// A random funnel request: 2 to 5 steps among goals by name (some not
/// the site's) and inline pages and events, random filters and range.
pub fn funnel<R: Rng + ?Sized>(rng: &mut R, site: &str, start: DateTime<Utc>) -> Value {
    let choices = [
        json!({"goal": "Home"}),
        json!({"goal": "Blogs"}),
        json!({"goal": "Signup"}),
        json!({"goal": "Pro signup"}),
        json!({"page": "/"}),
        json!({"name": "Pricing", "page": "/pricing"}),
        json!({"page": "/*log**"}),
        json!({"event": "Signup"}),
        json!({"event": "click"}),
        json!({"name": "Pro", "event": "Signup", "prop": {"plan": "Pro"}}),
    ];
    let steps: Vec<Value> = (0..rng.random_range(2..=5))
        .filter_map(|_| choices.choose(rng).cloned())
        .collect();
    let filters: Vec<Value> = (0..rng.random_range(0..=1)).map(|_| filter(rng, 0)).collect();
    json!({"site_id": site, "date_range": date_range(rng, start), "filters": filters, "steps": steps})
}

fn date_range<R: Rng + ?Sized>(rng: &mut R, start: DateTime<Utc>) -> Value {
    let day = |d: i64| (start + Duration::days(d)).format("%Y-%m-%d").to_string();
    match rng.random_range(0..6) {
        0 => json!("all"),
        1 => json!("7d"),
        2 => json!("day"),
        3 => {
            let a = start + Duration::minutes(rng.random_range(0..4000));
            let b = a + Duration::minutes(rng.random_range(0..3000));
            json!([a.to_rfc3339(), b.to_rfc3339()])
        }
        _ => {
            let a = rng.random_range(-1..3);
            json!([day(a), day(a + rng.random_range(0..2))])
        }
    }
}
