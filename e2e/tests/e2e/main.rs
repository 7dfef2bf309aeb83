//! The real binaries as processes, for what only a process shows: kill -9
//! and SIGTERM under load, exit codes and messages of bad settings, OTLP
//! export, outages of the broker and the database. One test binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod backpressure;
mod enrichment;
mod faults;
mod operations;
mod pipeline_embedded;
mod pipeline_kafka;
mod secrets;
mod slow_clients;
mod startup_config;
mod tracing_otlp;
