//! The limits a public server needs, each against the real router:
//! rate limits per client address (under the trusted-proxy rule) and per
//! site, load shedding past the in-flight limit, the cap on connections,
//! and the body timeout.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::check::metric;
use testkit::db::temp_sqlite;
use testkit::inproc::Running;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn sqlite() -> String {
    format!("sqlite://{}?mode=rwc", temp_sqlite().display())
}

fn event(site: &str) -> Value {
    json!({"site_id": site, "event_type": "page_view", "path": "/", "timestamp": "2025-11-15T05:00:00Z"})
}

async fn post(c: &reqwest::Client, base: &str, forwarded_for: Option<&str>, body: &Value) -> (u16, Option<String>) {
    let mut req = c.post(format!("{base}/events")).json(body);
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    let r = req.send().await.unwrap();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), retry)
}

#[tokio::test]
async fn a_flood_from_one_address_is_limited_while_another_is_served() {
    let db = sqlite();
    let api = Running::api(&[
        ("database-url", &db),
        ("trusted-proxies", "127.0.0.1/32"),
        ("rate-limit-address-per-second", "5"),
        ("rate-limit-address-burst", "5"),
    ])
    .await;
    let c = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(post(&c, &api.base, Some("203.0.113.7"), &event("s")).await);
    }
    let accepted = statuses.iter().filter(|(s, _)| *s == 202).count();
    let limited: Vec<&(u16, Option<String>)> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(
        (5..=7).contains(&accepted),
        "burst of 5 (and what refilled): {statuses:?}"
    );
    assert_eq!(accepted + limited.len(), 20, "{statuses:?}");
    assert!(limited
        .iter()
        .all(|(_, r)| r.as_deref().is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s >= 1))));
    // Another client behind the same trusted proxy is served.
    assert_eq!(post(&c, &api.base, Some("198.51.100.9"), &event("s")).await.0, 202);
    let limited_metric = metric(
        &format!("{}/metrics", api.ops),
        "analytics_rate_limited_total{scope=\"address\"}",
    )
    .await;
    assert_eq!(limited_metric as usize, limited.len());
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_change_nothing() {
    let api = Running::api(&[
        ("database-url", &sqlite()),
        ("rate-limit-address-per-second", "3"),
        ("rate-limit-address-burst", "3"),
    ])
    .await;
    let c = reqwest::Client::new();
    let mut accepted = 0;
    for i in 0..12 {
        // A new address claimed each time: not believed, all one client.
        let claimed = format!("192.0.2.{i}");
        if post(&c, &api.base, Some(&claimed), &event("s")).await.0 == 202 {
            accepted += 1;
        }
    }
    assert!((3..=5).contains(&accepted), "{accepted} accepted");
}

#[tokio::test]
async fn a_site_over_its_event_rate_gets_429_naming_it_and_others_are_served() {
    let api = Running::api(&[
        ("database-url", &sqlite()),
        ("rate-limit-site-events-per-second", "1"),
        ("rate-limit-site-burst", "10"),
    ])
    .await;
    let c = reqwest::Client::new();
    let batch: Vec<Value> = (0..10).map(|_| event("busy")).collect();
    let r = c
        .post(format!("{}/events/batch", api.base))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = c
        .post(format!("{}/events", api.base))
        .json(&event("busy"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("`busy`"), "{body}");
    // A batch with the busy site and another: refused whole.
    let r = c
        .post(format!("{}/events/batch", api.base))
        .json(&json!([event("quiet"), event("busy")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(post(&c, &api.base, None, &event("quiet")).await.0, 202);
    let stats: Value = c
        .get(format!("{}/stats?site_id=quiet&date=2025-11-15", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["total_events"], 1,
        "nothing of the refused batch was kept: {stats}"
    );
}

/// A POST whose body is declared long and never comes: the request stays
/// in flight until the body timeout.
async fn stalled_post(base: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{\"site_id\":",
    )
    .await
    .unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_limit_requests_are_shed_with_503() {
    let api = Running::api(&[
        ("database-url", &sqlite()),
        ("http-max-in-flight", "2"),
        ("http-body-timeout-seconds", "3"),
    ])
    .await;
    let _held = [stalled_post(&api.base).await, stalled_post(&api.base).await];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = reqwest::Client::new();
    let started = Instant::now();
    let (status, retry) = post(&c, &api.base, None, &event("s")).await;
    assert_eq!(status, 503);
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(started.elapsed() < Duration::from_secs(1), "shed at once, not queued");
    assert!(metric(&format!("{}/metrics", api.ops), "analytics_http_shed_total").await >= 1.0);
    // Health answers whatever the load.
    let r = c.get(format!("{}/healthz", api.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Once the stalled bodies time out, requests are served again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(post(&c, &api.base, None, &event("s")).await.0, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_gets_408_and_the_connection_ends() {
    let api = Running::api(&[("database-url", &sqlite()), ("http-body-timeout-seconds", "1")]).await;
    let mut s = stalled_post(&api.base).await;
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server never closed the stalled request");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_client_waits_until_one_closes() {
    let api = Running::api(&[("database-url", &sqlite()), ("http-max-connections", "3")]).await;
    let addr = api.base.trim_start_matches("http://").to_string();
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        // A request each, so the server has surely accepted them.
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        open.push(s);
    }
    let c = reqwest::Client::new();
    let waiting = tokio::time::timeout(
        Duration::from_millis(800),
        c.get(format!("{}/healthz", api.base)).send(),
    )
    .await;
    assert!(waiting.is_err(), "a fourth connection was served past the cap");
    assert!(
        metric(
            &format!("{}/metrics", api.ops),
            "analytics_http_connection_limit_reached_total"
        )
        .await
            >= 1.0
    );
    drop(open.pop());
    let served = tokio::time::timeout(Duration::from_secs(5), c.get(format!("{}/healthz", api.base)).send()).await;
    assert!(served.is_ok_and(|r| r.is_ok_and(|r| r.status() == 200)));
}
