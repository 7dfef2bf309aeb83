//! Kafka client settings shared by the api (producer) and the processor
//! (consumer, dead-letter producer).

use super::config::KafkaArgs;
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaResult;
use rdkafka::producer::FutureProducer;
use std::time::Duration;

/// How long a metadata request (readiness) may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// Header that carries why a message was dead-lettered.
pub const DLQ_REASON_HEADER: &str = "dlq-reason";

pub fn base_config(args: &KafkaArgs, brokers: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers)
        .set("security.protocol", args.security_protocol.as_librdkafka())
        .set("socket.keepalive.enable", "true");
    if let Some(m) = &args.sasl_mechanism {
        cfg.set("sasl.mechanism", m);
    }
    if let Some(u) = &args.sasl_username {
        cfg.set("sasl.username", u);
    }
    if let Some(p) = &args.sasl_password {
        cfg.set("sasl.password", p);
    }
    if let Some(ca) = &args.ssl_ca_location {
        cfg.set("ssl.ca.location", ca);
    }
    cfg
}

/// A producer that only reports success once every in-sync replica has the
/// message (acks=all) and never duplicates on its own retries (idempotence).
pub fn producer(
    args: &KafkaArgs,
    brokers: &str,
    delivery_timeout: Duration,
    queue_messages: u32,
    queue_kbytes: u32,
) -> KafkaResult<FutureProducer> {
    base_config(args, brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        // The lowest of DESIGN.md's 5–20 ms: a single event waits for its
        // ack, so the linger is most of its latency (bench/README.md).
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", queue_messages.to_string())
        .set("queue.buffering.max.kbytes", queue_kbytes.to_string())
        .set("message.timeout.ms", delivery_timeout.as_millis().to_string())
        .create()
}

/// Consumer settings: offsets are stored and committed by hand, after the
/// batch's transaction. The short session timeout is what lets groups form
/// promptly on brokers such as tansu, and fails a dead member over quickly.
/// `fetch_kbytes` bounds what librdkafka fetches ahead, in memory.
pub fn consumer_config(args: &KafkaArgs, brokers: &str, group_id: &str, fetch_kbytes: u32) -> ClientConfig {
    let mut cfg = base_config(args, brokers);
    cfg.set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("enable.partition.eof", "false")
        .set("queued.max.messages.kbytes", fetch_kbytes.to_string())
        .set(
            "fetch.max.bytes",
            (u64::from(fetch_kbytes) * 1024)
                .clamp(1_048_576, 52_428_800)
                .to_string(),
        );
    cfg
}

/// Blocking: asks the brokers for `topic`'s metadata. Ok when a broker
/// answers in time and the topic has partitions.
pub fn topic_available<C: ClientContext>(client: &Client<C>, topic: &str) -> Result<(), String> {
    let md = client
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| format!("kafka: {e}"))?;
    match md.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
        _ => Err(format!("kafka: topic `{topic}` not found")),
    }
}
