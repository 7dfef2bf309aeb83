//! Why a query over raw events was not answered: the client asked for
//! more events than one query may read (a 4xx naming `date_range`), or
//! the store failed.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The range holds more of the site's events than `QUERY_MAX_EVENTS`:
    /// reading them would take the api's memory.
    #[error("the range holds more than {max} events of this site (QUERY_MAX_EVENTS); choose a shorter date range")]
    TooLarge { max: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for QueryError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Store(e.into())
    }
}
