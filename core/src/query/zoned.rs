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
use analytics_query::engine::{nanos, Exclusion, SiteEvents, View, NONE};
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
        self.views += i64::from(s.name.get(i) == s.pageview);
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

/// The events of segment `s` in `range` that it does not leave to
/// another, by index.
fn within<'a>(
    (s, exclusion): (&'a SiteEvents, Option<&'a Exclusion>),
    range: ResolvedRange,
) -> impl Iterator<Item = usize> + 'a {
    let (start, end) = (nanos(range.start), nanos(range.end));
    (0..s.len()).filter(move |&i| start <= s.ts[i] && s.ts[i] < end && !exclusion.is_some_and(|x| x.excludes(s, i)))
}

/// The segments of a view: their visitors are disjoint, so their counts
/// add up.
fn segments(view: &View) -> impl Iterator<Item = (&SiteEvents, Option<&Exclusion>)> {
    view.segments.iter().map(|(s, x)| (&**s, x.as_deref()))
}

impl Tally {
    fn plus(self, other: Tally) -> Tally {
        Tally {
            views: self.views + other.views,
            events: self.events + other.events,
            users: self.users + other.users,
            visitors: self.visitors + other.visitors,
            last: None,
        }
    }
}

fn totals(view: &View, range: ResolvedRange) -> Tally {
    segments(view).fold(Tally::default(), |sum, segment| {
        let is_user = users(segment.0);
        let mut t = Tally::default();
        within(segment, range).for_each(|i| t.add(segment.0, i, &is_user));
        sum.plus(t)
    })
}

/// Views per path, most first, ties by path ascending.
fn top_paths(view: &View, range: ResolvedRange, limit: u32) -> Vec<PathViews> {
    let mut views: HashMap<&str, i64> = HashMap::new();
    for segment @ (s, _) in segments(view) {
        let mut by_code: HashMap<u32, i64> = HashMap::new();
        for i in within(segment, range).filter(|&i| s.name.get(i) == s.pageview) {
            *by_code.entry(s.path.get(i)).or_default() += 1;
        }
        for (path, n) in by_code {
            *views.entry(s.paths.text(path)).or_default() += n;
        }
    }
    let mut rows: Vec<PathViews> = views
        .into_iter()
        .map(|(path, views)| PathViews {
            path: path.to_string(),
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
    let current = days(tz, q.from, q.to);
    let t = totals(&s, current);
    let previous = q.compare.then(|| {
        let p = totals(&s, days(tz, prev_from, prev_to));
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
    let view = cache.columns(db, &q.site_id, range).await?;
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
    for segment @ (s, _) in segments(&view) {
        let is_user = users(s);
        let mut part = vec![Tally::default(); starts.len()];
        for i in within(segment, range) {
            // The last start at or before the event.
            let b = bounds.partition_point(|&start| start <= s.ts[i]).saturating_sub(1);
            part[b].add(s, i, &is_user);
        }
        for (sum, t) in tallies.iter_mut().zip(part) {
            *sum = sum.plus(t);
        }
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
    let view = cache.columns(db, &q.site_id, range).await?;
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for segment @ (s, _) in segments(&view) {
        let mut by_code: HashMap<u32, i64> = HashMap::new();
        for i in within(segment, range) {
            match q.by {
                Dimension::Path if s.name.get(i) == s.pageview => *by_code.entry(s.path.get(i)).or_default() += 1,
                Dimension::Path => {}
                Dimension::EventType => *by_code.entry(s.name.get(i)).or_default() += 1,
            }
        }
        let dict = match q.by {
            Dimension::Path => &s.paths,
            Dimension::EventType => &s.names,
        };
        for (code, n) in by_code {
            *counts.entry(dict.text(code)).or_default() += n;
        }
    }
    let mut rows: Vec<Row> = counts
        .into_iter()
        .map(|(key, count)| Row {
            key: key.to_string(),
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
