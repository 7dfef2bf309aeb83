//! The platform's pure layers, importing only the ones before them
//! (`core/tests/layers.rs` checks it):
//!
//! | module | owns | may import |
//! | --- | --- | --- |
//! | `time` | epoch minutes, weeks, timestamps as text | — |
//! | `event` | the event contract: wire form, body decoding, validation, the Kafka payload | `time` |
//! | `codec` | stored values: path packs, user sets | — |
//! | `ingest` | a batch's dedup, rollup counts, user fold, touched days | `event`, `time`, `codec` |
//!
//! No database, no network, no runtime: `analytics-core` builds the store,
//! the services and the queries on top, and the fuzz targets build this
//! crate alone.

pub mod codec;
pub mod event;
pub mod ingest;
pub mod time;
