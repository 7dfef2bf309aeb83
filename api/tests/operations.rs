//! Operating the services: readiness that follows its dependencies and
//! recovers by itself, dead letters that never block a partition, and
//! SIGTERM under load losing nothing that was acknowledged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::check::{day_stats, metric};
use support::{create_topics, kafka_brokers, migrate, KafkaStack, Service, TestDb};

async fn readyz(svc: &Service) -> (u16, Value) {
    let r = reqwest::get(format!("{}/readyz", svc.ops())).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_waits_for_the_schema_and_recovers_without_restart() {
    let db = TestDb::create().await;
    let (topic, dlq) = create_topics(1).await;
    let brokers = kafka_brokers();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("KAFKA_BROKER_URLS", brokers.as_str()),
        ("KAFKA_TOPIC", topic.as_str()),
        ("KAFKA_DLQ_TOPIC", dlq.as_str()),
    ];
    let mut api = Service::start("analytics-api", &env);
    let mut processor = Service::start("analytics-processor", &env);
    let healthz = format!("{}/healthz", api.ops());
    api.wait_ok(&healthz, Duration::from_secs(30)).await;
    let healthz = format!("{}/healthz", processor.ops());
    processor.wait_ok(&healthz, Duration::from_secs(30)).await;
    for svc in [&api, &processor] {
        let (status, body) = readyz(svc).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "not_ready");
        assert!(
            body["checks"]["schema"].as_str().unwrap().contains("not migrated"),
            "{body}"
        );
        assert_eq!(body["checks"]["database"], "ok");
        assert_eq!(body["checks"]["kafka"], "ok");
    }
    // The public port of the api answers its own probes too.
    let r = reqwest::get(format!("{}/readyz", api.base())).await.unwrap();
    assert_eq!(r.status(), 503);

    migrate(&db.url, "up");
    api.wait_ready().await;
    processor.wait_ready().await;
    assert_eq!(
        readyz(&api).await.1["checks"],
        json!({"database": "ok", "kafka": "ok", "schema": "ok"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unparsable_messages_are_dead_lettered_and_good_events_all_count() {
    let stack = KafkaStack::start(1).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .create()
        .unwrap();
    let client = reqwest::Client::new();
    let event = |i: usize| json!({"site_id": "dlq-site", "event_type": "page_view", "path": format!("/{i}"), "user_id": format!("u{i}"), "timestamp": "2025-11-15T10:00:00Z"});
    let bad_event = r#"{"event_id":"0192f0c4-3b1a-7c00-8000-000000000001","site_id":"","event_type":"x","timestamp":"2025-11-15T05:00:00Z","received_at":"2025-11-15T05:00:00Z"}"#;
    let garbage: [&[u8]; 3] = [b"\x00\xffnot json at all", b"{\"half\":", bad_event.as_bytes()];
    for (i, g) in garbage.iter().enumerate() {
        // Good events on either side of each bad message, on the same partition.
        let r = client
            .post(format!("{}/events", stack.api.base()))
            .json(&event(i))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        producer
            .send(
                FutureRecord::to(&stack.topic).key("dlq-site").payload(*g),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
    }
    let r = client
        .post(format!("{}/events/batch", stack.api.base()))
        .json(&json!([event(10), event(11)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = day_stats(&client, &stack.api.base(), "dlq-site", "2025-11-15").await;
        if stats["total_views"] == 5 {
            assert_eq!(stats["unique_users"], 5);
            break;
        }
        assert!(Instant::now() < deadline, "good events not all counted: {stats}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        metric(
            &format!("{}/metrics", stack.processor.ops()),
            "analytics_processor_dead_lettered_total"
        )
        .await,
        3.0
    );

    // The dead-letter topic holds the three payloads, unchanged, with reasons.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("group.id", "dlq-reader")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&stack.dlq, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 3 && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            let headers = m.headers().unwrap();
            let reason = headers
                .iter()
                .find(|h| h.key == "dlq-reason")
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap();
            seen.push((m.payload().unwrap().to_vec(), reason));
        }
    }
    assert_eq!(seen.len(), 3, "dead letters found: {seen:?}");
    for (g, (payload, reason)) in garbage.iter().zip(&seen) {
        assert_eq!(payload.as_slice(), *g);
        assert!(!reason.is_empty());
    }
    assert!(seen[2].1.contains("site_id"), "{}", seen[2].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_keeps_every_acknowledged_event() {
    let mut stack = KafkaStack::start(3).await;
    let url = format!("{}/events/batch", stack.api.base());
    let client = reqwest::Client::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for worker in 0..4 {
        let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) || n > 2000 {
                    break;
                }
                let ids: Vec<String> = (0..50).map(|_| uuid::Uuid::new_v4().to_string()).collect();
                let body: Vec<Value> = ids.iter().map(|id| json!({"event_id": id, "site_id": format!("term-{worker}"), "event_type": "page_view", "path": "/", "timestamp": "2025-11-15T10:00:00Z"})).collect();
                match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status() == 202 => acked.extend(ids),
                    _ => {}
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stack.api.sigterm();
    let status = tokio::task::spawn_blocking(move || {
        let s = stack.api.child.wait().unwrap();
        (s, stack)
    })
    .await
    .unwrap();
    let (exit, mut stack) = status;
    assert!(exit.success(), "api exit on SIGTERM: {exit}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for s in senders {
        acked.extend(s.await.unwrap());
    }
    assert!(
        acked.len() >= 500,
        "load too light to mean anything: {} events acknowledged",
        acked.len()
    );

    let db = stack.db.connect().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let ids: Vec<uuid::Uuid> = acked.iter().map(|s| s.parse().unwrap()).collect();
    loop {
        let mut found = 0;
        for chunk in ids.chunks(1000) {
            found += entity::events::Entity::find()
                .filter(entity::events::Column::EventId.is_in(chunk.to_vec()))
                .count(&db)
                .await
                .unwrap();
        }
        if found == ids.len() as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{found} of {} acknowledged events stored",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stack.processor.sigterm();
    let exit = tokio::task::spawn_blocking(move || stack.processor.child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "processor exit on SIGTERM: {exit}");
    println!("sigterm: {} acknowledged events, all stored", ids.len());
}
