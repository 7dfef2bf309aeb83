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

/// The dead letters of `dlq`, read from the start: (payload, reason).
async fn dead_letters(dlq: &str, want: usize) -> Vec<(Vec<u8>, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("group.id", format!("dlq-reader-{dlq}"))
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(dlq, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            let reason = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "dlq-reason").and_then(|h| h.value))
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            seen.push((m.payload().unwrap_or_default().to_vec(), reason));
        }
    }
    seen
}

async fn produce(topic: &str, payload: &[u8]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(topic).key("poison-site").payload(payload),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
}

async fn wait_for_views(client: &reqwest::Client, base: &str, site: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = day_stats(client, base, site, "2025-11-15").await;
        if stats["total_views"] == want {
            return;
        }
        assert!(Instant::now() < deadline, "views of {site} not {want}: {stats}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn good(i: usize) -> serde_json::Value {
    json!({"site_id": "poison-site", "event_type": "page_view", "path": format!("/{i}"), "user_id": format!("u{i}"), "timestamp": "2025-11-15T10:00:00Z"})
}

/// A message with byte 0 in its text, produced straight onto the topic
/// (never through the api), which PostgreSQL would refuse: it ends in the
/// dead-letter topic and the events around it are all counted; the
/// partition never stalls.
#[tokio::test(flavor = "multi_thread")]
async fn a_nul_message_produced_onto_the_topic_is_dead_lettered_and_nothing_stalls() {
    let stack = Stack::start(1).await;
    let client = reqwest::Client::new();
    let nul = r#"{"event_id":"0192f0c4-3b1a-7c00-8000-0000000000d0","site_id":"poison-site","event_type":"page_view","path":"/a\u0000b","user_id":"","timestamp":"2025-11-15T10:00:00Z","received_at":"2025-11-15T10:00:00Z"}"#;
    let nul_prop = r#"{"event_id":"0192f0c4-3b1a-7c00-8000-0000000000d1","site_id":"poison-site","event_type":"page_view","path":"/p","user_id":"","timestamp":"2025-11-15T10:00:00Z","received_at":"2025-11-15T10:00:00Z","props":{"k":"v\u0000"}}"#;
    for (i, bad) in [nul, nul_prop].iter().enumerate() {
        let r = client
            .post(format!("{}/events", stack.api.base))
            .json(&good(i))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        produce(&stack.topic, bad.as_bytes()).await;
    }
    let r = client
        .post(format!("{}/events", stack.api.base))
        .json(&good(9))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_for_views(&client, &stack.api.base, "poison-site", 3).await;
    let seen = dead_letters(&stack.dlq, 2).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, nul.as_bytes());
    assert!(
        seen[0].1.contains("path") && seen[0].1.contains("U+0000"),
        "{}",
        seen[0].1
    );
    assert!(seen[1].1.contains("props.k"), "{}", seen[1].1);
}

/// A batch the database refuses for one event's data (here a CHECK
/// constraint the test adds, standing for any data error) is split until
/// that event stands alone: it goes to the dead-letter topic with the
/// database's reason, every other event of the batch is written, and the
/// pipeline goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_the_database_refuses_is_split_and_only_the_refused_event_is_dead_lettered() {
    let stack = Stack::start_with(1, &[], &[("batch-max-wait-ms", "1000")]).await;
    let db = stack.db.connect().await;
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        "ALTER TABLE events ADD CONSTRAINT no_poison CHECK (path <> '/poison')",
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let mut batch: Vec<serde_json::Value> = (0..40).map(good).collect();
    batch[17]["path"] = json!("/poison");
    let r = client
        .post(format!("{}/events/batch", stack.api.base))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_for_views(&client, &stack.api.base, "poison-site", 39).await;
    let seen = dead_letters(&stack.dlq, 1).await;
    assert_eq!(seen.len(), 1);
    let refused: serde_json::Value = serde_json::from_slice(&seen[0].0).unwrap();
    assert_eq!(refused["path"], "/poison");
    assert!(seen[0].1.contains("no_poison"), "{}", seen[0].1);
    let ops = format!("{}/metrics", stack.processor.ops);
    assert_eq!(metric(&ops, "analytics_processor_refused_total").await, 1.0);
    // And the next batch goes through.
    let r = client
        .post(format!("{}/events", stack.api.base))
        .json(&good(99))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_for_views(&client, &stack.api.base, "poison-site", 40).await;
}

/// Batches are bounded in bytes as well as in messages: with room for
/// about twenty payloads of ~220 bytes a batch, 300 events make at least
/// 12 batches, however long a batch may wait to fill (without the bound:
/// one).
#[tokio::test(flavor = "multi_thread")]
async fn batches_close_at_their_byte_bound() {
    let stack = Stack::start_with(1, &[], &[("batch-max-bytes", "4096"), ("batch-max-wait-ms", "2000")]).await;
    let client = reqwest::Client::new();
    let batch: Vec<serde_json::Value> = (0..300).map(good).collect();
    let r = client
        .post(format!("{}/events/batch", stack.api.base))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_for_views(&client, &stack.api.base, "poison-site", 300).await;
    let ops = format!("{}/metrics", stack.processor.ops);
    let batches = metric(&ops, "analytics_processor_batch_size_count").await;
    assert_eq!(metric(&ops, "analytics_processor_batch_size_sum").await, 300.0);
    assert!(
        batches >= 12.0,
        "{batches} batches for 300 events under 4096 bytes a batch"
    );
}
