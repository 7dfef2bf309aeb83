//! What a batch adds, computed without a database: the batch without
//! repeated ids, its rollup counts, and its users folded into per-site
//! ordinals and sets. Both stores' writers (`store::postgres`,
//! `store::sqlite`) run these same steps and differ only in how they read
//! and write rows.

mod dedup;
mod rollups;
mod touched;
mod users;

pub use dedup::unique_by_id;
pub use rollups::{Cell, CountKind, Key, Rollups, VisitorDay};
pub use touched::TouchedDays;
pub use users::{
    merge_stored, ordinal, sets_to_write, BatchUsers, KnownOrdinals, Learnt, NewUsers, UserFold, UserSets,
};

/// What one batch write did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Events that were new and are now counted.
    pub inserted: usize,
    /// Events already stored (resent or redelivered): skipped.
    pub duplicates: usize,
}

impl WriteOutcome {
    /// `inserted` of a batch of `total` events; the rest were duplicates.
    pub fn of(total: usize, inserted: usize) -> Self {
        Self {
            inserted,
            duplicates: total.saturating_sub(inserted),
        }
    }
}

/// A batch the ordinal scheme cannot fold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    /// A site's ordinals are `u32`: past 4,294,967,295 users its sets cannot
    /// grow.
    #[error("site {0} has more users than a set can hold")]
    TooManyUsers(String),
    /// A user's site had no counter: the `sites` row must exist before the
    /// fold (every writer inserts it first).
    #[error("site {0} has no row in sites")]
    NoSiteRow(String),
}
