//! The writer on PostgreSQL.

mod user_sets;
mod writer;

pub use writer::PostgresWriter;
