//! `/stats`, `/stats/timeseries` and `/stats/breakdown` for a site in a
//! zone other than UTC: its days and hours are local, and the rollups
//! count UTC days and hours, so these answers come from the raw events,
//! through the query API's columns (and their cache). Same fields, same
//! definitions: views are `page_view` events, unique users distinct
//! non-empty `user_id`s, visitors those and the cookieless visitors.

use super::breakdown::{Breakdown, BreakdownQuery, Dimension, Row};
use super::params::previous_period;
use super::series::{Interval, Point, Series, SeriesQuery};
use super::stats::{PeriodTotals, Stats, StatsQuery};
use super::v2::{ColumnCache, QueryError};
use crate::codec::path_pack::PathViews;
use analytics_query::engine::{nanos, SiteEvents, NONE};
use analytics_query::time::local_day_start;
use analytics_query::ResolvedRange;
use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use sea_orm::DatabaseConnection;
use std::collections::HashMap;

/// The instants from the start of local day `from` to the end of local
/// day `to`.
fn days(tz: Tz, from: NaiveDate, to: NaiveDate) -> ResolvedRange {
    ResolvedRange {
        start: local_day_start(tz, from),
        end: local_day_start(tz, to + Duration::days(1)),
    }
}

/// Whether each visitor (by code) is a user (`user_id`) rather than a
/// cookieless visitor: the store names them `u:…` and `c:…`.
fn users(s: &SiteEvents) -> Vec<bool> {
    s.visitors.texts().map(|v| v.starts_with("u:")).collect()
}

/// A group's counts; distinct visitors by the last one seen (events come
/// grouped by visitor).
#[derive(Default, Clone, Copy)]
struct Tally {
    views: i64,
    events: i64,
    users: i64,
    visitors: i64,
    last: Option<u32>,
}

impl Tally {
    fn add(&mut self, s: &SiteEvents, i: usize, is_user: &[bool]) {
        self.events += 1;
        self.views += i64::from(s.name[i] == s.pageview);
        let visit = s.visit[i];
        if visit == NONE {
            return;
        }
        let visitor = s.visit_visitor[visit as usize];
        if self.last != Some(visitor) {
            self.last = Some(visitor);
            self.visitors += 1;
            self.users += i64::from(is_user[visitor as usize]);
        }
    }
}

/// The events of `s` in `range`, by index.
fn within(s: &SiteEvents, range: ResolvedRange) -> impl Iterator<Item = usize> + '_ {
    let (start, end) = (nanos(range.start), nanos(range.end));
    (0..s.len()).filter(move |&i| start <= s.ts[i] && s.ts[i] < end)
}

fn totals(s: &SiteEvents, range: ResolvedRange, is_user: &[bool]) -> Tally {
    let mut t = Tally::default();
    within(s, range).for_each(|i| t.add(s, i, is_user));
    t
}

/// Views per path, most first, ties by path ascending.
fn top_paths(s: &SiteEvents, range: ResolvedRange, limit: u32) -> Vec<PathViews> {
    let mut views: HashMap<u32, i64> = HashMap::new();
    for i in within(s, range).filter(|&i| s.name[i] == s.pageview) {
        *views.entry(s.path[i]).or_default() += 1;
    }
    let mut rows: Vec<PathViews> = views
        .into_iter()
        .map(|(p, views)| PathViews {
            path: s.paths.text(p).to_string(),
            views,
        })
        .collect();
    rows.sort_by(|a, b| b.views.cmp(&a.views).then_with(|| a.path.cmp(&b.path)));
    rows.truncate(limit as usize);
    rows
}

pub async fn stats(db: &DatabaseConnection, cache: &ColumnCache, q: &StatsQuery, tz: Tz) -> Result<Stats, QueryError> {
    let (prev_from, prev_to) = previous_period(q.from, q.to);
    let first = if q.compare { prev_from } else { q.from };
    let s = cache.columns(db, &q.site_id, days(tz, first, q.to)).await?;
    let is_user = users(&s);
    let current = days(tz, q.from, q.to);
    let t = totals(&s, current, &is_user);
    let previous = q.compare.then(|| {
        let p = totals(&s, days(tz, prev_from, prev_to), &is_user);
        PeriodTotals {
            from: prev_from,
            to: prev_to,
            total_views: p.views,
            unique_users: p.users,
            visitors: p.visitors,
            total_events: p.events,
        }
    });
    Ok(Stats {
        site_id: q.site_id.clone(),
        date: q.single_date.then_some(q.from),
        from: q.from,
        to: q.to,
        total_views: t.views,
        unique_users: t.users,
        visitors: t.visitors,
        total_events: t.events,
        top_paths: top_paths(&s, current, q.limit),
        previous,
    })
}

/// The local hours' starts in `range`: every instant at which the local
/// time is a whole hour (found minute by minute: every offset in use
/// since 1972 is whole minutes), the range's start first. A repeated
/// hour (clocks going back) is two buckets, a skipped one none.
fn hour_starts(tz: Tz, range: ResolvedRange) -> Vec<DateTime<Utc>> {
    let mut out = vec![range.start];
    let mut t = range.start - Duration::seconds(range.start.timestamp().rem_euclid(60)) + Duration::minutes(1);
    while t < range.end {
        let local = t.with_timezone(&tz);
        if local.minute() == 0 && local.second() == 0 {
            out.push(t);
        }
        t += Duration::minutes(1);
    }
    out
}

pub async fn series(
    db: &DatabaseConnection,
    cache: &ColumnCache,
    q: &SeriesQuery,
    tz: Tz,
) -> Result<Series, QueryError> {
    let range = days(tz, q.from, q.to);
    let s = cache.columns(db, &q.site_id, range).await?;
    let is_user = users(&s);
    let starts: Vec<DateTime<Utc>> = match q.interval {
        Interval::Hour => hour_starts(tz, range),
        Interval::Day => {
            let n = (q.to - q.from).num_days() + 1;
            (0..n)
                .map(|d| local_day_start(tz, q.from + Duration::days(d)))
                .collect()
        }
    };
    let bounds: Vec<i64> = starts.iter().map(|t| nanos(*t)).collect();
    let mut tallies = vec![Tally::default(); starts.len()];
    for i in within(&s, range) {
        // The last start at or before the event.
        let b = bounds.partition_point(|&start| start <= s.ts[i]).saturating_sub(1);
        tallies[b].add(&s, i, &is_user);
    }
    Ok(Series {
        site_id: q.site_id.clone(),
        from: q.from,
        to: q.to,
        interval: q.interval,
        points: starts
            .into_iter()
            .zip(tallies)
            .map(|(start, t)| Point {
                start,
                views: t.views,
                unique_users: t.users,
                events: t.events,
            })
            .collect(),
    })
}

pub async fn breakdown(
    db: &DatabaseConnection,
    cache: &ColumnCache,
    q: &BreakdownQuery,
    tz: Tz,
) -> Result<Breakdown, QueryError> {
    let range = days(tz, q.from, q.to);
    let s = cache.columns(db, &q.site_id, range).await?;
    let mut counts: HashMap<u32, i64> = HashMap::new();
    for i in within(&s, range) {
        match q.by {
            Dimension::Path if s.name[i] == s.pageview => *counts.entry(s.path[i]).or_default() += 1,
            Dimension::Path => {}
            Dimension::EventType => *counts.entry(s.name[i]).or_default() += 1,
        }
    }
    let dict = match q.by {
        Dimension::Path => &s.paths,
        Dimension::EventType => &s.names,
    };
    let mut rows: Vec<Row> = counts
        .into_iter()
        .map(|(k, count)| Row {
            key: dict.text(k).to_string(),
            count,
        })
        .collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    rows.truncate(q.limit as usize);
    Ok(Breakdown {
        site_id: q.site_id.clone(),
        from: q.from,
        to: q.to,
        by: q.by,
        rows,
    })
}
