//! Dependencies going away and coming back: the api answers 503 with
//! Retry-After (never 202, never a hang) while its broker is down, readiness
//! of both services follows the broker and PostgreSQL, and everything
//! recovers by itself. Uses a broker of its own (so other tests keep theirs)
//! and TCP proxies in front of it and of PostgreSQL that the test cuts.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::check::{day_stats, post_event};
use testkit::db::{unique_name, TestDb};
use testkit::outage::{Broker, Proxy};
use testkit::process::{free_port, Service};

async fn readyz(svc: &Service) -> (u16, Value) {
    let r = reqwest::get(format!("{}/readyz", svc.ops())).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn wait_readyz(svc: &Service, want: u16, check: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = readyz(svc).await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {status} (want {want} for {check}): {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_and_database_outages_give_503_and_recover_by_themselves() {
    let db = TestDb::migrated().await;
    let (bport, kport, pport) = (free_port(), free_port(), free_port());
    let topic = unique_name("bp");
    let dlq = format!("{topic}.dlq");
    let kafka_proxy = Proxy::start(kport, bport).await;
    let _broker = Broker::start(bport, kport, &[&topic, &dlq]).await;
    let proxy = Proxy::start(pport, 5432).await;
    let proxied = db.url.replace("127.0.0.1:5432", &format!("127.0.0.1:{pport}"));
    assert_ne!(proxied, db.url, "the test database URL must point at 127.0.0.1:5432");
    let brokers = format!("127.0.0.1:{kport}");
    let env = [
        ("DATABASE_URL", proxied.as_str()),
        ("KAFKA_BROKER_URLS", brokers.as_str()),
        ("KAFKA_TOPIC", topic.as_str()),
        ("KAFKA_DLQ_TOPIC", dlq.as_str()),
        ("INGEST_TIMEOUT_MS", "2000"),
    ];
    let mut api = Service::start("analytics-api", &env);
    let mut processor = Service::start("analytics-processor", &env);
    api.wait_ready().await;
    processor.wait_ready().await;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let event = json!({"site_id": "bp", "event_type": "page_view", "path": "/", "timestamp": "2025-11-15T10:00:00Z"});
    let base = api.base();
    let post = || post_event(&client, &base, &event);
    assert_eq!(post().await.0, 202);
    wait_views(&client, &api, 1).await;

    // Broker unreachable: 503 with Retry-After, bounded by INGEST_TIMEOUT_MS; not ready.
    kafka_proxy.cut();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, retry_after) = post().await;
        assert_eq!(status, 503, "an event the broker cannot take must not get 202");
        assert_eq!(retry_after.as_deref(), Some("1"));
        println!("503 while the broker is down after {:?}", started.elapsed());
    }
    let body = wait_readyz(&api, 503, "broker down").await;
    assert_ne!(body["checks"]["kafka"], "ok", "{body}");
    wait_readyz(&processor, 503, "broker down").await;

    // Broker back: ingestion and readiness resume without a restart.
    let _kafka_proxy = Proxy::start(kport, bport).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while post().await.0 != 202 {
        assert!(
            Instant::now() < deadline,
            "ingestion did not resume after the broker came back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_readyz(&api, 200, "broker back").await;
    wait_readyz(&processor, 200, "broker back").await;

    // PostgreSQL unreachable: both services not ready, with the reason.
    proxy.cut();
    let body = wait_readyz(&api, 503, "database down").await;
    assert_ne!(body["checks"]["database"], "ok", "{body}");
    let body = wait_readyz(&processor, 503, "database down").await;
    assert_ne!(body["checks"]["database"], "ok", "{body}");
    let r = client
        .get(format!("{}/stats?site_id=bp&date=2025-11-15", api.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "stats without a database is a retryable 503");

    let _proxy = Proxy::start(pport, 5432).await;
    wait_readyz(&api, 200, "database back").await;
    wait_readyz(&processor, 200, "database back").await;
    // Every acknowledged event is counted once the processor catches up.
    wait_views(&client, &api, 2).await;
}

async fn wait_views(client: &reqwest::Client, api: &Service, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = day_stats(client, &api.base(), "bp", "2025-11-15").await;
        if s["total_views"].as_i64() == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "want {want} views: {s}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_mode_answers_503_while_the_database_cannot_commit() {
    use sea_orm::{ConnectionTrait, Database};
    let file = testkit::db::temp_sqlite();
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let mut api = Service::start(
        "analytics-api",
        &[("DATABASE_URL", &url), ("INGEST_TIMEOUT_MS", "1000")],
    );
    api.wait_ready().await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let event = json!({"site_id": "lock", "event_type": "page_view", "timestamp": "2025-11-15T10:00:00Z"});
    let base = api.base();
    let post = || post_event(&client, &base, &event);
    assert_eq!(post().await.0, 202);

    // Another connection holds the write lock: nothing can commit.
    let locker = Database::connect(url.as_str()).await.unwrap();
    locker.execute_unprepared("BEGIN EXCLUSIVE").await.unwrap();
    let (status, retry_after) = post().await;
    assert_eq!(
        (status, retry_after.as_deref()),
        (503, Some("1")),
        "an event that cannot be committed must not get 202"
    );
    locker.execute_unprepared("COMMIT").await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    while post().await.0 != 202 {
        assert!(
            Instant::now() < deadline,
            "ingestion did not resume once the lock was released"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s = day_stats(&client, &api.base(), "lock", "2025-11-15").await;
    // Two 202s for sure; the 503'd one may have committed after its deadline
    // (the client would resend it with its event_id to stay exact).
    let views = s["total_views"].as_i64().unwrap();
    assert!((2..=3).contains(&views), "{s}");
}
