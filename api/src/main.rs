//! `analytics-api`: see the library (`analytics_api::Application`).

use analytics_api::{ApiConfig, Application};
use analytics_core::ops::config::parse_or_exit;
use analytics_core::ops::{shutdown, telemetry};

/// glibc malloc was a sixth of the api's CPU under ingest load (arena
/// locks, consolidation); mimalloc's per-thread heaps avoid most of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cfg: ApiConfig = parse_or_exit();
    if !cfg.is_embedded() && cfg.database_url.is_none() {
        eprintln!("DATABASE_URL is required when KAFKA_BROKER_URLS is set (stats are read from PostgreSQL)");
        std::process::exit(2);
    }
    let telemetry = telemetry::init_with(
        cfg.telemetry.log_format,
        false,
        "analytics-api",
        cfg.telemetry.otlp_endpoint.as_deref(),
    );
    let result = match Application::build(cfg).await {
        Ok(app) => app.run_until(shutdown::signal()).await,
        Err(e) => Err(e),
    };
    telemetry.shutdown();
    if let Err(e) = result {
        tracing::error!(error = format!("{e:#}"), "analytics-api failed");
        eprintln!("analytics-api: {e:#}");
        std::process::exit(1);
    }
}
