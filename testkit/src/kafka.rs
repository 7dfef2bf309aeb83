//! A Kafka topic (and its dead-letter topic) per test, on the broker at
//! `TEST_KAFKA_BROKERS` (default 127.0.0.1:9092).

use crate::db::unique_name;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use std::time::Duration;

pub fn kafka_brokers() -> String {
    std::env::var("TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A fresh topic (and its dead-letter topic) for one test.
pub async fn create_topics(partitions: i32) -> (String, String) {
    let topic = unique_name("events");
    let dlq = format!("{topic}.dlq");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .create()
        .unwrap();
    let specs = [
        NewTopic::new(&topic, partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&dlq, 1, TopicReplication::Fixed(1)),
    ];
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = tokio::time::timeout(Duration::from_secs(20), admin.create_topics(&specs, &opts))
        .await
        .unwrap_or_else(|_| panic!("a Kafka-protocol broker is required at {}", kafka_brokers()))
        .unwrap_or_else(|e| panic!("a Kafka-protocol broker is required at {}: {e}", kafka_brokers()));
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
    (topic, dlq)
}
