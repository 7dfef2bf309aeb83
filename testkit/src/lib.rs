//! What the test suites share. A service a test needs and does not find
//! makes the test fail, never skip. `TEST_DATABASE_ADMIN_URL` and
//! `TEST_KAFKA_BROKERS` point at other PostgreSQL and broker instances.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

pub mod check;
pub mod db;
pub mod inproc;
pub mod kafka;
pub mod load;
pub mod outage;
pub mod postgres;
pub mod process;
pub mod rollups;
pub mod workload;
