//! `analytics-processor`: consumes the events topic and folds each batch
//! into PostgreSQL (see the library, `analytics_processor::Processor`).

use analytics_core::ops::config::parse_or_exit;
use analytics_core::ops::{shutdown, telemetry};
use analytics_processor::{Processor, ProcessorConfig};

/// glibc malloc was a sixth of the api's CPU under ingest load (arena
/// locks, consolidation); mimalloc's per-thread heaps avoid most of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cfg: ProcessorConfig = parse_or_exit();
    if cfg.kafka.broker_urls.is_none() {
        eprintln!("KAFKA_BROKER_URLS is required: the processor consumes from Kafka");
        std::process::exit(2);
    }
    let telemetry = telemetry::init_with(
        cfg.telemetry.log_format,
        false,
        "analytics-processor",
        cfg.telemetry.otlp_endpoint.as_deref(),
    );
    let result = match Processor::build(cfg).await {
        Ok(p) => p.run_until(shutdown::signal()).await,
        Err(e) => Err(e),
    };
    telemetry.shutdown();
    if let Err(e) = result {
        tracing::error!(error = format!("{e:#}"), "analytics-processor failed");
        eprintln!("analytics-processor: {e:#}");
        std::process::exit(1);
    }
}
