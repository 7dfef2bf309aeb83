//! The rollup counts of a batch's new events, aggregated in memory before
//! any row is written, and handed to the store as rows of cells in key
//! order (the order every writer touches rows in).

use super::users::BatchUsers;
use crate::event::Event;
use crate::time::epoch_minute;
use chrono::{NaiveDate, Timelike};
use std::hash::Hash;

/// The counted rollups, in the order writers upsert them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountKind {
    /// Page views per (site, day, path).
    PathViews,
    /// Events per (site, day, event type).
    DailyEvents,
    /// Events per (site, day, hour, event type).
    HourlyEvents,
    /// Events per (site, minute received): the live panel.
    MinuteEvents,
    /// Cookieless visitors new on (site, day): counted once the writer
    /// knows which of the batch's visitor-days were not stored yet
    /// (`Rollups::count_new_visitor`).
    DailyVisitors,
}

impl CountKind {
    pub const ALL: [CountKind; 5] = [
        CountKind::PathViews,
        CountKind::DailyEvents,
        CountKind::HourlyEvents,
        CountKind::MinuteEvents,
        CountKind::DailyVisitors,
    ];
}

/// A cookieless visitor on a day of a site: a row of `daily_visitors`.
pub type VisitorDay<'a> = (&'a str, NaiveDate, i64);

/// One key column's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell<'a> {
    Text(&'a str),
    Day(NaiveDate),
    Hour(i16),
    Minute(i64),
}

/// A rollup row's key: up to four cells, without an allocation.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    cells: [Cell<'a>; 4],
    len: usize,
}

impl<'a> Key<'a> {
    fn of<const N: usize>(cells: [Cell<'a>; N]) -> Self {
        let mut all = [Cell::Minute(0); 4];
        all[..N].copy_from_slice(&cells);
        Self { cells: all, len: N }
    }

    pub fn cells(&self) -> &[Cell<'a>] {
        &self.cells[..self.len]
    }
}

trait ToKey<'a> {
    fn key(&self) -> Key<'a>;
}

impl<'a> ToKey<'a> for (&'a str, NaiveDate, &'a str) {
    fn key(&self) -> Key<'a> {
        Key::of([Cell::Text(self.0), Cell::Day(self.1), Cell::Text(self.2)])
    }
}

impl<'a> ToKey<'a> for (&'a str, NaiveDate, i16, &'a str) {
    fn key(&self) -> Key<'a> {
        Key::of([
            Cell::Text(self.0),
            Cell::Day(self.1),
            Cell::Hour(self.2),
            Cell::Text(self.3),
        ])
    }
}

impl<'a> ToKey<'a> for (&'a str, NaiveDate) {
    fn key(&self) -> Key<'a> {
        Key::of([Cell::Text(self.0), Cell::Day(self.1)])
    }
}

impl<'a> ToKey<'a> for (&'a str, i64) {
    fn key(&self) -> Key<'a> {
        Key::of([Cell::Text(self.0), Cell::Minute(self.1)])
    }
}

/// Counts by key. Accumulated in a hash map, which a batch's repeating
/// string keys reach faster than a B-tree (walking one was most of the time
/// spent building the rollups), and read in key order.
struct Counts<K>(foldhash::HashMap<K, i64>);

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Self(foldhash::HashMap::default())
    }
}

impl<'a, K: Hash + Eq + Ord + ToKey<'a>> Counts<K> {
    fn add(&mut self, key: K) {
        *self.0.entry(key).or_default() += 1;
    }

    fn rows(&self) -> Vec<(Key<'a>, i64)> {
        let mut rows: Vec<(&K, i64)> = self.0.iter().map(|(k, n)| (k, *n)).collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        rows.into_iter().map(|(k, n)| (k.key(), n)).collect()
    }
}

/// What one batch adds to the rollups. Keys borrow from the events, which
/// outlive the transaction: owned keys cost five allocations an event.
#[derive(Default)]
pub struct Rollups<'a> {
    path_views: Counts<(&'a str, NaiveDate, &'a str)>,
    daily: Counts<(&'a str, NaiveDate, &'a str)>,
    hourly: Counts<(&'a str, NaiveDate, i16, &'a str)>,
    /// Keyed by the minute the event was *received*: the live panel shows
    /// what is arriving now, whatever time the event claims.
    minutes: Counts<(&'a str, i64)>,
    users: BatchUsers<'a>,
    visitor_days: foldhash::HashSet<VisitorDay<'a>>,
    new_visitors: Counts<(&'a str, NaiveDate)>,
}

impl<'a> Rollups<'a> {
    /// Folds one new event.
    pub fn add(&mut self, e: &'a Event) {
        let day = e.timestamp.date_naive();
        #[allow(clippy::cast_possible_truncation)] // 0..=23
        let hour = e.timestamp.hour() as i16;
        if e.is_page_view() {
            self.path_views.add((&e.site_id, day, &e.path));
        }
        if !e.user_id.is_empty() {
            self.users.add(&e.site_id, &e.user_id, day, hour);
        }
        if let Some(visitor) = e.context.visitor_id {
            self.visitor_days.insert((&e.site_id, day, visitor));
        }
        self.minutes.add((&e.site_id, epoch_minute(e.received_at)));
        self.daily.add((&e.site_id, day, &e.event_type));
        self.hourly.add((&e.site_id, day, hour, &e.event_type));
    }

    /// The rows of one counted rollup, in key order.
    pub fn rows(&self, kind: CountKind) -> Vec<(Key<'a>, i64)> {
        match kind {
            CountKind::PathViews => self.path_views.rows(),
            CountKind::DailyEvents => self.daily.rows(),
            CountKind::HourlyEvents => self.hourly.rows(),
            CountKind::MinuteEvents => self.minutes.rows(),
            CountKind::DailyVisitors => self.new_visitors.rows(),
        }
    }

    /// The batch's cookieless visitor-days, each once, in key order: what
    /// the writer inserts into `daily_visitors`.
    pub fn visitor_days(&self) -> Vec<VisitorDay<'a>> {
        let mut days: Vec<VisitorDay<'a>> = self.visitor_days.iter().copied().collect();
        days.sort_unstable();
        days
    }

    /// Counts a visitor-day the writer found new (its insert took).
    pub fn count_new_visitor(&mut self, site: &'a str, day: NaiveDate) {
        self.new_visitors.add((site, day));
    }

    /// The batch's sites, in order: every event counts in `daily`.
    pub fn sites(&self) -> Vec<&'a str> {
        let mut sites: Vec<&'a str> = self.daily.0.keys().map(|(site, _, _)| *site).collect();
        sites.sort_unstable();
        sites.dedup();
        sites
    }

    /// Every (site, day) the batch counts events on.
    pub fn days(&self) -> Vec<(&'a str, NaiveDate)> {
        let mut days: Vec<(&'a str, NaiveDate)> = self.daily.0.keys().map(|(site, day, _)| (*site, *day)).collect();
        days.sort_unstable();
        days.dedup();
        days
    }

    pub fn users(&self) -> &BatchUsers<'a> {
        &self.users
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn event(site: &str, kind: &str, path: &str, user: &str, hour: u32) -> Event {
        let at = Utc
            .with_ymd_and_hms(2025, 11, 15, hour, 30, 0)
            .single()
            .unwrap_or_default();
        Event {
            event_id: uuid::Uuid::now_v7(),
            site_id: site.into(),
            event_type: kind.into(),
            path: path.into(),
            user_id: user.into(),
            timestamp: at,
            received_at: at,
            referrer: None,
            props: None,
            context: Default::default(),
        }
    }

    #[test]
    fn rows_come_in_key_order_with_their_counts() {
        let events = [
            event("b", "page_view", "/x", "u1", 3),
            event("a", "page_view", "/y", "", 3),
            event("a", "page_view", "/x", "u2", 4),
            event("a", "click", "/x", "u2", 4),
            event("a", "page_view", "/x", "u2", 4),
        ];
        let mut r = Rollups::default();
        for e in &events {
            r.add(e);
        }
        let day = NaiveDate::from_ymd_opt(2025, 11, 15).unwrap_or_default();
        let paths: Vec<(Vec<Cell>, i64)> = r
            .rows(CountKind::PathViews)
            .iter()
            .map(|(k, n)| (k.cells().to_vec(), *n))
            .collect();
        assert_eq!(
            paths,
            [
                (vec![Cell::Text("a"), Cell::Day(day), Cell::Text("/x")], 2),
                (vec![Cell::Text("a"), Cell::Day(day), Cell::Text("/y")], 1),
                (vec![Cell::Text("b"), Cell::Day(day), Cell::Text("/x")], 1),
            ]
        );
        let hourly = r.rows(CountKind::HourlyEvents);
        assert_eq!(hourly.len(), 4);
        assert_eq!(hourly[0].0.cells()[2], Cell::Hour(3));
        assert_eq!(r.rows(CountKind::MinuteEvents).iter().map(|(_, n)| n).sum::<i64>(), 5);
        assert_eq!(r.sites(), ["a", "b"]);
        assert_eq!(r.users().sites().len(), 2);
    }
}
