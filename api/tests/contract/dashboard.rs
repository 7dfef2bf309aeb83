//! The dashboard's endpoints as public API, through the real router: a
//! seeded workload, and every answer of `/sites`, `/stats/timeseries`,
//! `/stats/breakdown`, `/stats/live` and `/stats?compare=previous` compared
//! with truth computed here from the events themselves; and the 400s, each
//! naming its parameter. Embedded (SQLite) and Kafka (PostgreSQL) mode.
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use testkit::inproc::{Running, Stack};
use testkit::workload::{expected_stats, generate, plan_requests, send, truth, GenEvent, Workload};

#[derive(Default)]
struct Bucket {
    views: i64,
    events: i64,
    users: HashSet<String>,
}

/// Truth per (site, day, hour).
fn hourly_truth(events: &[GenEvent]) -> BTreeMap<(String, String, u32), Bucket> {
    let mut t: BTreeMap<(String, String, u32), Bucket> = BTreeMap::new();
    for e in events {
        let hour: u32 = e.timestamp[11..13].parse().unwrap();
        let b = t.entry((e.site.clone(), e.day.clone(), hour)).or_default();
        b.events += 1;
        if e.event_type == "page_view" {
            b.views += 1;
        }
        if !e.user.is_empty() {
            b.users.insert(e.user.clone());
        }
    }
    t
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = client.get(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn ok(client: &reqwest::Client, url: &str) -> Value {
    let (status, body) = get(client, url).await;
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

fn point(start: String, views: i64, users: usize, events: i64) -> Value {
    json!({"start": start, "views": views, "unique_users": users, "events": events})
}

async fn check_endpoints(base: &str, w: &Workload) {
    let client = reqwest::Client::new();
    let daily = truth(&w.events);
    let hourly = hourly_truth(&w.events);

    // Sites: every site that has data, in byte order.
    let mut sites: Vec<&String> = w
        .sites
        .iter()
        .filter(|s| w.events.iter().any(|e| &e.site == *s))
        .collect();
    sites.sort();
    let zones: serde_json::Map<String, Value> = sites.iter().map(|s| (s.to_string(), json!("UTC"))).collect();
    assert_eq!(
        ok(&client, &format!("{base}/sites")).await,
        json!({ "sites": sites, "timezones": zones })
    );

    let (first, last) = (&w.days[0], &w.days[w.days.len() - 1]);
    for site in &w.sites {
        // One day, hourly by default: 24 points, zeros included.
        let day = &w.days[1];
        let got = ok(&client, &format!("{base}/stats/timeseries?site_id={site}&date={day}")).await;
        assert_eq!(got["interval"], "hour");
        let want: Vec<Value> = (0..24)
            .map(|h| {
                let b = hourly.get(&(site.clone(), day.clone(), h));
                point(
                    format!("{day}T{h:02}:00:00Z"),
                    b.map_or(0, |b| b.views),
                    b.map_or(0, |b| b.users.len()),
                    b.map_or(0, |b| b.events),
                )
            })
            .collect();
        assert_eq!(got["points"], json!(want), "{site} hourly on {day}");

        // Two days are hourly too; the whole period is daily.
        let got = ok(
            &client,
            &format!(
                "{base}/stats/timeseries?site_id={site}&from={}&to={}",
                w.days[2], w.days[3]
            ),
        )
        .await;
        assert_eq!(got["points"].as_array().unwrap().len(), 48);
        let got = ok(
            &client,
            &format!("{base}/stats/timeseries?site_id={site}&from={first}&to={last}"),
        )
        .await;
        assert_eq!(got["interval"], "day");
        let want: Vec<Value> = w
            .days
            .iter()
            .map(|d| {
                let t = daily.get(&(site.clone(), d.clone()));
                point(
                    format!("{d}T00:00:00Z"),
                    t.map_or(0, |t| t.views),
                    t.map_or(0, |t| t.users.len()),
                    t.map_or(0, |t| t.events),
                )
            })
            .collect();
        assert_eq!(got["points"], json!(want), "{site} daily");

        // Breakdowns: every path (1,000 is more than the workload has) and
        // every event type, ranked by count then key.
        let got = ok(
            &client,
            &format!("{base}/stats/breakdown?site_id={site}&from={first}&to={last}&by=path&limit=1000"),
        )
        .await;
        let want = expected_stats(&daily, site, &w.days, 1000);
        let want_rows: Vec<Value> = want["top_paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| json!({"key": p["path"], "count": p["views"]}))
            .collect();
        assert_eq!(got["rows"], json!(want_rows), "{site} paths");
        let mut types: HashMap<&str, i64> = HashMap::new();
        for e in w.events.iter().filter(|e| &e.site == site) {
            *types.entry(e.event_type.as_str()).or_default() += 1;
        }
        let mut types: Vec<(&str, i64)> = types.into_iter().collect();
        types.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let want_rows: Vec<Value> = types.iter().map(|(k, n)| json!({"key": k, "count": n})).collect();
        let got = ok(
            &client,
            &format!("{base}/stats/breakdown?site_id={site}&from={first}&to={last}&by=event_type"),
        )
        .await;
        assert_eq!(got["rows"], json!(want_rows), "{site} event types");

        // Comparison: the last three days against the three before.
        let (cur, prev) = (&w.days[3..6], &w.days[0..3]);
        let got = ok(
            &client,
            &format!(
                "{base}/stats?site_id={site}&from={}&to={}&compare=previous",
                cur[0], cur[2]
            ),
        )
        .await;
        let want_prev = expected_stats(&daily, site, prev, 10);
        // `visitors` depends on the day each request arrived (its salt):
        // the enrichment tests check it, not this workload's truth.
        let mut previous = got["previous"].clone();
        assert!(
            previous["visitors"].as_i64() >= want_prev["unique_users"].as_i64(),
            "{previous}"
        );
        previous.as_object_mut().map(|p| p.remove("visitors"));
        assert_eq!(
            previous,
            json!({"from": prev[0], "to": prev[2], "total_views": want_prev["total_views"],
                   "unique_users": want_prev["unique_users"], "total_events": want_prev["total_events"]}),
            "{site} previous period"
        );
        assert_eq!(got["total_views"], expected_stats(&daily, site, cur, 10)["total_views"]);

        // Live: everything was received within the last few minutes.
        let sent = w.events.iter().filter(|e| &e.site == site).count();
        let got = ok(&client, &format!("{base}/stats/live?site_id={site}")).await;
        assert_eq!(got["events"], sent, "{site} live: {got}");
        assert_eq!(got["minutes"].as_array().unwrap().len(), 5);
    }
    let got = ok(&client, &format!("{base}/stats/live?site_id=no-such-site")).await;
    assert_eq!(got["events"], 0);
}

async fn check_errors(base: &str) {
    let client = reqwest::Client::new();
    let cases = [
        ("/stats/timeseries?date=2025-11-15", "site_id"),
        ("/stats/timeseries?site_id=s&interval=week", "interval"),
        (
            "/stats/timeseries?site_id=s&from=2025-01-01&to=2025-03-01&interval=hour",
            "interval",
        ),
        ("/stats/timeseries?site_id=s&from=2025-11-02&to=2025-11-01", "to"),
        ("/stats/timeseries?site_id=s&date=2025-13-01", "date"),
        ("/stats/timeseries?site_id=s&colour=red", "colour"),
        ("/stats/breakdown?site_id=s", "by"),
        ("/stats/breakdown?site_id=s&by=referrer", "by"),
        ("/stats/breakdown?site_id=s&by=path&limit=1001", "limit"),
        ("/stats/breakdown?site_id=s&by=path&from=2024-01-01&to=2025-11-01", "to"),
        ("/stats/live", "site_id"),
        ("/stats/live?site_id=s&window=10", "window"),
        ("/sites?site_id=s", "site_id"),
        ("/stats?site_id=s&compare=last_year", "compare"),
    ];
    for (path, field) in cases {
        let (status, body) = get(&client, &format!("{base}{path}")).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
        let fields: Vec<&str> = body["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec![field], "{path}: {body}");
    }
}

#[tokio::test]
async fn dashboard_endpoints_are_exact_in_embedded_mode() {
    let api = Running::embedded().await;
    let mut w = generate(5, 6_000, 4, 7, 0.5);
    let ix: Vec<usize> = (0..w.events.len()).collect();
    send(&api.base, &mut w.events, plan_requests(5, &ix, 0.02), 8, None).await;
    check_endpoints(&api.base, &w).await;
    check_errors(&api.base).await;

    // The page and its assets are served from the binary.
    let client = reqwest::Client::new();
    let page = client.get(&api.base).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/assets/app.js") && html.contains("embedded mode"),
        "{html}"
    );
    for (asset, ty) in [("/assets/app.js", "text/javascript"), ("/assets/app.css", "text/css")] {
        let r = client.get(format!("{}{asset}", api.base)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(ty), "{asset}: {ct}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_endpoints_are_exact_on_postgres() {
    let stack = Stack::start(2).await;
    let mut w = generate(7, 2_000, 3, 7, 1.0);
    let ix: Vec<usize> = (0..w.events.len()).collect();
    send(&stack.api.base, &mut w.events, plan_requests(7, &ix, 0.02), 8, None).await;
    let db = stack.db.connect().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while entity::events::Entity::find().count(&db).await.unwrap() < w.events.len() as u64 {
        assert!(Instant::now() < deadline, "events not all written in time");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    check_endpoints(&stack.api.base, &w).await;
    check_errors(&stack.api.base).await;
}
