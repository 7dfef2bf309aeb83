//! Slow clients cannot starve the api: 500 connections that send part of
//! their headers and stall are each closed by the header timeout, while
//! normal ingest beside them goes on.

use serde_json::json;
use std::time::{Duration, Instant};
use testkit::check::metric;
use testkit::db::temp_sqlite;
use testkit::process::Service;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SLOW: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_connections_are_closed_by_their_timeout_while_ingest_goes_on() {
    let url = format!("sqlite://{}?mode=rwc", temp_sqlite().display());
    let mut api = Service::start(
        "analytics-api",
        &[("DATABASE_URL", &url), ("HTTP_HEADER_TIMEOUT_SECONDS", "2")],
    );
    api.wait_ready().await;
    let addr = format!("127.0.0.1:{}", api.http);

    let opened = Instant::now();
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(s);
    }

    // Normal clients are served the whole time.
    let c = reqwest::Client::new();
    let mut accepted = 0;
    while opened.elapsed() < Duration::from_secs(4) {
        let ev = json!({"site_id": "s", "event_type": "page_view", "path": "/", "timestamp": "2025-11-15T05:00:00Z"});
        let r = c
            .post(format!("{}/events", api.base()))
            .json(&ev)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        accepted += 1;
    }
    assert!(accepted > 20, "only {accepted} events in 4 s beside the slow clients");

    // Every slow connection has been closed by the server.
    let mut closed = 0;
    for s in &mut slow {
        // The server's end of it: read until it closes (EOF, or reset).
        let mut rest = Vec::new();
        if tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
            .await
            .is_ok()
        {
            closed += 1;
        }
    }
    assert_eq!(closed, SLOW, "slow connections still open");
    let timeouts = metric(
        &format!("{}/metrics", api.ops()),
        "analytics_http_header_timeouts_total",
    )
    .await;
    assert!(timeouts >= SLOW as f64, "{timeouts} header timeouts counted");
    let stats: serde_json::Value = c
        .get(format!("{}/stats?site_id=s&date=2025-11-15", api.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total_events"], accepted, "{stats}");
    println!("slow clients: {SLOW} closed by the header timeout, {accepted} events accepted beside them");
}
