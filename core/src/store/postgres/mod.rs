//! The writer on PostgreSQL, and the daily partitions of `events` it
//! writes into.

pub mod partitions;
mod user_sets;
mod writer;

pub use writer::PostgresWriter;
