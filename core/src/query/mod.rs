//! Answers, read from the rollups and never from raw events: `/stats`
//! (`stats`), the dashboard's series, breakdowns, sites and live count,
//! with one way to parse parameters (`params`) and to read the weekly
//! caches (`weeks`).

pub mod breakdown;
pub mod live;
pub mod params;
pub mod series;
pub mod sites;
pub mod stats;
#[cfg(test)]
mod test_support;
mod weeks;
