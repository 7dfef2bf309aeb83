//! `POST /api/v2/query` against the real router: answers in the site's
//! time zone from events sent through `/events` (and `/stats*` in its local
//! days and hours), every invalid part a 400
//! naming it, and the read keys' rules (embedded mode off loopback).

use analytics_core::access::{keys, sites};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::db::temp_sqlite;
use testkit::inproc::Running;

async fn query(c: &reqwest::Client, base: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
    let mut req = c.post(format!("{base}/api/v2/query")).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until the site's events are all stored (ingest is asynchronous).
async fn until_events(c: &reqwest::Client, base: &str, site: &str, n: u64, key: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = json!({"site_id": site, "metrics": ["events"], "date_range": "all"});
    loop {
        let (status, v) = query(c, base, &body, key).await;
        if status == 200 && v["results"][0]["metrics"][0] == json!(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} events never became visible: {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn event(site: &str, user: &str, path: &str, ts: &str) -> Value {
    json!({"site_id": site, "event_type": "page_view", "path": path, "user_id": user, "timestamp": ts})
}

#[tokio::test]
async fn answers_in_the_site_zone_and_names_every_invalid_part() {
    let api = Running::embedded().await;
    let (c, base) = (reqwest::Client::new(), api.base.as_str());
    let added = c
        .post(format!("{base}/api/admin/sites"))
        .json(&json!({"site_id": "ktm", "timezone": "Asia/Kathmandu"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    // 18:20 UTC is 00:05 the next day in Kathmandu (+05:45).
    for e in [
        event("ktm", "a", "/", "2025-11-14T12:00:00Z"),
        event("ktm", "a", "/pricing", "2025-11-14T12:10:00Z"),
        event("ktm", "b", "/", "2025-11-14T18:20:00Z"),
    ] {
        let r = c.post(format!("{base}/events")).json(&e).send().await.unwrap();
        assert_eq!(r.status(), 202);
    }
    until_events(&c, base, "ktm", 3, None).await;

    let (status, v) = query(
        &c,
        base,
        &json!({"site_id": "ktm", "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"],
                "date_range": ["2025-11-14", "2025-11-15"], "dimensions": ["time:day"]}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["results"],
        json!([{"dimensions": ["2025-11-14"], "metrics": [1, 1, 2, 0, 600]},
               {"dimensions": ["2025-11-15"], "metrics": [1, 1, 1, 100, 0]}]),
        "{v}"
    );
    assert_eq!(
        v["query"]["date_range"],
        json!(["2025-11-14T00:00:00+05:45", "2025-11-15T23:59:59+05:45"]),
        "{v}"
    );

    let (status, v) = query(
        &c,
        base,
        &json!({"site_id": "ktm", "metrics": ["pageviews", "percentage"], "date_range": ["2025-11-14", "2025-11-15"],
                "dimensions": ["event:page"], "filters": [["contains", "event:page", ["PRIC"], {"case_sensitive": false}]]}),
        None,
    )
    .await;
    assert_eq!(
        (status, v["results"].clone()),
        (200, json!([{"dimensions": ["/pricing"], "metrics": [1, 100.0]}])),
        "{v}"
    );

    // The same as CSV.
    let csv = c
        .post(format!("{base}/api/v2/query"))
        .header("accept", "text/csv")
        .json(&json!({"site_id": "ktm", "metrics": ["visitors", "bounce_rate"], "date_range": ["2025-11-14", "2025-11-15"],
                      "dimensions": ["time:day"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.text().await.unwrap(),
        "time:day,visitors,bounce_rate\n2025-11-14,1,0\n2025-11-15,1,100\n"
    );

    // /stats and its series count Kathmandu's days and hours too.
    let get = |path: String| {
        let c = c.clone();
        async move {
            c.get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let day = get("/stats?site_id=ktm&date=2025-11-15".into()).await;
    assert_eq!(
        (day["total_views"].clone(), day["unique_users"].clone()),
        (json!(1), json!(1)),
        "{day}"
    );
    let day = get("/stats?site_id=ktm&date=2025-11-14".into()).await;
    assert_eq!(
        (day["total_views"].clone(), day["top_paths"][0]["path"].clone()),
        (json!(2), json!("/")),
        "{day}"
    );
    let series = get("/stats/timeseries?site_id=ktm&date=2025-11-15".into()).await;
    assert_eq!(series["points"][0]["start"], json!("2025-11-14T18:15:00Z"), "{series}");
    assert_eq!(series["points"][0]["views"], json!(1), "{series}");
    let rows = get("/stats/breakdown?site_id=ktm&date=2025-11-14&by=path".into()).await;
    assert_eq!(
        rows["rows"],
        json!([{"key": "/", "count": 1}, {"key": "/pricing", "count": 1}]),
        "{rows}"
    );

    // Every problem at once, each named by its path.
    let (status, v) = query(
        &c,
        base,
        &json!({"site_id": "ktm", "metrics": ["visitors", "revenue_x"], "date_range": "3d",
                "dimensions": ["visit:city"], "filters": [["is", "event:page", "/"]]}),
        None,
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let fields: Vec<&str> = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for f in ["metrics[1]", "date_range", "dimensions[0]", "filters[0][2]"] {
        assert!(fields.contains(&f), "{f} not named: {v}");
    }
    let r = c
        .post(format!("{base}/api/v2/query"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    let (status, v): (u16, Value) = (r.status().as_u16(), r.json().await.unwrap());
    assert_eq!((status, v["details"][0]["field"].clone()), (400, json!("body")), "{v}");
    let r = c.post(format!("{base}/api/v2/query")).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 415);
    api.shutdown().await;
}

#[tokio::test]
async fn reads_need_a_key_for_the_site() {
    let c = reqwest::Client::new();
    let url = format!("sqlite://{}?mode=rwc", temp_sqlite().display());
    let api = Running::api(&[
        ("database-url", &url),
        ("http-addr", "0.0.0.0:0"),
        ("key-cache-seconds", "0"),
    ])
    .await;
    let base = api.base.replace("0.0.0.0", "127.0.0.1");
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    for s in ["mine", "theirs"] {
        sites::add(&db, s, &[]).await.unwrap();
    }
    let mine = keys::create(&db, "mine", keys::Scope::Read, &["mine".to_string()])
        .await
        .unwrap();
    let body = |site: &str| json!({"site_id": site, "metrics": ["visitors"], "date_range": "7d"});
    assert_eq!(query(&c, &base, &body("mine"), None).await.0, 401);
    assert_eq!(query(&c, &base, &body("theirs"), Some(&mine)).await.0, 403);
    let (status, v) = query(&c, &base, &body("mine"), Some(&mine)).await;
    assert_eq!(
        (status, v["results"].clone()),
        (200, json!([{"dimensions": [], "metrics": [0]}])),
        "{v}"
    );
    api.shutdown().await;
}

#[tokio::test]
async fn a_range_holding_more_events_than_a_query_may_read_is_a_400() {
    let url = format!("sqlite://{}?mode=rwc", temp_sqlite().display());
    let api = Running::api(&[("database-url", &url), ("query-max-events", "2")]).await;
    let (c, base) = (reqwest::Client::new(), api.base.as_str());
    for (i, ts) in ["2025-11-14T12:00:00Z", "2025-11-14T12:10:00Z", "2025-11-14T12:20:00Z"]
        .iter()
        .enumerate()
    {
        let r = c
            .post(format!("{base}/events"))
            .json(&event("big", &format!("u{i}"), "/", ts))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let body = json!({"site_id": "big", "metrics": ["events"], "date_range": ["2025-11-14", "2025-11-14"]});
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, v) = query(&c, base, &body, None).await;
        if status == 400 {
            assert_eq!(v["details"][0]["field"], "date_range", "{v}");
            assert!(
                v["details"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("QUERY_MAX_EVENTS"),
                "{v}"
            );
            break;
        }
        // Until the third event is stored, two fit.
        assert_eq!(status, 200, "{v}");
        assert!(Instant::now() < deadline, "never refused: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A range with fewer events is answered.
    let (status, v) = query(
        &c,
        base,
        &json!({"site_id": "big", "metrics": ["events"], "date_range": ["2025-11-15", "2025-11-15"]}),
        None,
    )
    .await;
    assert_eq!((status, v["results"][0]["metrics"][0].clone()), (200, json!(0)), "{v}");
    api.shutdown().await;
}

#[tokio::test]
async fn raw_events_export_as_ndjson_and_csv() {
    let api = Running::embedded().await;
    let (c, base) = (reqwest::Client::new(), api.base.as_str());
    for (i, ts) in ["2025-11-14T12:00:00Z", "2025-11-14T12:10:00Z", "2025-11-15T09:00:00Z"]
        .iter()
        .enumerate()
    {
        let r = c
            .post(format!("{base}/events"))
            .json(&event("exp", &format!("u{i}"), "/x,y", ts))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    until_events(&c, base, "exp", 3, None).await;
    let get = |q: &str| c.get(format!("{base}/api/export/events?{q}")).send();
    let r = get("site_id=exp&from=2025-11-14&to=2025-11-14").await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("exp-2025-11-14-2025-11-14.ndjson"));
    let text = r.text().await.unwrap();
    let users: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["user_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(users, ["u0", "u1"]);
    let csv = get("site_id=exp&from=2025-11-14&to=2025-11-15&format=csv")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.lines().nth(1).unwrap().contains(",page_view,\"/x,y\",u0,"), "{csv}");
    // Into another install through the admin API: the same answers, and
    // a second upload changes nothing.
    let all = get("site_id=exp&from=2025-11-14&to=2025-11-15")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let other = Running::embedded().await;
    let upload = |body: String, q: &str| {
        c.post(format!("{}/api/admin/import?site=exp{q}", other.base))
            .body(body)
            .send()
    };
    let first: Value = upload(all.clone(), "").await.unwrap().json().await.unwrap();
    assert_eq!(
        (first["inserted"].clone(), first["duplicates"].clone()),
        (json!(3), json!(0)),
        "{first}"
    );
    let again: Value = upload(all.clone(), "").await.unwrap().json().await.unwrap();
    assert_eq!(
        (again["inserted"].clone(), again["duplicates"].clone()),
        (json!(0), json!(3)),
        "{again}"
    );
    let q = json!({"site_id": "exp", "metrics": ["visitors", "pageviews"], "dimensions": ["time:day"], "date_range": "all"});
    assert_eq!(
        query(&c, &other.base, &q, None).await.1["results"],
        query(&c, base, &q, None).await.1["results"]
    );
    let refused = upload(format!("{all}{{oops\n"), "&all_or_nothing=true").await.unwrap();
    assert_eq!(refused.status(), 422);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(
        (refused["bad"][0]["line"].clone(), refused["aborted"].clone()),
        (json!(4), json!(true)),
        "{refused}"
    );
    other.shutdown().await;

    let r = get("site_id=exp&from=2025-11-15&format=xml").await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let fields: Vec<&str> = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["to", "format"], "{v}");
    api.shutdown().await;
}

/// A sample's value on the api's `/metrics` (0 when absent).
async fn metric(ops: &str, name: &str, reason: Option<&str>) -> f64 {
    let labels: Vec<(&str, &str)> = reason.map(|r| ("reason", r)).into_iter().collect();
    super::metrics::value(&super::metrics::scrape(&format!("{ops}/metrics")).await, name, &labels).unwrap_or(0.0)
}

#[tokio::test]
async fn the_column_cache_reports_its_reads_and_memory() {
    let api = Running::embedded().await;
    let (c, base, ops) = (reqwest::Client::new(), api.base.as_str(), api.ops.as_str());
    for (user, ts) in [("a", "2025-11-14T10:00:00Z"), ("b", "2025-11-14T11:00:00Z")] {
        let r = c
            .post(format!("{base}/events"))
            .json(&event("cm", user, "/", ts))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    until_events(&c, base, "cm", 2, None).await;
    let reads = |reason| metric(ops, "analytics_query_cache_reads_total", Some(reason));
    let (hits, misses) = (reads("hit").await, reads("miss").await);
    let body = json!({"site_id": "cm", "metrics": ["visitors"], "date_range": "all"});
    for _ in 0..3 {
        assert_eq!(
            query(&c, base, &body, None).await.1["results"][0]["metrics"][0],
            json!(2)
        );
    }
    assert_eq!(reads("hit").await - hits, 3.0, "three answers from the kept columns");
    assert_eq!(reads("miss").await, misses);
    assert!(metric(ops, "analytics_query_cache_entries", None).await >= 1.0);
    assert!(metric(ops, "analytics_query_cache_bytes", None).await > 0.0);
    // Each read took the one closed day with events from the rows (its
    // count grew while the events arrived) and stored that day's block.
    let days = |reason| metric(ops, "analytics_query_day_blocks_total", Some(reason));
    let (rows, stored, blocks) = (days("rows").await, days("stored").await, days("block").await);
    assert!(
        rows >= 1.0 && stored == rows && blocks == 0.0,
        "{rows} {stored} {blocks}"
    );
    // A new event in the range: the next read is not a hit.
    let before: f64 = reads("recent").await + reads("stale").await + reads("miss").await;
    let r = c
        .post(format!("{base}/events"))
        .json(&event("cm", "c", "/", "2025-11-14T12:00:00Z"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    until_events(&c, base, "cm", 3, None).await;
    let after: f64 = reads("recent").await + reads("stale").await + reads("miss").await;
    assert!(after > before, "the changed window was read again: {before} → {after}");
    api.shutdown().await;
}
