//! The fast evaluator: a site's events as dictionary-encoded columns
//! grouped by visit (`columns`), the query over them in one pass (`eval`),
//! funnels in one pass (`funnel`), and views of several such segments of
//! disjoint visitors answered as one (`segments`). It answers exactly as
//! `crate::reference` does; property tests hold it to that.

mod block;
mod codes;
mod columns;
mod eval;
mod funnel;
mod segments;

pub use block::{Block, BlockError};
pub use codes::{Codes, CodesRef};
pub use columns::{nanos, Builder, Dict, EventRef, PropColumn, SiteEvents, VisitCodes, NONE};
#[cfg(test)]
pub(crate) use eval::evaluate_with;
pub use eval::{evaluate, evaluate_view};
pub use funnel::{funnel, funnel_view};
pub use segments::{split_off, Exclusion, View};
