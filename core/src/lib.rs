//! What the api and the processor share, in layers that import only the
//! layers before them (`tests/layers.rs` checks it):
//!
//! | folder | owns | may import |
//! | --- | --- | --- |
//! | `ops` | configuration, health, metrics, logs and traces, shutdown, Kafka settings | — |
//! | `time` | epoch minutes, weeks, timestamps as text | — |
//! | `event` | the event contract, validation, the Kafka payload | `time` |
//! | `codec` | stored values: path packs, user sets (pure) | — |
//! | `ingest` | a batch's dedup, rollup counts and user fold (no database) | `event`, `time`, `codec` |
//! | `store` | connections, schema, SQL convention, typed errors, the writer for PostgreSQL and SQLite | `ops`, `time`, `event`, `codec`, `ingest` |
//! | `maintenance` | pruning, path compaction, weekly caches: an owned task | `ops`, `time`, `codec`, `store` |
//! | `query` | `/stats`, series, breakdowns, sites, live | `time`, `event`, `codec`, `store` |

pub mod codec;
pub mod event;
pub mod ingest;
pub mod maintenance;
pub mod ops;
pub mod query;
pub mod store;
pub mod time;
