//! Running as a service: configuration, health, metrics, logs and traces,
//! shutdown, Kafka client settings. Imports nothing else of the crate.

pub mod config;
pub mod health;
pub mod kafka;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
