//! `analytics-api` as a library: ingest, stats and dashboard. With
//! `KAFKA_BROKER_URLS` it publishes to Kafka; without, it is the whole
//! platform in one process (embedded mode, SQLite, same writer, group
//! commit). `Application::build` wires either mode; `main.rs` only parses
//! the configuration and waits for a signal, and tests run the same
//! application in-process on port 0.

mod auth;
pub mod client;
pub mod config;
mod error;
pub mod limits;
pub mod openapi;
mod routes;
mod serve;
mod sink;
mod startup;
mod state;
mod visitors;

pub use config::ApiConfig;
pub use routes::{BATCH_BODY_LIMIT, MAX_BATCH_EVENTS, SINGLE_BODY_LIMIT};
pub use startup::Application;
