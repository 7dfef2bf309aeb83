//! What the api and the processor share, in layers that import only the
//! layers before them (`tests/layers.rs` checks it). The pure layers
//! (`time`, `event`, `codec`, `ingest`) are the `analytics-model` crate,
//! re-exported here under the same names:
//!
//! | folder | owns | may import |
//! | --- | --- | --- |
//! | `ops` | configuration, health, metrics, logs and traces, shutdown, Kafka settings | — |
//! | `store` | connections, schema, SQL convention, typed errors, the writer for PostgreSQL and SQLite | `ops`, `time`, `event`, `codec`, `ingest` |
//! | `maintenance` | pruning, path compaction, weekly caches: an owned task | `ops`, `time`, `codec`, `store` |
//! | `query` | `/stats`, series, breakdowns, sites, live | `time`, `event`, `codec`, `store` |
//! | `access` | registered sites, API keys, shared links, sessions (SeaORM entities) | `event`, `store`, `ingest` |
//! | `conversions` | a site's goals and saved funnels (SeaORM entities) | `event`, `store`, `access` |

pub use analytics_model::{codec, event, ingest, time};

pub mod access;
pub mod conversions;
pub mod maintenance;
pub mod ops;
pub mod query;
pub mod store;
