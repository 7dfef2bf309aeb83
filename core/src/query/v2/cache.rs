//! Columns kept between queries. A dashboard asks many questions of one
//! range (each panel, each filter); reading and encoding a month of a large
//! site's events costs seconds, answering from its columns milliseconds.
//!
//! An entry holds the columns read for one range of one site, in one
//! snapshot, with the fingerprint of that snapshot: the site's hourly event
//! counts over the hours read, and the epochs of what removes events (the
//! site's user deletions, sites' removals, the first day retention keeps:
//! `Removals`). Events are only ever added otherwise; so while the counts
//! of those hours are the same and nothing was removed from the window, no
//! event was added to or removed from it, and the columns answer
//! any range inside the entry's exactly as a fresh read would (a visit
//! that touches the range was read whole, and an event outside the window
//! cannot join it: the read left a gap over the visit timeout at both
//! edges).
//!
//! A site that receives events changes its latest hours all the time, so
//! an entry whose window changed only from some hour on, far enough into
//! its range, is not read again: the events from that hour on are
//! (`load::recent_for`), and their visitors are answered from a
//! newer segment beside the entry's columns, which leave them out
//! (`analytics_query::engine::View`). Each such read starts from the
//! entry's own columns again, so it stays the read of the site's latest
//! hours; once it would pass half the columns' size, the range is read
//! whole instead.
//!
//! Entries are dropped least recently used first past a memory budget.

use super::blocks::store as store_blocks;
use super::load::{columns_for, recent_for, Loaded};
use super::removals::{Removals, REMOVALS};
use super::QueryError;
use crate::store::StoreError;
use analytics_query::engine::{SiteEvents, View};
use analytics_query::reference::VISIT_TIMEOUT;
use analytics_query::time::ResolvedRange;
use chrono::{DateTime, NaiveDate, TimeZone, Timelike, Utc};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, IsolationLevel, Statement,
    TransactionTrait,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a snapshot of a site's window looked like: its event counts per
/// UTC hour (day, hour, events), and what had removed events by then.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    hours: Vec<(NaiveDate, i16, i64)>,
    removals: Removals,
}

impl Fingerprint {
    /// The part of the fingerprint over the hours from `low`'s to `high`'s.
    fn within(&self, low: DateTime<Utc>, high: DateTime<Utc>) -> Fingerprint {
        let (first, last) = (hour_of(low), hour_of(high));
        Fingerprint {
            hours: self
                .hours
                .iter()
                .filter(|&&(day, hour, _)| (first..=last).contains(&(day, hour)))
                .copied()
                .collect(),
            removals: self.removals,
        }
    }

    /// The start of the first hour whose count differs (both taken over
    /// the same window).
    fn first_change(&self, other: &Fingerprint) -> Option<DateTime<Utc>> {
        let (mut a, mut b) = (self.hours.iter().peekable(), other.hours.iter().peekable());
        let differs = loop {
            match (a.peek(), b.peek()) {
                (None, None) => return None,
                (Some(x), Some(y)) if x == y => {
                    a.next();
                    b.next();
                }
                (Some(x), Some(y)) => break (x.0, x.1).min((y.0, y.1)),
                (Some(x), None) | (None, Some(x)) => break (x.0, x.1),
            }
        };
        let (day, hour) = differs;
        let start = day.and_hms_opt(u32::try_from(hour).ok()?, 0, 0)?;
        Some(Utc.from_utc_datetime(&start))
    }
}

/// A UTC instant's (day, hour), as `hourly_event_counts` keys them.
fn hour_of(t: DateTime<Utc>) -> (NaiveDate, i16) {
    (t.date_naive(), t.hour() as i16)
}

/// A read window and the fingerprint of its snapshot.
#[derive(Debug, Clone)]
struct Window {
    low: DateTime<Utc>,
    high: DateTime<Utc>,
    fingerprint: Fingerprint,
}

struct Entry {
    site: String,
    range: ResolvedRange,
    /// The whole read, and its window.
    base: Arc<SiteEvents>,
    base_window: Window,
    /// What answers now: the base alone, or the base without the visitors
    /// of its recent events and a newer segment holding them, and the
    /// window both were read over.
    view: Arc<View>,
    window: Window,
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
    /// Whole reads because the covering entry's window had changed too
    /// early in it, or by a deletion.
    pub stale: u64,
    /// Reads of an entry's recent events only (its window had changed
    /// late in it).
    pub recent: u64,
    pub entries: usize,
    pub bytes: usize,
    /// Closed days of whole reads answered by their stored block.
    pub days_from_blocks: u64,
    /// Closed days of whole reads read from their rows.
    pub days_from_rows: u64,
    /// Day blocks stored after reading their rows.
    pub blocks_stored: u64,
}

pub struct ColumnCache {
    budget: usize,
    max_age: std::time::Duration,
    max_events: usize,
    state: Mutex<(Vec<Entry>, CacheStats)>,
    /// One per site while a read of it is under way or awaited: see
    /// `columns`.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What a covering entry holds, taken out of the lock.
struct Candidate {
    range: ResolvedRange,
    base: Arc<SiteEvents>,
    base_window: Window,
    view: Arc<View>,
    window: Window,
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
            gates: Mutex::new(HashMap::new()),
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.state.lock().map(|s| s.1).unwrap_or_default()
    }

    /// The events that answer `range` for `site`: an entry's, if one
    /// covers the range and its window is unchanged; its base with a read
    /// of the recent events, if only those changed; else a fresh read
    /// (kept if it fits the budget).
    ///
    /// A dashboard asks its panels' questions at once: on a range not kept
    /// yet, each would read the same events, as many times over as there
    /// are panels, in as much memory. So only a hit is answered at once;
    /// what reads waits for the site's other reads to finish, then looks
    /// again (the read before it has usually left the entry it needs).
    pub async fn columns(
        &self,
        db: &DatabaseConnection,
        site: &str,
        range: ResolvedRange,
    ) -> Result<Arc<View>, QueryError> {
        let mut changed = None;
        if let Some(c) = self.candidate(site, range) {
            if unchanged(db, site, &c.window).await? {
                self.touch(&c.base, None, |stats| stats.hits += 1);
                return Ok(c.view);
            }
            changed = Some(c.view);
        }
        let gate = self.gate(site);
        let answer = {
            let _turn = gate.lock().await;
            self.columns_in_turn(db, site, range, changed.as_ref()).await
        };
        self.release(site, gate);
        answer
    }

    /// The site's gate, made if no read of it holds or awaits one.
    fn gate(&self, site: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates.entry(site.to_string()).or_default().clone()
    }

    /// Forgets the site's gate once no read holds or awaits it (the map's
    /// and `gate`'s are then the only references).
    fn release(&self, site: &str, gate: Arc<tokio::sync::Mutex<()>>) {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&gate) == 2 {
            gates.remove(site);
        }
    }

    /// The narrowest entry of `site` covering `range`, young enough.
    fn candidate(&self, site: &str, range: ResolvedRange) -> Option<Candidate> {
        self.lock(|entries, _| {
            entries
                .iter()
                .filter(|e| e.site == site && e.range.start <= range.start && range.end <= e.range.end)
                .filter(|e| e.loaded.elapsed() < self.max_age)
                // The narrowest: the cheapest to scan.
                .min_by_key(|e| e.base.len())
                .map(|e| Candidate {
                    range: e.range,
                    base: e.base.clone(),
                    base_window: e.base_window.clone(),
                    view: e.view.clone(),
                    window: e.window.clone(),
                })
        })
    }

    /// `columns` once no other read of the site is under way. `changed`:
    /// a view already found changed; if the entry still holds it, nobody
    /// read since, and it is changed still (a window's counts only grow,
    /// a removal only moves an epoch on), so it is not checked again.
    async fn columns_in_turn(
        &self,
        db: &DatabaseConnection,
        site: &str,
        range: ResolvedRange,
        changed: Option<&Arc<View>>,
    ) -> Result<Arc<View>, QueryError> {
        let Some(c) = self.candidate(site, range) else {
            self.lock(|_, stats| stats.misses += 1);
            return self.read_whole(db, site, range).await;
        };
        let known_changed = changed.is_some_and(|v| Arc::ptr_eq(v, &c.view));
        if !known_changed && unchanged(db, site, &c.window).await? {
            self.touch(&c.base, None, |stats| stats.hits += 1);
            return Ok(c.view);
        }
        // Changed: the hourly counts say from when.
        let now = fingerprint(db, site, c.window.low, c.window.high).await?;
        if now.within(c.base_window.low, c.base_window.high) == c.base_window.fingerprint {
            // Only what the newer segment read past the base's window
            // changed: no visit in the range reaches it.
            let view = Arc::new(View::single(c.base.clone()));
            let window = c.base_window.clone();
            self.touch(&c.base, Some((view.clone(), window)), |stats| stats.hits += 1);
            return Ok(view);
        }
        if c.base_window
            .fingerprint
            .removals
            .none_since(&now.removals, c.base_window.low)
        {
            if let Some((view, window)) = self.read_recent(db, site, &c).await? {
                let view = Arc::new(view);
                self.touch(&c.base, Some((view.clone(), window)), |stats| stats.recent += 1);
                return Ok(view);
            }
        }
        self.lock(|entries, stats| {
            stats.stale += 1;
            entries.retain(|e| !Arc::ptr_eq(&e.base, &c.base));
        });
        self.read_whole(db, site, range).await
    }

    /// The base with a newer segment of its changed visitors, read in one
    /// snapshot, when the first change lies far enough into the range and
    /// the newer segment stays small; `None` else.
    async fn read_recent(
        &self,
        db: &DatabaseConnection,
        site: &str,
        c: &Candidate,
    ) -> Result<Option<(View, Window)>, QueryError> {
        let txn = snapshot(db).await?;
        let (low, high) = (c.base_window.low, c.base_window.high);
        let now = fingerprint(&txn, site, low, high).await?;
        let Some(changed) = c.base_window.fingerprint.first_change(&now) else {
            return Ok(None);
        };
        // Every visitor with an event from `changed` on is read again, so
        // a visit that new events join is read whole; one timeout into
        // the range (see `recent_for`), the others' visits are unchanged.
        let removed = !c.base_window.fingerprint.removals.none_since(&now.removals, low);
        if removed || changed - VISIT_TIMEOUT < c.range.start {
            return Ok(None);
        }
        // A newer segment past half the base's size: a whole read costs
        // about as much and answers faster afterwards.
        let most = self.max_events.min(c.base.len() / 2 + 1);
        let (exclusion, loaded) = match recent_for(&txn, site, &c.base, c.range, (low, high), changed, most).await {
            Ok(read) => read,
            Err(QueryError::TooLarge { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let fingerprint = fingerprint(&txn, site, loaded.low, loaded.high).await?;
        txn.commit().await?;
        let view = View {
            segments: vec![
                (c.base.clone(), Some(Arc::new(exclusion))),
                (Arc::new(loaded.columns), None),
            ],
        };
        let window = Window {
            low: loaded.low,
            high: loaded.high,
            fingerprint,
        };
        Ok(Some((view, window)))
    }

    /// Reads the range whole, and keeps it if it fits the budget.
    async fn read_whole(
        &self,
        db: &DatabaseConnection,
        site: &str,
        range: ResolvedRange,
    ) -> Result<Arc<View>, QueryError> {
        let (mut loaded, fingerprint) = read(db, site, range, self.max_events).await?;
        let days = std::mem::take(&mut loaded.days);
        self.lock(|_, stats| {
            stats.days_from_blocks += days.from_blocks;
            stats.days_from_rows += days.from_rows;
        });
        if !days.to_store.is_empty() {
            // A copy for the next cold read: one that cannot be stored (a
            // read-only replica, say) costs that read its speed, not
            // this answer.
            match store_blocks(db, site, days.to_store).await {
                Ok(stored) => self.lock(|_, stats| stats.blocks_stored += stored as u64),
                Err(e) => tracing::warn!(site, error = %e, "storing day blocks failed"),
            }
        }
        let base = Arc::new(loaded.columns);
        let view = Arc::new(View::single(base.clone()));
        let bytes = view.heap_bytes();
        if bytes <= self.budget {
            let now = Instant::now();
            let window = Window {
                low: loaded.low,
                high: loaded.high,
                fingerprint,
            };
            self.lock(|entries, _| {
                entries.push(Entry {
                    site: site.to_string(),
                    range,
                    base,
                    base_window: window.clone(),
                    view: view.clone(),
                    window,
                    bytes,
                    loaded: now,
                    used: now,
                });
            });
            self.evict();
        }
        Ok(view)
    }

    /// Marks the entry of `base` used, with its new view when given. A
    /// view past the budget on its own is not kept (its entry keeps the
    /// base alone, and the next change reads the recent events again):
    /// the newer segment must not cost the entry its columns.
    fn touch(&self, base: &Arc<SiteEvents>, view: Option<(Arc<View>, Window)>, count: impl FnOnce(&mut CacheStats)) {
        self.lock(|entries, stats| {
            count(stats);
            if let Some(e) = entries.iter_mut().find(|e| Arc::ptr_eq(&e.base, base)) {
                e.used = Instant::now();
                if let Some((view, window)) = view {
                    let bytes = view.heap_bytes();
                    if bytes <= self.budget {
                        (e.view, e.window, e.bytes) = (view, window, bytes);
                    } else {
                        let alone = Arc::new(View::single(e.base.clone()));
                        e.bytes = alone.heap_bytes();
                        (e.view, e.window) = (alone, e.base_window.clone());
                    }
                }
            }
        });
        self.evict();
    }

    /// Drops the least recently used entries past the budget.
    fn evict(&self) {
        self.lock(|entries, _| {
            let mut total: usize = entries.iter().map(|e| e.bytes).sum();
            while total > self.budget {
                let Some(oldest) = entries.iter().enumerate().min_by_key(|(_, e)| e.used).map(|(i, _)| i) else {
                    break;
                };
                total -= entries.swap_remove(oldest).bytes;
            }
        });
    }

    fn lock<T>(&self, f: impl FnOnce(&mut Vec<Entry>, &mut CacheStats) -> T) -> T {
        // A panic while holding the lock cannot leave an entry half made
        // (each change is one push, removal or field update), so a
        // poisoned lock is used.
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (entries, stats) = &mut *guard;
        let out = f(entries, stats);
        stats.entries = entries.len();
        stats.bytes = entries.iter().map(|e| e.bytes).sum();
        out
    }
}

/// A read-only transaction that sees one snapshot.
async fn snapshot(db: &DatabaseConnection) -> Result<DatabaseTransaction, StoreError> {
    Ok(match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly))
                .await?
        }
        // A SQLite read transaction is a snapshot once it has read.
        _ => db.begin().await?,
    })
}

/// The columns and their snapshot's fingerprint, read in one snapshot.
async fn read(
    db: &DatabaseConnection,
    site: &str,
    range: ResolvedRange,
    max_events: usize,
) -> Result<(Loaded, Fingerprint), QueryError> {
    let txn = snapshot(db).await?;
    let loaded = columns_for(&txn, site, range, max_events).await?;
    let fingerprint = fingerprint(&txn, site, loaded.low, loaded.high).await?;
    txn.commit().await?;
    Ok((loaded, fingerprint))
}

/// Whether the site's window is as `window` saw it, in one statement of
/// one row (the whole fingerprint is some 700 rows for a month): between
/// removals, each of which moves an epoch in `Removals` before or in the
/// transaction that lowers the counts, an hour's count only grows, so the
/// same sum over the window's hours and no removal since mean the same
/// count in every hour.
async fn unchanged<C: ConnectionTrait>(db: &C, site: &str, window: &Window) -> Result<bool, StoreError> {
    let ((first_day, first_hour), (last_day, last_hour)) = (hour_of(window.low), hour_of(window.high));
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!(
                "SELECT CAST(COALESCE(SUM(events), 0) AS BIGINT), {REMOVALS} \
                 FROM hourly_event_counts \
                 WHERE site_id = $2 AND day >= $3 AND day <= $4 \
                   AND (day > $3 OR hour >= $5) AND (day < $4 OR hour <= $6)"
            ),
            [
                site.into(),
                site.into(),
                first_day.into(),
                last_day.into(),
                first_hour.into(),
                last_hour.into(),
            ],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let events: i64 = row.try_get_by_index(0)?;
    let now = Removals::from_row(&row, 1)?;
    let seen = &window.fingerprint;
    Ok(events == seen.hours.iter().map(|h| h.2).sum::<i64>() && seen.removals.none_since(&now, window.low))
}

/// The site's event counts in every UTC hour from `low`'s to `high`'s, and
/// its removals' epochs.
async fn fingerprint<C: ConnectionTrait>(
    db: &C,
    site: &str,
    low: DateTime<Utc>,
    high: DateTime<Utc>,
) -> Result<Fingerprint, StoreError> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT day, hour, CAST(SUM(events) AS BIGINT) FROM hourly_event_counts \
             WHERE site_id = $1 AND day >= $2 AND day <= $3 GROUP BY day, hour ORDER BY day, hour",
            [site.into(), low.date_naive().into(), high.date_naive().into()],
        ))
        .await?;
    let mut hours = Vec::with_capacity(rows.len());
    for row in rows {
        hours.push((
            row.try_get_by_index(0)?,
            row.try_get_by_index(1)?,
            row.try_get_by_index(2)?,
        ));
    }
    let removals = Removals::read(db, site).await?;
    Ok(Fingerprint { hours, removals }.within(low, high))
}

/// Entries older than this are read again, whatever their fingerprint:
/// every removal the platform makes moves an epoch the check reads, so this
/// only bounds how long a change made by hand in the database (rows
/// deleted with SQL) can go unseen.
pub const DEFAULT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The most events one read holds by default (`QUERY_MAX_EVENTS`): about
/// 80 bytes each while the columns are built.
pub const DEFAULT_MAX_EVENTS: usize = 3_000_000;
