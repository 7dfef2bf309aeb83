//! What the api and the processor share: the event model and its validation,
//! the writer that folds batches into raw rows and rollups, the stats queries,
//! Kafka wiring, configuration parsing, health, metrics and telemetry.

pub mod config;
pub mod dashboard_queries;
pub mod db;
pub mod event;
pub mod health;
pub mod kafka;
pub mod metrics;
pub mod path_packs;
pub mod payload;
pub mod shutdown;
pub mod sqlite_writer;
pub mod stats;
pub mod telemetry;
#[cfg(test)]
mod test_support;
pub mod user_events;
pub mod user_sets;
pub mod week_rollups;
pub mod writer;
