//! The processor in-process against the real broker and PostgreSQL: what
//! it does with messages that reach the topic without passing the api.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::check::{day_stats, metric};
use testkit::inproc::Stack;
use testkit::kafka::kafka_brokers;

#[tokio::test(flavor = "multi_thread")]
async fn unparsable_messages_are_dead_lettered_and_good_events_all_count() {
    let stack = Stack::start(1).await;
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
            .post(format!("{}/events", stack.api.base))
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
        .post(format!("{}/events/batch", stack.api.base))
        .json(&json!([event(10), event(11)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = day_stats(&client, &stack.api.base, "dlq-site", "2025-11-15").await;
        if stats["total_views"] == 5 {
            assert_eq!(stats["unique_users"], 5);
            break;
        }
        assert!(Instant::now() < deadline, "good events not all counted: {stats}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        metric(
            &format!("{}/metrics", stack.processor.ops),
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
