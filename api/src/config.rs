//! The api's settings (environment variable or flag each).

use analytics_core::ops::config::{parse_database_url, KafkaArgs, TelemetryArgs};
use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;

pub const EMBEDDED_DATABASE_URL: &str = "sqlite://analytics.db?mode=rwc";

#[derive(Debug, Clone, Parser)]
#[command(name = "analytics-api", version, about = "Analytics ingest, stats API and dashboard")]
pub struct ApiConfig {
    #[arg(long, env = "HTTP_ADDR", value_name = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// PostgreSQL in Kafka mode; defaults to a SQLite file in embedded mode.
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL", value_parser = parse_database_url)]
    pub database_url: Option<String>,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Longest a request waits for its events to be durable (broker ack, or
    /// the embedded commit) before it is answered 503.
    #[arg(
        long,
        env = "INGEST_TIMEOUT_MS",
        value_name = "INGEST_TIMEOUT_MS",
        default_value = "5000"
    )]
    pub ingest_timeout_ms: u64,
    /// Bound on messages waiting in the producer; beyond it requests get 503.
    #[arg(
        long,
        env = "KAFKA_QUEUE_MESSAGES",
        value_name = "KAFKA_QUEUE_MESSAGES",
        default_value = "200000"
    )]
    pub kafka_queue_messages: u32,
    /// Largest group commit in embedded mode, in events.
    #[arg(
        long,
        env = "EMBEDDED_BATCH_EVENTS",
        value_name = "EMBEDDED_BATCH_EVENTS",
        default_value = "10000"
    )]
    pub embedded_batch_events: usize,
}

impl ApiConfig {
    pub fn ingest_timeout(&self) -> Duration {
        Duration::from_millis(self.ingest_timeout_ms)
    }

    pub fn is_embedded(&self) -> bool {
        self.kafka.broker_urls.is_none()
    }
}
