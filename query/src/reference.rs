//! The reference semantics of a query: a brute-force evaluator over a site's raw events, written to be obviously
//! correct rather than fast. Property tests use it as the oracle for the SQL implementation, so every choice below
//! is part of the contract.
//!
//! # Visits
//! - A visitor's events are ordered by `(timestamp, event_id)`; a new visit starts when the gap from the previous
//!   event is **more than** 30 minutes (exactly 30 minutes still joins). `event_id`s must be unique.
//! - Visits are built over **all** of a visitor's events, whatever the range and filters, so an event's visit is the
//!   same in every query.
//! - A visit's `source`, `referrer`, `channel`, `utm_*`, `device`, `browser`, `browser_version`, `os`, `os_version`
//!   and `country` are those of its first event. Its entry page is the path of its first `page_view`, its exit page
//!   that of its last; a visit without pageviews has neither.
//! - A visit bounced when it has exactly one event and that event is a `page_view`. Its duration is the whole
//!   seconds (truncated) between its first and last events.
//! - Events without a visitor belong to no visit and no visitor: they count in `events` and `pageviews` only.
//!
//! # Filters
//! - An event is kept when its timestamp is in the range and every top-level filter holds for it. `event:*`
//!   conditions test the event; `visit:*` conditions test its visit (so a visit filter keeps or drops all of a
//!   visit's events together); `and`, `or` and `not` combine them per event.
//! - `is` holds when the value equals any clause, `contains` when it contains any clause, `matches` when any
//!   regular expression matches somewhere in it (unanchored); `is_not`, `contains_not` and `matches_not` hold when
//!   no clause does. With `case_sensitive: false`, value and clauses are compared lowercased (regexes are compiled
//!   case-insensitive).
//! - `event:props:<key>` on an event without that key has the value `(none)`. An empty string is an ordinary value
//!   (the unknown one).
//! - A value that does not exist — any `visit:*` value of an event without a visit, the entry or exit page of a
//!   visit without pageviews — satisfies **no** condition, negated or not; `not` still negates the condition's
//!   result.
//!
//! # Goals
//! - An event converts on a goal when the goal matches it ([`crate::goal::Goal::matches`]); it may convert on
//!   several goals, or none.
//! - An `event:goal` condition tests the names of the goals the event converts on: a positive operator holds when
//!   one of them matches a clause, a negated one when none does (so `is_not` keeps events of no goal).
//! - The `event:goal` dimension puts an event in the row of each goal it converts on; an event of no goal is in no
//!   row.
//!
//! # Metrics, per result row, over the row's kept events
//! - `visitors`: distinct visitors; `visits`: distinct visits; `pageviews`: `page_view` events; `events`: events.
//! - `views_per_visit`: pageviews that belong to a visit, divided by visits, rounded half up to 2 decimals.
//! - `bounce_rate`: percentage of the visits that bounced, rounded half up to an integer.
//! - `visit_duration`: mean duration of the visits in seconds, rounded half up to an integer.
//! - `percentage`: the row's visitors as a percentage of the visitors of all kept events (no dimensions, same
//!   filters and range), rounded half up to 1 decimal.
//! - `conversion_rate`: the row's visitors as a percentage of the visitors of the events kept by the top-level
//!   filters that do not test `event:goal` (no dimensions), rounded half up to 2 decimals.
//! - `group_conversion_rate`: the same, divided by those visitors among the events with the row's values of the
//!   dimensions other than `event:goal`.
//! - `total_revenue`: the sum of the revenue of the row's kept events on the revenue goals in play (the row's goal
//!   with the `event:goal` dimension, else every goal): an event brings its `revenue_amount` (a decimal, counted to
//!   the millionth) when one of them matches it and its `revenue_currency` is that goal's; `{"value", "currency"}`,
//!   or `null` when the goals in play have no currency or several. `average_revenue`: that sum divided by the
//!   number of events that brought revenue, to the millionth, halves away from zero.
//! - Divisions by zero give 0. Rounding is done in integers, so results are exact.
//! - A visit's bounce and duration are properties of the whole visit, even when only some of its events are kept.
//!
//! # Rows
//! - Without dimensions there is exactly one row, even with no kept events.
//! - With dimensions an event falls in the row of its values: `event:*` from the event, `visit:*` from its visit,
//!   time dimensions from its timestamp's bucket in the site's zone (see [`crate::time`]). An event with a value
//!   that does not exist (see above) is in no row. A visit with events in several rows (e.g. two days) counts in
//!   each.
//! - Rows are sorted by `order_by` (as given, else the time dimension ascending then the first metric descending),
//!   then by the dimension values ascending (byte order) so the order is total; then `pagination` applies.
//! - `meta.total_rows` (the row count before pagination) and `meta.time_labels` (every bucket label of the range)
//!   are set when asked; `meta.imports_included` is `false` when imports are asked for.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::dimension::{Dimension, EventDimension, VisitDimension};
use crate::filter::{Condition, Filter, FilterDimension};
use crate::metric::Metric;
use crate::request::{Direction, OrderKey, Query};
use crate::time::{Granularity, ResolvedRange};

/// The event name of a pageview.
pub const PAGEVIEW: &str = "page_view";
/// A gap longer than this between two of a visitor's events starts a new visit.
pub const VISIT_TIMEOUT: Duration = Duration::minutes(30);
/// The value of a custom property on an event that lacks it.
pub const NO_PROP: &str = "(none)";

/// One raw event of a site. Empty strings are unknown values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawEvent {
    /// Unique per event; breaks ties between equal timestamps.
    pub event_id: u128,
    pub timestamp: DateTime<Utc>,
    /// `page_view` for a pageview.
    pub name: String,
    pub path: String,
    /// `None`: no visitor known.
    pub visitor: Option<String>,
    pub hostname: String,
    pub referrer: String,
    pub source: String,
    pub channel: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_content: String,
    pub utm_term: String,
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    pub device: String,
    pub country: String,
    pub props: std::collections::BTreeMap<String, String>,
}

impl RawEvent {
    pub fn is_pageview(&self) -> bool {
        self.name == PAGEVIEW
    }
}

/// One visit (session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub visitor: String,
    /// Indices into the input events, in `(timestamp, event_id)` order.
    pub events: Vec<usize>,
    pub entry_page: Option<String>,
    pub exit_page: Option<String>,
    pub pageviews: usize,
    pub bounced: bool,
    pub duration_secs: i64,
}

/// Every visit of a set of events, and the visit of each event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sessions {
    /// Ordered by visitor, then time.
    pub visits: Vec<Visit>,
    /// For each input event (same index), its visit's index in `visits`; `None` for events without a visitor.
    pub visit_of: Vec<Option<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("event_id {0} occurs more than once")]
    DuplicateEventId(u128),
    #[error("the range ends before it starts")]
    InvalidRange,
}

/// A metric's value: an integer, a float already rounded to its metric's decimals, an amount of money (millionths of
/// a currency's unit), or none (revenue without one currency).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    Int(u64),
    Float(f64),
    Money { micros: i128, currency: [u8; 3] },
    Null,
}

impl MetricValue {
    pub fn as_f64(self) -> f64 {
        match self {
            MetricValue::Int(n) => n as f64,
            MetricValue::Float(x) => x,
            MetricValue::Money { micros, .. } => micros as f64 / crate::goal::MICROS as f64,
            MetricValue::Null => f64::NEG_INFINITY,
        }
    }

    fn compare(self, other: MetricValue) -> Ordering {
        match (self, other) {
            (MetricValue::Int(a), MetricValue::Int(b)) => a.cmp(&b),
            (MetricValue::Money { micros: a, .. }, MetricValue::Money { micros: b, .. }) => a.cmp(&b),
            (a, b) => a.as_f64().total_cmp(&b.as_f64()),
        }
    }

    /// A money value's decimal text (`12.5`, `-0.000001`, `3`), exact.
    pub fn money_text(micros: i128) -> String {
        let sign = if micros < 0 { "-" } else { "" };
        let m = micros.unsigned_abs();
        let (whole, frac) = (m / 1_000_000, m % 1_000_000);
        if frac == 0 {
            format!("{sign}{whole}")
        } else {
            format!("{sign}{whole}.{}", format!("{frac:06}").trim_end_matches('0'))
        }
    }
}

impl Serialize for MetricValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MetricValue::Int(n) => s.serialize_u64(*n),
            MetricValue::Float(x) => s.serialize_f64(*x),
            MetricValue::Money { micros, currency } => {
                use serde::ser::SerializeMap;
                // The exact decimal as a JSON number (it parses as the
                // nearest double, as any JSON number does).
                let value: serde_json::Number = MetricValue::money_text(*micros)
                    .parse()
                    .map_err(serde::ser::Error::custom)?;
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("value", &value)?;
                m.serialize_entry("currency", std::str::from_utf8(currency).unwrap_or("XXX"))?;
                m.end()
            }
            MetricValue::Null => s.serialize_none(),
        }
    }
}

/// One result row: metric values in the query's metric order, dimension values in its dimension order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub metrics: Vec<MetricValue>,
    pub dimensions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Meta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imports_included: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_labels: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rows: Option<u64>,
}

/// A response in Plausible's shape: `{"results": [...], "meta": {...}, "query": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    pub results: Vec<Row>,
    pub meta: Meta,
    pub query: Value,
}

impl Response {
    pub fn to_json(&self) -> Value {
        // Serializing plain data (strings, integers, finite floats) into a Value cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Splits events into visits. Fails on a repeated `event_id`.
pub fn sessionize(events: &[RawEvent]) -> Result<Sessions, EvalError> {
    let mut seen = HashSet::new();
    for e in events {
        if !seen.insert(e.event_id) {
            return Err(EvalError::DuplicateEventId(e.event_id));
        }
    }
    let mut by_visitor: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if let Some(v) = &e.visitor {
            by_visitor.entry(v.as_str()).or_default().push(i);
        }
    }
    let mut visits = Vec::new();
    let mut visit_of = vec![None; events.len()];
    for (visitor, mut indices) in by_visitor {
        indices.sort_by_key(|&i| (events[i].timestamp, events[i].event_id));
        let mut current: Vec<usize> = Vec::new();
        for i in indices {
            if let Some(&prev) = current.last() {
                if events[i].timestamp - events[prev].timestamp > VISIT_TIMEOUT {
                    visits.push(make_visit(visitor, std::mem::take(&mut current), events));
                }
            }
            current.push(i);
        }
        if !current.is_empty() {
            visits.push(make_visit(visitor, current, events));
        }
    }
    for (v, visit) in visits.iter().enumerate() {
        for &i in &visit.events {
            visit_of[i] = Some(v);
        }
    }
    Ok(Sessions { visits, visit_of })
}

fn make_visit(visitor: &str, events_in_order: Vec<usize>, events: &[RawEvent]) -> Visit {
    let pageviews: Vec<usize> = events_in_order
        .iter()
        .copied()
        .filter(|&i| events[i].is_pageview())
        .collect();
    let first = events[events_in_order[0]].timestamp;
    let last = events[events_in_order[events_in_order.len() - 1]].timestamp;
    Visit {
        visitor: visitor.to_owned(),
        entry_page: pageviews.first().map(|&i| events[i].path.clone()),
        exit_page: pageviews.last().map(|&i| events[i].path.clone()),
        pageviews: pageviews.len(),
        bounced: pageviews.len() == 1 && events_in_order.len() == 1,
        duration_secs: (last - first).num_seconds(),
        events: events_in_order,
    }
}

fn event_value<'a>(dim: &EventDimension, e: &'a RawEvent) -> &'a str {
    match dim {
        EventDimension::Page => &e.path,
        EventDimension::Hostname => &e.hostname,
        EventDimension::Name => &e.name,
        EventDimension::Prop(key) => e.props.get(key).map_or(NO_PROP, String::as_str),
    }
}

/// A visit dimension's value for an event's visit; `None` when it does not exist.
fn visit_value<'a>(dim: VisitDimension, visit: Option<&'a Visit>, events: &'a [RawEvent]) -> Option<&'a str> {
    let visit = visit?;
    let first = &events[visit.events[0]];
    Some(match dim {
        VisitDimension::EntryPage => return visit.entry_page.as_deref(),
        VisitDimension::ExitPage => return visit.exit_page.as_deref(),
        VisitDimension::Source => &first.source,
        VisitDimension::Referrer => &first.referrer,
        VisitDimension::Channel => &first.channel,
        VisitDimension::UtmSource => &first.utm_source,
        VisitDimension::UtmMedium => &first.utm_medium,
        VisitDimension::UtmCampaign => &first.utm_campaign,
        VisitDimension::UtmContent => &first.utm_content,
        VisitDimension::UtmTerm => &first.utm_term,
        VisitDimension::Device => &first.device,
        VisitDimension::Browser => &first.browser,
        VisitDimension::BrowserVersion => &first.browser_version,
        VisitDimension::Os => &first.os,
        VisitDimension::OsVersion => &first.os_version,
        VisitDimension::Country => &first.country,
    })
}

/// `round(n / d)` with halves rounded up, for non-negative integers; 0 when `d` is 0.
fn round_div(n: u128, d: u128) -> u64 {
    if d == 0 {
        0
    } else {
        u64::try_from((2 * n + d) / (2 * d)).unwrap_or(u64::MAX)
    }
}

/// `round(n / d)` with halves away from zero; 0 when `d` is 0.
fn round_div_signed(n: i128, d: u64) -> i128 {
    if d == 0 {
        return 0;
    }
    let d = i128::from(d);
    let q = (2 * n.abs() + d) / (2 * d);
    if n < 0 {
        -q
    } else {
        q
    }
}

/// The currency shared by `goals`' revenue goals: `None` without any, or with several.
pub fn shared_currency<'a>(goals: impl IntoIterator<Item = &'a crate::goal::Goal>) -> Option<[u8; 3]> {
    let mut found: Option<&str> = None;
    for c in goals.into_iter().filter_map(|g| g.currency()) {
        match found {
            Some(f) if f != c => return None,
            _ => found = Some(c),
        }
    }
    found.and_then(|c| c.as_bytes().try_into().ok())
}

/// Evaluates a query over a site's raw events, for a resolved range in the site's zone.
pub fn evaluate(query: &Query, range: ResolvedRange, tz: Tz, events: &[RawEvent]) -> Result<Response, EvalError> {
    if range.end < range.start {
        return Err(EvalError::InvalidRange);
    }
    let sessions = sessionize(events)?;
    let visit_of = |i: usize| sessions.visit_of[i].map(|v| &sessions.visits[v]);
    let goals_of = goals_of(query, events);
    let kept_by = |filters: &[Filter]| kept_by(filters, range, events, &sessions, &goals_of);
    let visitors_of = |members: &[usize]| {
        members
            .iter()
            .filter_map(|&i| events[i].visitor.as_deref())
            .collect::<BTreeSet<_>>()
            .len() as u64
    };

    // 1. The kept events: in range, and every top-level filter holds.
    let kept = kept_by(query.filters());

    // 2. Group them by their dimension values: every combination of them, since an event converts on any number
    //    of goals.
    let granularity = query.time_dimension().map(|t| Granularity::for_dimension(t, range, tz));
    let values = |i: usize, d: &Dimension| -> Vec<String> {
        match d {
            Dimension::Event(d) => vec![event_value(d, &events[i]).to_owned()],
            Dimension::Visit(d) => visit_value(*d, visit_of(i), events)
                .map(str::to_owned)
                .into_iter()
                .collect(),
            Dimension::Time(_) => granularity
                .map(|g| g.label(tz, events[i].timestamp))
                .into_iter()
                .collect(),
            Dimension::Goal => goals_of[i].iter().map(|g| (*g).to_owned()).collect(),
        }
    };
    let keys = |i: usize, dims: &[&Dimension]| -> Vec<Vec<String>> {
        dims.iter().fold(vec![Vec::new()], |acc, d| {
            let vs = values(i, d);
            acc.iter()
                .flat_map(|prefix| {
                    vs.iter().map(move |v| {
                        let mut k = prefix.clone();
                        k.push(v.clone());
                        k
                    })
                })
                .collect()
        })
    };
    let all_dims: Vec<&Dimension> = query.dimensions().iter().collect();
    let mut groups: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    if all_dims.is_empty() {
        groups.insert(Vec::new(), kept.clone());
    } else {
        for &i in &kept {
            for key in keys(i, &all_dims) {
                groups.entry(key).or_default().push(i);
            }
        }
    }

    // 3. What rates divide by: all kept events' visitors; without the goal filters, all visitors, and those of each
    //    combination of the other dimensions' values.
    let total_visitors = visitors_of(&kept);
    let goal_at = query.dimensions().iter().position(|d| *d == Dimension::Goal);
    let other_dims: Vec<&Dimension> = query.dimensions().iter().filter(|d| **d != Dimension::Goal).collect();
    let base = kept_by(&query.non_goal_filters());
    let conversion_base = visitors_of(&base);
    let mut group_members: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for &i in &base {
        for key in keys(i, &other_dims) {
            group_members.entry(key).or_default().push(i);
        }
    }

    // 4. The metrics of each group.
    let rows: Vec<Row> = groups
        .into_iter()
        .map(|(dimensions, members)| {
            let visitors: BTreeSet<&str> = members.iter().filter_map(|&i| events[i].visitor.as_deref()).collect();
            let visits: BTreeSet<usize> = members.iter().filter_map(|&i| sessions.visit_of[i]).collect();
            let pageviews = members.iter().filter(|&&i| events[i].is_pageview()).count();
            let visit_pageviews = members
                .iter()
                .filter(|&&i| events[i].is_pageview() && sessions.visit_of[i].is_some())
                .count();
            // The revenue goals in play: the row's goal, or all of them.
            let in_play: Vec<&crate::goal::Goal> = query
                .goals()
                .iter()
                .filter(|g| goal_at.is_none_or(|p| g.name == dimensions[p]))
                .collect();
            let revenues: Vec<i128> = members
                .iter()
                .filter_map(|&i| in_play.iter().find_map(|g| g.revenue(&events[i])))
                .collect();
            let counts = Counts {
                visitors: visitors.len() as u64,
                visits: visits.len() as u64,
                pageviews: pageviews as u64,
                visit_pageviews: visit_pageviews as u64,
                events: members.len() as u64,
                bounced: visits.iter().filter(|&&v| sessions.visits[v].bounced).count() as u64,
                duration_secs: visits
                    .iter()
                    .map(|&v| sessions.visits[v].duration_secs.max(0) as u64)
                    .sum(),
                revenue_micros: revenues.iter().sum(),
                revenue_events: revenues.len() as u64,
            };
            let mut group = dimensions.clone();
            if let Some(p) = goal_at {
                group.remove(p);
            }
            let bases = Bases {
                percentage: total_visitors,
                conversion: conversion_base,
                group: group_members.get(&group).map_or(0, |m| visitors_of(m)),
                currency: shared_currency(in_play.iter().copied()),
            };
            let metrics = counts.metrics(query.metrics(), &bases);
            Row { metrics, dimensions }
        })
        .collect();

    Ok(respond(query, rows, granularity, range, tz))
}

/// The names of the goals each event converts on.
fn goals_of<'a>(query: &'a Query, events: &[RawEvent]) -> Vec<Vec<&'a str>> {
    events
        .iter()
        .map(|e| {
            query
                .goals()
                .iter()
                .filter(|g| g.matches(e))
                .map(|g| g.name.as_str())
                .collect()
        })
        .collect()
}

/// The events in the range for which every filter holds, in input order.
fn kept_by(
    filters: &[Filter],
    range: ResolvedRange,
    events: &[RawEvent],
    sessions: &Sessions,
    goals_of: &[Vec<&str>],
) -> Vec<usize> {
    let visit_of = |i: usize| sessions.visit_of[i].map(|v| &sessions.visits[v]);
    (0..events.len())
        .filter(|&i| range.contains(events[i].timestamp))
        .filter(|&i| {
            let mut atom = |c: &Condition| match c.dimension() {
                FilterDimension::Event(d) => c.holds(Some(event_value(d, &events[i]))),
                FilterDimension::Visit(d) => c.holds(visit_value(*d, visit_of(i), events)),
                FilterDimension::Goal => c.holds_any(&goals_of[i]),
            };
            filters.iter().all(|f| f.holds(&mut atom))
        })
        .collect()
}

/// The events a query keeps (in the range, its filters holding), for the
/// visits `sessions` of the same events.
pub fn kept_events(query: &Query, range: ResolvedRange, events: &[RawEvent], sessions: &Sessions) -> Vec<usize> {
    kept_by(query.filters(), range, events, sessions, &goals_of(query, events))
}

/// What a row's rates divide by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bases {
    /// `percentage`: the visitors of all kept events.
    pub percentage: u64,
    /// `conversion_rate`: the visitors of all events kept by the filters other than the goal filters.
    pub conversion: u64,
    /// `group_conversion_rate`: those visitors among the events with the row's non-goal dimension values.
    pub group: u64,
    /// The currency of the row's revenue: that of the revenue goals in play when they have one.
    pub currency: Option<[u8; 3]>,
}

/// What a result row's metrics are computed from: its kept events, and the distinct visitors and visits among them
/// (a visit's bounce and duration counted once per row it has kept events in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub visitors: u64,
    pub visits: u64,
    pub pageviews: u64,
    /// Pageviews that belong to a visit.
    pub visit_pageviews: u64,
    pub events: u64,
    /// Visits that bounced.
    pub bounced: u64,
    /// Sum of the visits' durations.
    pub duration_secs: u64,
    /// Revenue of the events on the revenue goals in play, and how many events brought it.
    pub revenue_micros: i128,
    pub revenue_events: u64,
}

impl Counts {
    /// The metrics' values, in the order asked, rates divided by `bases`.
    pub fn metrics(&self, metrics: &[Metric], bases: &Bases) -> Vec<MetricValue> {
        let rate = |base: u64| {
            MetricValue::Float(round_div(10_000 * u128::from(self.visitors), u128::from(base)) as f64 / 100.0)
        };
        let n_visits = u128::from(self.visits);
        metrics
            .iter()
            .map(|m| match m {
                Metric::Visitors => MetricValue::Int(self.visitors),
                Metric::Visits => MetricValue::Int(self.visits),
                Metric::Pageviews => MetricValue::Int(self.pageviews),
                Metric::Events => MetricValue::Int(self.events),
                Metric::ViewsPerVisit => {
                    MetricValue::Float(round_div(100 * u128::from(self.visit_pageviews), n_visits) as f64 / 100.0)
                }
                Metric::BounceRate => MetricValue::Int(round_div(100 * u128::from(self.bounced), n_visits)),
                Metric::VisitDuration => MetricValue::Int(round_div(u128::from(self.duration_secs), n_visits)),
                Metric::Percentage => MetricValue::Float(
                    round_div(1000 * u128::from(self.visitors), u128::from(bases.percentage)) as f64 / 10.0,
                ),
                Metric::ConversionRate => rate(bases.conversion),
                Metric::GroupConversionRate => rate(bases.group),
                Metric::TotalRevenue | Metric::AverageRevenue => match bases.currency {
                    None => MetricValue::Null,
                    Some(currency) => {
                        let micros = if *m == Metric::TotalRevenue {
                            self.revenue_micros
                        } else {
                            round_div_signed(self.revenue_micros, self.revenue_events)
                        };
                        MetricValue::Money { micros, currency }
                    }
                },
            })
            .collect()
    }
}

/// The response from a query's unordered rows: ordered by `order_by` then by dimension values, counted, paginated,
/// with the asked-for meta.
pub fn respond(
    query: &Query,
    mut rows: Vec<Row>,
    granularity: Option<Granularity>,
    range: ResolvedRange,
    tz: Tz,
) -> Response {
    rows.sort_by(|a, b| {
        for o in query.order_by() {
            let ord = match &o.key {
                OrderKey::Metric(m) => {
                    let k = query.metrics().iter().position(|x| x == m).unwrap_or(0);
                    a.metrics[k].compare(b.metrics[k])
                }
                OrderKey::Dimension(d) => {
                    let k = query.dimensions().iter().position(|x| x == d).unwrap_or(0);
                    a.dimensions[k].cmp(&b.dimensions[k])
                }
            };
            let ord = if o.direction == Direction::Desc {
                ord.reverse()
            } else {
                ord
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.dimensions.cmp(&b.dimensions)
    });
    let total_rows = rows.len() as u64;
    let pagination = query.pagination();
    let results: Vec<Row> = rows
        .into_iter()
        .skip(usize::try_from(pagination.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(pagination.limit).unwrap_or(usize::MAX))
        .collect();
    let include = query.include();
    let meta = Meta {
        imports_included: include.imports.then_some(false),
        time_labels: if include.time_labels {
            granularity.map(|g| g.labels(tz, range))
        } else {
            None
        },
        total_rows: include.total_rows.then_some(total_rows),
    };
    Response {
        results,
        meta,
        query: query.echo_json(range, tz),
    }
}
