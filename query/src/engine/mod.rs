//! The fast evaluator: a site's events as dictionary-encoded columns
//! grouped by visit (`columns`), and the query over them in one pass
//! (`eval`), and funnels in one pass (`funnel`). It answers exactly as `crate::reference` does; property tests
//! hold it to that.

mod columns;
mod eval;
mod funnel;

pub use columns::{nanos, Builder, Dict, PropColumn, SiteEvents, VisitCodes, NONE};
pub use eval::evaluate;
#[cfg(test)]
pub(crate) use eval::evaluate_with;
pub use funnel::funnel;
