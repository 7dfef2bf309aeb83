//! `POST /api/v2/query`: a Stats API v2 query (`analytics_query::Query`)
//! answered over the site's raw events in its time zone. The events are
//! read whole visits at a time (`load`) into columns, then evaluated by
//! `analytics_query::engine`; funnels (`funnel`) the same way.

mod blocks;
mod cache;
mod cache_metrics;
mod error;
mod load;
mod removals;

pub use blocks::{store as store_blocks, StoredBlock};
pub use cache::{CacheStats, ColumnCache, DEFAULT_MAX_AGE, DEFAULT_MAX_EVENTS};
pub use cache_metrics::CacheMetrics;
pub use error::QueryError;
pub use load::{columns_for, recent_for, DaysRead, Loaded};

use crate::store::StoreError;
use analytics_query::engine;
use analytics_query::funnel::{Funnel, FunnelResponse};
use analytics_query::reference::Response;
use analytics_query::time::local_day_start;
use analytics_query::{DateRangeSpec, NamedPeriod, Query};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// Answers `query` for its site as of `now`, in the site's zone `tz`,
/// from `cache` when it holds the range.
pub async fn run(
    db: &DatabaseConnection,
    cache: &ColumnCache,
    query: &Query,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Response, QueryError> {
    let site = query.site_id();
    let first = first_event_if(db, site, query.date_range()).await?;
    let range = query.resolve(now, tz, first);
    let columns = cache.columns(db, site, range).await?;
    // Tens of milliseconds on all cores for a large site: off the async
    // workers. The range was validated, so an error here is a bug, not the
    // client's.
    let query = query.clone();
    tokio::task::spawn_blocking(move || engine::evaluate_view(&query, range, tz, &columns))
        .await
        .map_err(|e| StoreError::internal(format!("query evaluation stopped: {e}")))?
        .map_err(|e| QueryError::Store(StoreError::internal(e.to_string())))
}

/// Answers `funnel` for its site as `run` answers a query.
pub async fn funnel(
    db: &DatabaseConnection,
    cache: &ColumnCache,
    funnel: &Funnel,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<FunnelResponse, QueryError> {
    let site = funnel.site_id();
    let first = first_event_if(db, site, funnel.query().date_range()).await?;
    let range = funnel.query().resolve(now, tz, first);
    let columns = cache.columns(db, site, range).await?;
    let funnel = funnel.clone();
    tokio::task::spawn_blocking(move || engine::funnel_view(&funnel, range, tz, &columns))
        .await
        .map_err(|e| StoreError::internal(format!("funnel evaluation stopped: {e}")))?
        .map_err(|e| QueryError::Store(StoreError::internal(e.to_string())))
}

/// `first_event` for the one period that starts there (`all`): the others
/// resolve without it, and skip its two reads.
async fn first_event_if(
    db: &DatabaseConnection,
    site: &str,
    spec: DateRangeSpec,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    if spec == DateRangeSpec::Named(NamedPeriod::All) {
        first_event(db, site).await
    } else {
        Ok(None)
    }
}

/// When `site`'s first event happened (what the `all` period starts
/// from): its first day from the daily counts, then the earliest event of
/// that day, so only one day of raw events is read.
async fn first_event(db: &DatabaseConnection, site: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT MIN(day) FROM daily_event_counts WHERE site_id = $1",
            [site.into()],
        ))
        .await?;
    let Some(day) = row
        .map(|r| r.try_get_by_index::<Option<NaiveDate>>(0))
        .transpose()?
        .flatten()
    else {
        return Ok(None);
    };
    let start = local_day_start(chrono_tz::UTC, day);
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT MIN(timestamp) FROM events WHERE site_id = $1 AND timestamp >= $2 AND timestamp < $3",
            [site.into(), start.into(), (start + Duration::days(1)).into()],
        ))
        .await?;
    // Raw events pruned by retention leave their counts: the day's start.
    let first = row
        .map(|r| r.try_get_by_index::<Option<DateTime<Utc>>>(0))
        .transpose()?
        .flatten();
    Ok(Some(first.unwrap_or(start)))
}
