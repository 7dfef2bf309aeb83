//! Answers. From the rollups, never from raw events: `/stats` (`stats`),
//! the dashboard's series, breakdowns, sites and live count, with one way
//! to parse parameters (`params`) and to read the weekly caches (`weeks`).
//! From the raw events: the Stats API v2 query (`v2`), the answers above
//! for a site whose zone is not UTC (`zoned`), and the export (`export`).

pub mod breakdown;
pub mod export;
pub mod live;
pub mod params;
pub mod series;
pub mod sites;
pub mod stats;
#[cfg(test)]
mod test_support;
pub mod v2;
mod weeks;
pub mod zoned;
