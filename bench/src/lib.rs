//! The benchmark suite: a load generator built for this job, a ceiling server,
//! and the scenarios of `analytics-bench all` (ingest, processor catch-up,
//! freshness, queries at scale, memory), reported as JSON, Markdown and a plot.
//! See bench/README.md for the method.

pub mod browsers;
pub mod ceiling;
pub mod loadgen;
pub mod plot;
pub mod report;
pub mod scenarios;
pub mod services;
pub mod workload;
pub mod writer_alone;
