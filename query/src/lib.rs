//! The platform's query language: Plausible's Stats API v2 request, typed and validated ([`Query::parse`]), and its
//! reference semantics ([`reference::evaluate`]), a brute-force evaluator over raw events, the oracle of the fast
//! evaluator over columns ([`engine`]). `random` (feature `testing`) makes random sites and queries for property
//! tests.
//!
//! Pure: no database, no network, no async runtime.

pub mod csv;
pub mod dimension;
pub mod engine;
pub mod error;
pub mod filter;
pub mod funnel;
pub mod goal;
pub mod metric;
#[cfg(any(test, feature = "testing"))]
pub mod random;
pub mod reference;
pub mod request;
pub mod time;

pub use dimension::{Dimension, EventDimension, TimeDimension, VisitDimension};
pub use error::{ValidationError, ValidationErrors};
pub use filter::{Condition, Filter, FilterDimension, Operator};
pub use goal::{Goal, GoalKind};
pub use metric::Metric;
pub use reference::{evaluate, Counts, EvalError, Meta, MetricValue, RawEvent, Response, Row};
pub use request::{Direction, Include, OrderBy, OrderKey, Pagination, Query};
pub use time::{DateRangeSpec, Granularity, NamedPeriod, ResolvedRange};

#[cfg(test)]
mod tests;
