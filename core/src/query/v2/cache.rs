//! Columns kept between queries. A dashboard asks many questions of one
//! range (each panel, each filter); reading and encoding a month of a large
//! site's events costs seconds, answering from its columns milliseconds.
//!
//! An entry holds the columns read for one range of one site, in one
//! snapshot, with the fingerprint of that snapshot: the site's hourly event
//! counts over the hours read, and its user-deletion epoch. Events are only
//! ever added, except by a user deletion (which bumps the epoch) and by
//! retention; so while the counts of those hours and the epoch are the same,
//! no event was added to or removed from the window, and the columns answer
//! any range inside the entry's exactly as a fresh read would (a visit
//! that touches the range was read whole, and an event outside the window
//! cannot join it: the read left a gap over the visit timeout at both
//! edges). Retention's pruning is caught by the entries' age limit.
//!
//! Entries are dropped least recently used first past a memory budget.

use super::load::{columns_for, Loaded};
use super::QueryError;
use crate::store::StoreError;
use analytics_query::engine::SiteEvents;
use analytics_query::time::ResolvedRange;
use chrono::{DateTime, NaiveDate, Timelike, Utc};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DbBackend, IsolationLevel, Statement, TransactionTrait,
};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a snapshot of a site's window looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    counts: u64,
    deletions: i64,
}

struct Entry {
    site: String,
    range: ResolvedRange,
    low: DateTime<Utc>,
    high: DateTime<Utc>,
    fingerprint: Fingerprint,
    columns: Arc<SiteEvents>,
    bytes: usize,
    loaded: Instant,
    used: Instant,
}

/// How the cache fared, for metrics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    /// Reads with no entry covering the range.
    pub misses: u64,
    /// Reads because the covering entry's window had changed.
    pub stale: u64,
    pub entries: usize,
    pub bytes: usize,
}

pub struct ColumnCache {
    budget: usize,
    max_age: std::time::Duration,
    max_events: usize,
    state: Mutex<(Vec<Entry>, CacheStats)>,
}

impl ColumnCache {
    /// `budget_bytes`: the columns' memory kept at most (0: nothing kept);
    /// `max_age`: how long an entry may answer at all; `max_events`: the
    /// most events one read may hold.
    pub fn new(budget_bytes: usize, max_age: std::time::Duration, max_events: usize) -> Self {
        Self {
            budget: budget_bytes,
            max_age,
            max_events,
            state: Mutex::new((Vec::new(), CacheStats::default())),
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.state.lock().map(|s| s.1).unwrap_or_default()
    }

    /// The columns that answer `range` for `site`: an entry's, if one
    /// covers the range and its window is unchanged, else a fresh read
    /// (kept if it fits the budget).
    pub async fn columns(
        &self,
        db: &DatabaseConnection,
        site: &str,
        range: ResolvedRange,
    ) -> Result<Arc<SiteEvents>, QueryError> {
        let candidate = self.lock(|entries, _| {
            entries
                .iter()
                .filter(|e| e.site == site && e.range.start <= range.start && range.end <= e.range.end)
                .filter(|e| e.loaded.elapsed() < self.max_age)
                // The narrowest: the cheapest to scan.
                .min_by_key(|e| e.columns.len())
                .map(|e| (e.low, e.high, e.fingerprint, e.columns.clone()))
        });
        if let Some((low, high, fingerprint, columns)) = candidate {
            if self::fingerprint(db, site, low, high).await? == fingerprint {
                self.lock(|entries, stats| {
                    stats.hits += 1;
                    if let Some(e) = entries.iter_mut().find(|e| Arc::ptr_eq(&e.columns, &columns)) {
                        e.used = Instant::now();
                    }
                });
                return Ok(columns);
            }
            self.lock(|entries, stats| {
                stats.stale += 1;
                entries.retain(|e| !Arc::ptr_eq(&e.columns, &columns));
            });
        } else {
            self.lock(|_, stats| stats.misses += 1);
        }
        let (loaded, fingerprint) = read(db, site, range, self.max_events).await?;
        let columns = Arc::new(loaded.columns);
        let bytes = columns.heap_bytes();
        if bytes <= self.budget {
            let now = Instant::now();
            self.lock(|entries, _| {
                entries.push(Entry {
                    site: site.to_string(),
                    range,
                    low: loaded.low,
                    high: loaded.high,
                    fingerprint,
                    columns: columns.clone(),
                    bytes,
                    loaded: now,
                    used: now,
                });
                let mut total: usize = entries.iter().map(|e| e.bytes).sum();
                while total > self.budget {
                    let Some(oldest) = entries.iter().enumerate().min_by_key(|(_, e)| e.used).map(|(i, _)| i) else {
                        break;
                    };
                    total -= entries.swap_remove(oldest).bytes;
                }
            });
        }
        Ok(columns)
    }

    fn lock<T>(&self, f: impl FnOnce(&mut Vec<Entry>, &mut CacheStats) -> T) -> T {
        // A panic while holding the lock cannot leave an entry half made
        // (each change is one push or removal), so a poisoned lock is used.
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (entries, stats) = &mut *guard;
        let out = f(entries, stats);
        stats.entries = entries.len();
        stats.bytes = entries.iter().map(|e| e.bytes).sum();
        out
    }
}

/// The columns and their snapshot's fingerprint, read in one snapshot.
async fn read(
    db: &DatabaseConnection,
    site: &str,
    range: ResolvedRange,
    max_events: usize,
) -> Result<(Loaded, Fingerprint), QueryError> {
    let txn = match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly))
                .await?
        }
        // A SQLite read transaction is a snapshot once it has read.
        _ => db.begin().await?,
    };
    let loaded = columns_for(&txn, site, range, max_events).await?;
    let fingerprint = fingerprint(&txn, site, loaded.low, loaded.high).await?;
    txn.commit().await?;
    Ok((loaded, fingerprint))
}

/// The site's event counts in every UTC hour from `low`'s to `high`'s, and
/// its deletion epoch.
async fn fingerprint<C: ConnectionTrait>(
    db: &C,
    site: &str,
    low: DateTime<Utc>,
    high: DateTime<Utc>,
) -> Result<Fingerprint, StoreError> {
    let backend = db.get_database_backend();
    let (first_day, last_day) = (low.date_naive(), high.date_naive());
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT day, hour, CAST(SUM(events) AS BIGINT) FROM hourly_event_counts \
             WHERE site_id = $1 AND day >= $2 AND day <= $3 GROUP BY day, hour ORDER BY day, hour",
            [site.into(), first_day.into(), last_day.into()],
        ))
        .await?;
    let in_window = |day: NaiveDate, hour: i16| {
        let h = i64::from(hour);
        !((day == first_day && h < i64::from(low.hour())) || (day == last_day && h > i64::from(high.hour())))
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for row in rows {
        let day: NaiveDate = row.try_get_by_index(0)?;
        let hour: i16 = row.try_get_by_index(1)?;
        let events: i64 = row.try_get_by_index(2)?;
        if in_window(day, hour) {
            (day, hour, events).hash(&mut hasher);
        }
    }
    let deletions = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT deletions FROM sites WHERE site_id = $1",
            [site.into()],
        ))
        .await?
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0);
    Ok(Fingerprint {
        counts: hasher.finish(),
        deletions,
    })
}

/// Entries older than this are read again, whatever their fingerprint
/// (retention prunes raw events without a trace in the counts).
pub const DEFAULT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// The most events one read holds by default (`QUERY_MAX_EVENTS`): about
/// 80 bytes each while the columns are built.
pub const DEFAULT_MAX_EVENTS: usize = 3_000_000;
