//! The fast evaluator: a site's events as dictionary-encoded columns
//! grouped by visit (`columns`), and the query over them in one pass
//! (`eval`). It answers exactly as `crate::reference` does; property tests
//! hold it to that.

mod columns;
mod eval;

pub use columns::{nanos, Builder, Dict, PropColumn, SiteEvents, VisitCodes, NONE};
pub use eval::evaluate;
#[cfg(test)]
pub(crate) use eval::evaluate_with;
