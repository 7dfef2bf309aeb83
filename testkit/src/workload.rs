//! A seeded workload over several sites, days, paths and users, and the
//! statistics it must produce, computed here from the events themselves and
//! not with any of the product's code.

use rand::distr::weighted::WeightedIndex;
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

pub const EVENT_TYPES: [(&str, u32); 4] = [("page_view", 70), ("click", 15), ("video:play", 10), ("sign_up", 5)];

#[derive(Clone, Debug)]
pub struct GenEvent {
    pub site: String,
    pub day: String,
    pub event_type: String,
    pub path: String,
    pub user: String,
    pub timestamp: String,
    /// Set by the client, or learnt from the api's answer to a single POST.
    pub event_id: Option<String>,
}

impl GenEvent {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "site_id": self.site, "event_type": self.event_type, "path": self.path, "timestamp": self.timestamp,
        });
        if !self.user.is_empty() {
            v["user_id"] = json!(self.user);
        }
        if let Some(id) = &self.event_id {
            v["event_id"] = json!(id);
        }
        v
    }
}

pub struct Workload {
    pub events: Vec<GenEvent>,
    pub sites: Vec<String>,
    pub days: Vec<String>,
}

/// `n` events over `sites` sites and `days` days (from 2025-11-10), Zipf-like
/// paths and users. `client_id_share` of them carry a client `event_id`.
pub fn generate(seed: u64, n: usize, sites: usize, days: usize, client_id_share: f64) -> Workload {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let site_names: Vec<String> = (0..sites).map(|i| format!("site-{i:02}")).collect();
    let day_names: Vec<String> = (0..days).map(|d| format!("2025-11-{:02}", 10 + d)).collect();
    let zipf = |k: usize| WeightedIndex::new((1..=k).map(|i| 1.0 / i as f64)).unwrap();
    let path_dist = zipf(60);
    let user_dist = zipf(3000);
    let site_dist = zipf(sites);
    let type_dist = WeightedIndex::new(EVENT_TYPES.iter().map(|(_, w)| *w)).unwrap();
    let events = (0..n)
        .map(|_| {
            let site = site_names[site_dist.sample(&mut rng)].clone();
            let day = day_names[rng.random_range(0..days)].clone();
            let secs: u32 = rng.random_range(0..86_400);
            let timestamp = format!("{day}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60);
            // A few users are anonymous: they count as views but not as users.
            let user = if rng.random_bool(0.05) {
                String::new()
            } else {
                format!("user-{}", user_dist.sample(&mut rng))
            };
            let path = format!("/p/{}", path_dist.sample(&mut rng));
            let event_id = rng
                .random_bool(client_id_share)
                .then(|| uuid::Builder::from_random_bytes(rng.random()).into_uuid().to_string());
            GenEvent {
                site,
                day,
                event_type: EVENT_TYPES[type_dist.sample(&mut rng)].0.to_string(),
                path,
                user,
                timestamp,
                event_id,
            }
        })
        .collect();
    Workload {
        events,
        sites: site_names,
        days: day_names,
    }
}

#[derive(Default, Debug, Clone)]
pub struct DayTruth {
    pub views: i64,
    pub events: i64,
    pub users: HashSet<String>,
    pub paths: HashMap<String, i64>,
}

/// Ground truth per (site, day).
pub fn truth(events: &[GenEvent]) -> BTreeMap<(String, String), DayTruth> {
    let mut t: BTreeMap<(String, String), DayTruth> = BTreeMap::new();
    for e in events {
        let d = t.entry((e.site.clone(), e.day.clone())).or_default();
        d.events += 1;
        if e.event_type == "page_view" {
            d.views += 1;
            *d.paths.entry(e.path.clone()).or_default() += 1;
        }
        if !e.user.is_empty() {
            d.users.insert(e.user.clone());
        }
    }
    t
}

/// The answer `/stats` must give for `site` over `days` (inclusive list).
pub fn expected_stats(t: &BTreeMap<(String, String), DayTruth>, site: &str, days: &[String], limit: usize) -> Value {
    let mut views = 0;
    let mut events = 0;
    let mut users = HashSet::new();
    let mut paths: HashMap<String, i64> = HashMap::new();
    for day in days {
        if let Some(d) = t.get(&(site.to_string(), day.clone())) {
            views += d.views;
            events += d.events;
            users.extend(d.users.iter().cloned());
            for (p, n) in &d.paths {
                *paths.entry(p.clone()).or_default() += n;
            }
        }
    }
    let mut ranked: Vec<(String, i64)> = paths.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(limit);
    json!({
        "total_views": views,
        "unique_users": users.len(),
        "total_events": events,
        "top_paths": ranked.into_iter().map(|(path, views)| json!({"path": path, "views": views})).collect::<Vec<_>>(),
    })
}

/// The fields of a `/stats` answer that `expected_stats` predicts.
pub fn comparable(answer: &Value) -> Value {
    json!({
        "total_views": answer["total_views"],
        "unique_users": answer["unique_users"],
        "total_events": answer["total_events"],
        "top_paths": answer["top_paths"],
    })
}

pub enum Request {
    Single(usize),
    Batch(Vec<usize>),
}

/// Splits event indexes into requests: each event is sent on its own with
/// probability `single_share`, the others go in batches of 1 to 1,000.
pub fn plan_requests(seed: u64, indexes: &[usize], single_share: f64) -> Vec<Request> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (singles, rest): (Vec<usize>, Vec<usize>) = indexes.iter().partition(|_| rng.random_bool(single_share));
    let mut out: Vec<Request> = singles.into_iter().map(Request::Single).collect();
    let mut i = 0;
    while i < rest.len() {
        let size = if rng.random_bool(0.3) {
            rng.random_range(1..=100)
        } else {
            rng.random_range(100..=1000)
        };
        let end = (i + size).min(rest.len());
        out.push(Request::Batch(rest[i..end].to_vec()));
        i = end;
    }
    out.shuffle(&mut rng);
    out
}

/// Sends `requests` with `concurrency` in flight. Events sent alone without
/// a client id learn the id the api assigned. With `retry`, a request that
/// failed (connection refused, 503) is sent again until `retry_for` runs out:
/// safe only for events that carry their id.
pub async fn send(
    base: &str,
    events: &mut [GenEvent],
    requests: Vec<Request>,
    concurrency: usize,
    retry_for: Option<std::time::Duration>,
) {
    use futures::StreamExt;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let bodies: Vec<(Option<usize>, String, Value)> = requests
        .into_iter()
        .map(|r| match r {
            Request::Single(i) => (
                events[i].event_id.is_none().then_some(i),
                format!("{base}/events"),
                events[i].to_json(),
            ),
            Request::Batch(ix) => (
                None,
                format!("{base}/events/batch"),
                Value::Array(ix.iter().map(|&i| events[i].to_json()).collect()),
            ),
        })
        .collect();
    let learned: Vec<(usize, String)> = futures::stream::iter(bodies)
        .map(|(learn, url, body)| {
            let client = client.clone();
            async move {
                let deadline = retry_for.map(|d| std::time::Instant::now() + d);
                loop {
                    let resp = client.post(&url).json(&body).send().await;
                    let failure = match resp {
                        Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => {
                            let v: Value = r.json().await.unwrap();
                            return learn.map(|i| (i, v["event_id"].as_str().unwrap().to_string()));
                        }
                        Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                        Err(e) => analytics_core::ops::telemetry::error_chain(&e),
                    };
                    match deadline {
                        Some(d) if std::time::Instant::now() < d => {
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        }
                        _ => panic!("POST {url} failed: {failure}"),
                    }
                }
            }
        })
        .buffer_unordered(concurrency)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    for (i, id) in learned {
        events[i].event_id = Some(id);
    }
}
