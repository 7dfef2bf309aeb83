//! Faults under load, with exact counts afterwards: every event that got a
//! 202 is stored once, none twice, and the rollups agree with the raw
//! events. PostgreSQL restarted mid-ingest (a server of the test's own),
//! the processor killed with SIGKILL every few seconds for a minute, the
//! api killed with SIGKILL, and the broker unreachable for a while.

use std::time::{Duration, Instant};
use testkit::check::assert_exactly_once;
use testkit::db::{migrate_up, unique_name, TestDb};
use testkit::kafka::{create_topics, kafka_brokers};
use testkit::load;
use testkit::outage::{Broker, Proxy};
use testkit::postgres::PrivatePostgres;
use testkit::process::{free_port, KafkaStack, Service};

const DRAIN: Duration = Duration::from_secs(120);

fn kafka_env<'a>(
    db: &'a str,
    brokers: &'a str,
    topic: &'a str,
    dlq: &'a str,
    group: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("DATABASE_URL", db),
        ("KAFKA_BROKER_URLS", brokers),
        ("KAFKA_TOPIC", topic),
        ("KAFKA_DLQ_TOPIC", dlq),
        ("KAFKA_GROUP_ID", group),
        ("INGEST_TIMEOUT_MS", "3000"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_during_kafka_ingest_loses_nothing() {
    let pg = PrivatePostgres::start();
    pg.wait_listening();
    let url = pg.url();
    migrate_up(&url).await;
    let (topic, dlq) = create_topics(2).await;
    let (brokers, group) = (kafka_brokers(), unique_name("group"));
    let env = kafka_env(&url, &brokers, &topic, &dlq, &group);
    let mut api = Service::start("analytics-api", &env);
    let mut processor = Service::start("analytics-processor", &env);
    api.wait_ready().await;
    processor.wait_ready().await;

    let load = load::start(api.base(), "pg-restart", 4, 50, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = load.acknowledged();
    pg.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.restart();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let acked = load.stop().await;
    assert!(acked.len() > before, "ingest went on through the restarts");
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    let stored = assert_exactly_once(&db, &api.base(), "pg-restart", &acked, DRAIN).await;
    println!(
        "postgres restarted twice: {} acknowledged, {stored} stored, exact",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processor_killed_every_few_seconds_for_a_minute_loses_nothing() {
    let mut stack = KafkaStack::start(3).await;
    let load = load::start(stack.api.base(), "proc-kill", 4, 50, Duration::from_millis(20));
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(3000 + 700 * (kills % 3))).await;
        stack.processor.kill9();
        kills += 1;
        stack.processor.restart();
    }
    let acked = load.stop().await;
    let db = stack.db.connect().await;
    let stored = assert_exactly_once(&db, &stack.api.base(), "proc-kill", &acked, DRAIN).await;
    assert!(kills >= 12, "{kills} kills");
    println!(
        "processor SIGKILLed {kills} times in 60 s: {} acknowledged, {stored} stored, exact",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_killed_under_load_loses_no_acknowledged_event() {
    let mut stack = KafkaStack::start(3).await;
    let load = load::start(stack.api.base(), "api-kill", 4, 50, Duration::from_millis(20));
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        stack.api.kill9();
        stack.api.restart();
        stack.api.wait_ready().await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let failures = load.failures.load(std::sync::atomic::Ordering::Relaxed);
    let acked = load.stop().await;
    let db = stack.db.connect().await;
    let stored = assert_exactly_once(&db, &stack.api.base(), "api-kill", &acked, DRAIN).await;
    assert!(failures > 0, "the kills were felt by the clients");
    println!(
        "api SIGKILLed 3 times: {} acknowledged ({failures} requests failed and were resent), {stored} stored, exact",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_under_load_loses_no_acknowledged_event() {
    let db = TestDb::migrated().await;
    let (bport, kport) = (free_port(), free_port());
    let topic = unique_name("outage");
    let dlq = format!("{topic}.dlq");
    let proxy = Proxy::start(kport, bport).await;
    let _broker = Broker::start(bport, kport, &[&topic, &dlq]).await;
    let brokers = format!("127.0.0.1:{kport}");
    let group = unique_name("group");
    let env = kafka_env(&db.url, &brokers, &topic, &dlq, &group);
    let mut api = Service::start("analytics-api", &env);
    let mut processor = Service::start("analytics-processor", &env);
    api.wait_ready().await;
    processor.wait_ready().await;

    let load = load::start(api.base(), "outage", 4, 50, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during = load.acknowledged();
    let _proxy = Proxy::start(kport, bport).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while load.acknowledged() == during {
        assert!(Instant::now() < deadline, "ingest did not resume after the outage");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failures = load.failures.load(std::sync::atomic::Ordering::Relaxed);
    let acked = load.stop().await;
    let conn = db.connect().await;
    let stored = assert_exactly_once(&conn, &api.base(), "outage", &acked, DRAIN).await;
    assert!(failures > 0, "the outage was felt: requests were refused, then resent");
    println!(
        "broker unreachable 6 s: {} acknowledged ({failures} refused and resent), {stored} stored, exact",
        acked.len()
    );
}
