//! The processor's settings (environment variable or flag each).

use analytics_core::ops::config::{DatabaseUrl, KafkaArgs, RetentionArgs, TelemetryArgs};
use clap::Parser;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "analytics-processor",
    version,
    about = "Folds events from Kafka into PostgreSQL"
)]
pub struct ProcessorConfig {
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL", hide_env_values = true, value_parser = DatabaseUrl::parse)]
    pub database_url: DatabaseUrl,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[arg(
        long,
        env = "KAFKA_GROUP_ID",
        value_name = "KAFKA_GROUP_ID",
        default_value = "processor-group"
    )]
    pub group_id: String,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// A batch is written when it holds this many messages…
    #[arg(
        long,
        env = "BATCH_MAX_EVENTS",
        value_name = "BATCH_MAX_EVENTS",
        default_value = "10000"
    )]
    pub batch_max_events: usize,
    /// …or when its first message has waited this long.
    #[arg(
        long,
        env = "BATCH_MAX_WAIT_MS",
        value_name = "BATCH_MAX_WAIT_MS",
        default_value = "100"
    )]
    pub batch_max_wait_ms: u64,
    /// …or when its messages hold this many payload bytes. Each lane holds
    /// at most two batches' worth (the one written, the one collected).
    #[arg(
        long,
        env = "BATCH_MAX_BYTES",
        value_name = "BATCH_MAX_BYTES",
        default_value = "16777216",
        value_parser = positive
    )]
    pub batch_max_bytes: usize,
    /// Bound on the messages the consumer fetches ahead (KiB; librdkafka's
    /// `queued.max.messages.kbytes`).
    #[arg(
        long,
        env = "KAFKA_FETCH_MAX_KBYTES",
        value_name = "KAFKA_FETCH_MAX_KBYTES",
        default_value = "16384",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub kafka_fetch_max_kbytes: u32,
    /// Batches written at once, each by its own lane owning a share of the
    /// partitions (1 to 8).
    #[arg(
        long,
        env = "WRITER_LANES",
        value_name = "WRITER_LANES",
        default_value = "2",
        value_parser = clap::value_parser!(u8).range(1..=8)
    )]
    pub writer_lanes: u8,
}

impl ProcessorConfig {
    pub fn batch_max_wait(&self) -> Duration {
        Duration::from_millis(self.batch_max_wait_ms)
    }
}

/// A whole number of at least 1.
fn positive(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("must be a whole number of at least 1".into()),
    }
}
