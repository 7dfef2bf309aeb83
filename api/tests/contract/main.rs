//! The api's contract, against the real router run in-process on port 0
//! with a fresh database (and, in Kafka mode, a fresh topic and an
//! in-process processor): one test binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod conversions;
mod dashboard;
mod ingest;
mod limits;
mod metrics;
mod nul;
mod openapi;
mod query;
mod refused;
