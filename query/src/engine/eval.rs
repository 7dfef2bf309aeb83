//! A query over `SiteEvents`: the reference semantics (`crate::reference`)
//! in one pass over the columns. Conditions are decided once per
//! dictionary entry, not per event; events come grouped by visitor and
//! visit, so "distinct visitors" and "distinct visits" of a row are
//! counted by remembering the last one seen in it.

use super::codes::CodesRef;
use super::columns::{nanos, Dict, SiteEvents, VisitCodes, NONE};
use super::segments::{Exclusion, View};
use crate::dimension::{Dimension, EventDimension};
use crate::filter::{Condition, Filter, FilterDimension};
use crate::goal;
use crate::reference::{respond, shared_currency, Bases, Counts, EvalError, Response, Row, NO_PROP};
use crate::time::{Granularity, ResolvedRange};
use crate::Metric;
use crate::Query;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;

/// Where a condition or a dimension reads its code.
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    /// Per event.
    Event(CodesRef<'a>),
    /// Per visit, through the event's visit.
    Visit(VisitCodes<'a>),
    /// The same for every event (a property no event has: `(none)`).
    Constant(u32),
}

impl Source<'_> {
    /// The same for every event of a visit.
    fn per_visit(self) -> bool {
        matches!(self, Source::Visit(_) | Source::Constant(_))
    }

    #[inline(always)]
    fn code(self, event: usize, visit: u32) -> u32 {
        match self {
            Source::Event(codes) => codes.get(event),
            Source::Visit(codes) if visit != NONE => codes.code(visit as usize),
            Source::Visit(_) => NONE,
            Source::Constant(c) => c,
        }
    }
}

/// A column and its dictionary; `(none)` alone for a property no event has.
fn column<'a>(s: &'a SiteEvents, none: &'a Dict, d: &FilterDimension) -> (&'a Dict, Source<'a>) {
    match d {
        FilterDimension::Event(EventDimension::Page) => (&s.paths, Source::Event(s.path.slice())),
        FilterDimension::Event(EventDimension::Hostname) => (&s.hostnames, Source::Event(s.hostname.slice())),
        FilterDimension::Event(EventDimension::Name) => (&s.names, Source::Event(s.name.slice())),
        FilterDimension::Event(EventDimension::Prop(key)) => match s.props.get(key) {
            Some(c) => (&c.dict, Source::Event(c.values.slice())),
            None => (none, Source::Constant(0)),
        },
        FilterDimension::Visit(v) => {
            let (dict, codes) = s.visit_column(*v);
            (dict, Source::Visit(codes))
        }
        // Goal conditions are expanded into event conditions before
        // compiling (`goal::expand`); one left would have no value.
        FilterDimension::Goal => (none, Source::Constant(NONE)),
    }
}

/// A filter with each condition decided per dictionary code.
pub(super) enum Compiled<'a> {
    Condition { source: Source<'a>, holds: Vec<bool> },
    And(Vec<Compiled<'a>>),
    Or(Vec<Compiled<'a>>),
    Not(Box<Compiled<'a>>),
}

impl Compiled<'_> {
    /// Whether the filter holds for all of a visit's events or none.
    fn per_visit(&self) -> bool {
        match self {
            Compiled::Condition { source, .. } => source.per_visit(),
            Compiled::And(fs) | Compiled::Or(fs) => fs.iter().all(Compiled::per_visit),
            Compiled::Not(f) => f.per_visit(),
        }
    }

    /// A condition inline, in the scan's loop; only a combination is a
    /// call (perf showed two thirds of a filtered scan in calls to the
    /// whole recursive match, which the compiler would not inline).
    #[inline(always)]
    pub(super) fn holds(&self, event: usize, visit: u32) -> bool {
        match self {
            Compiled::Condition { source, holds } => {
                let code = source.code(event, visit);
                // A missing value satisfies no condition.
                code != NONE && holds.get(code as usize).copied().unwrap_or(false)
            }
            combined => combined.combination_holds(event, visit),
        }
    }

    #[inline(never)]
    fn combination_holds(&self, event: usize, visit: u32) -> bool {
        match self {
            Compiled::Condition { .. } => self.holds(event, visit),
            Compiled::And(fs) => fs.iter().all(|f| f.holds(event, visit)),
            Compiled::Or(fs) => fs.iter().any(|f| f.holds(event, visit)),
            Compiled::Not(f) => !f.holds(event, visit),
        }
    }
}

pub(super) fn compile<'a>(s: &'a SiteEvents, none: &'a Dict, f: &Filter) -> Compiled<'a> {
    match f {
        Filter::Condition(c) => condition(s, none, c),
        Filter::And(fs) => Compiled::And(fs.iter().map(|f| compile(s, none, f)).collect()),
        Filter::Or(fs) => Compiled::Or(fs.iter().map(|f| compile(s, none, f)).collect()),
        Filter::Not(f) => Compiled::Not(Box::new(compile(s, none, f))),
    }
}

fn condition<'a>(s: &'a SiteEvents, none: &'a Dict, c: &Condition) -> Compiled<'a> {
    let (dict, source) = column(s, none, c.dimension());
    Compiled::Condition {
        source,
        holds: dict.texts().map(|t| c.holds(Some(t))).collect(),
    }
}

/// The time bucket of an instant, by label code. Every zone's offset is
/// a multiple of 15 minutes today, but not in history; so a UTC quarter
/// hour's bucket is cached only when its first and last instants fall in
/// the same bucket at the same offset (local time then runs straight
/// through it), else each instant is labelled on its own.
struct Buckets {
    granularity: Granularity,
    tz: Tz,
    first_quarter: i64,
    quarters: Vec<u32>,
    labels: Dict,
}

const QUARTER: i64 = 15 * 60 * 1_000_000_000;
/// Unknown yet in `quarters`; mixed quarters keep `NONE`.
const UNSET: u32 = NONE - 1;

impl Buckets {
    fn new(granularity: Granularity, tz: Tz, range: ResolvedRange) -> Buckets {
        let (start, end) = (nanos(range.start), nanos(range.end));
        let first_quarter = start.div_euclid(QUARTER);
        let count = (end.div_euclid(QUARTER) - first_quarter + 1).clamp(0, 1 << 22) as usize;
        // Every label of the range first, so that an event in the range
        // has a code below their number (rows can then be a dense array).
        let mut labels = Dict::default();
        for label in granularity.labels(tz, range) {
            labels.intern(&label);
        }
        Buckets {
            granularity,
            tz,
            first_quarter,
            quarters: vec![UNSET; count],
            labels,
        }
    }

    // Out of line, as `fill`: inlined, the compiler computed their date
    // arithmetic for every event of every scan, time dimension or not.
    #[inline(never)]
    fn label_at(&mut self, ns: i64) -> u32 {
        let t = DateTime::<Utc>::from_timestamp_nanos(ns);
        let label = self.granularity.label(self.tz, t);
        self.labels.intern(&label)
    }

    #[inline]
    fn code(&mut self, ns: i64) -> u32 {
        let q = ns.div_euclid(QUARTER);
        let Some(slot) = usize::try_from(q - self.first_quarter)
            .ok()
            .filter(|&k| k < self.quarters.len())
        else {
            return self.label_at(ns);
        };
        match self.quarters[slot] {
            UNSET => self.fill(slot, q, ns),
            NONE => self.label_at(ns),
            code => code,
        }
    }

    /// Labels quarter `q` (slot `slot`) once: its label when both its ends
    /// have it at the same offset, else `NONE` (each instant on its own).
    #[cold]
    #[inline(never)]
    fn fill(&mut self, slot: usize, q: i64, ns: i64) -> u32 {
        let (a, b) = (q * QUARTER, q * QUARTER + QUARTER - 1);
        let (la, lb) = (self.label_at(a), self.label_at(b));
        let offset = |ns: i64| {
            use chrono::Offset;
            use chrono::TimeZone;
            let t = DateTime::<Utc>::from_timestamp_nanos(ns).naive_utc();
            self.tz.offset_from_utc_datetime(&t).fix()
        };
        let whole = la == lb && offset(a) == offset(b);
        self.quarters[slot] = if whole { la } else { NONE };
        if whole {
            la
        } else {
            self.label_at(ns)
        }
    }
}

/// Per row: the counts, and the last visit and visitor counted in it.
#[derive(Clone)]
struct Acc {
    counts: Counts,
    last_visit: u32,
    last_visitor: u32,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            counts: Counts::default(),
            last_visit: NONE,
            last_visitor: NONE,
        }
    }
}

impl Acc {
    #[inline]
    fn add_revenue(&mut self, revenue: Option<i128>) {
        if let Some(micros) = revenue {
            self.counts.revenue_micros += micros;
            self.counts.revenue_events += 1;
        }
    }

    /// A whole visit at once: its events, pageviews, and itself.
    #[inline]
    fn add_visit(&mut self, s: &SiteEvents, visit: u32) {
        let v = visit as usize;
        let (events, pageviews) = (u64::from(s.visit_len[v]), u64::from(s.visit_pageviews[v]));
        self.counts.events += events;
        self.counts.pageviews += pageviews;
        self.counts.visit_pageviews += pageviews;
        self.count_visit(s, visit);
    }

    #[inline]
    fn count_visit(&mut self, s: &SiteEvents, visit: u32) {
        let c = &mut self.counts;
        if self.last_visit != visit {
            self.last_visit = visit;
            c.visits += 1;
            c.bounced += u64::from(s.visit_bounced[visit as usize]);
            c.duration_secs += s.visit_duration[visit as usize];
            let visitor = s.visit_visitor[visit as usize];
            if self.last_visitor != visitor {
                self.last_visitor = visitor;
                c.visitors += 1;
            }
        }
    }

    #[inline]
    fn add(&mut self, s: &SiteEvents, is_pageview: bool, visit: u32) {
        let c = &mut self.counts;
        c.events += 1;
        if is_pageview {
            c.pageviews += 1;
        }
        if visit == NONE {
            return;
        }
        if is_pageview {
            c.visit_pageviews += 1;
        }
        self.count_visit(s, visit);
    }
}

/// A dimension's code per event, and its text per code.
enum Key<'a> {
    Column(&'a Dict, Source<'a>),
    Time,
}

/// Largest number of rows kept as a dense array (of every combination of
/// the dimensions' codes); beyond it, a hash map.
const DENSE_CELLS: usize = 1 << 18;

/// The rows by their dimensions' codes: a dense array indexed by the codes
/// when their combinations are few, with a map for the rest.
struct Rows {
    /// Codes per dimension in the dense array (0: no dense array).
    sizes: Vec<usize>,
    dense: Vec<Acc>,
    sparse: HashMap<Vec<u32>, Acc, foldhash::fast::RandomState>,
}

impl Rows {
    fn new(sizes: Vec<usize>, dense_cells: usize) -> Rows {
        let cells = sizes
            .iter()
            .try_fold(1usize, |n, &k| n.checked_mul(k))
            .filter(|&n| n <= dense_cells);
        Rows {
            dense: vec![Acc::default(); cells.unwrap_or(0)],
            sizes: if cells.is_some() { sizes } else { Vec::new() },
            sparse: HashMap::default(),
        }
    }

    #[inline]
    fn get(&mut self, key: &[u32]) -> &mut Acc {
        if !self.dense.is_empty() {
            let mut index = 0usize;
            let mut fits = true;
            for (&code, &size) in key.iter().zip(&self.sizes) {
                fits &= (code as usize) < size;
                index = index * size + code as usize;
            }
            if fits {
                return &mut self.dense[index];
            }
        }
        if !self.sparse.contains_key(key) {
            self.sparse.insert(key.to_vec(), Acc::default());
        }
        self.sparse
            .get_mut(key)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// `get` of a single dimension's code.
    #[inline(always)]
    fn get_one(&mut self, code: u32) -> &mut Acc {
        if self.sizes.len() == 1 && (code as usize) < self.dense.len() {
            return &mut self.dense[code as usize];
        }
        self.get(&[code])
    }

    /// Every row with an event, with its codes.
    fn into_rows(self) -> impl Iterator<Item = (Vec<u32>, Acc)> {
        let sizes = self.sizes;
        let dense = self
            .dense
            .into_iter()
            .enumerate()
            .filter(|(_, a)| a.counts.events > 0)
            .map(move |(mut index, acc)| {
                let mut codes = vec![0u32; sizes.len()];
                for (code, &size) in codes.iter_mut().zip(&sizes).rev() {
                    *code = (index % size) as u32;
                    index /= size;
                }
                (codes, acc)
            });
        dense.chain(self.sparse)
    }
}

/// Events per part below which a query is not split across threads.
const PART_EVENTS: usize = 250_000;

/// Evaluates `query` over the columns, as `reference::evaluate` over the raw
/// events they were built from; on several threads for many events.
pub fn evaluate(query: &Query, range: ResolvedRange, tz: Tz, s: &SiteEvents) -> Result<Response, EvalError> {
    evaluate_segments(query, range, tz, &[(s, None)])
}

/// `evaluate` over a view's segments (see `View`).
pub fn evaluate_view(query: &Query, range: ResolvedRange, tz: Tz, view: &View) -> Result<Response, EvalError> {
    evaluate_segments(query, range, tz, &view.borrowed())
}

fn evaluate_segments(query: &Query, range: ResolvedRange, tz: Tz, segments: &[Segment]) -> Result<Response, EvalError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let largest = segments.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
    let parts = (largest / PART_EVENTS).clamp(1, threads);
    evaluate_with(query, range, tz, segments, DENSE_CELLS, parts)
}

/// One segment of a view, borrowed: its events and what it leaves out.
pub(crate) type Segment<'a> = (&'a SiteEvents, Option<&'a Exclusion>);

/// The parts' bounds: about equal, each ending where a visitor does (a
/// visitor's visits are then all in one part, and parts' distinct visits
/// and visitors add up).
fn split(s: &SiteEvents, parts: usize) -> Vec<(usize, usize)> {
    let n = s.len();
    let visitor = |i: usize| match s.visit[i] {
        NONE => NONE,
        v => s.visit_visitor[v as usize],
    };
    let mut bounds = vec![0];
    for k in 1..parts {
        let mut b = (n * k / parts).max(*bounds.last().unwrap_or(&0));
        while b > 0 && b < n && visitor(b) != NONE && visitor(b) == visitor(b - 1) {
            b += 1;
        }
        bounds.push(b);
    }
    bounds.push(n);
    bounds.windows(2).map(|w| (w[0], w[1])).collect()
}

/// What one part of the events adds up to.
struct Partial {
    rows: Rows,
    single: Acc,
    total: Acc,
    buckets: Option<Buckets>,
}

/// The compiled query, shared by the parts.
struct Scan<'a> {
    s: &'a SiteEvents,
    /// What this segment leaves to another.
    exclusion: Option<&'a Exclusion>,
    filters: Vec<Compiled<'a>>,
    /// Which filters hold for all of a visit's events or none: decided
    /// once at the visit's first event, whose visit is skipped whole when
    /// one fails (a filter on the source leaves most events unread).
    by_visit: Vec<bool>,
    keys: Vec<Key<'a>>,
    granularity: Option<Granularity>,
    tz: Tz,
    range: ResolvedRange,
    dense_cells: usize,
    /// Every dimension and filter is a property of the visit: a visit
    /// wholly in the range is counted at once, not event by event.
    per_visit: bool,
    /// The visitors of all kept events are asked for (`percentage`) and
    /// are not those of the single row.
    total: bool,
    /// Revenue to add up, per event.
    revenue: Option<Revenue<'a>>,
}

/// What an event brings on the revenue goals in play: its amount (by the
/// code of its `revenue_amount`, parsed once per distinct value) when one
/// of the goals holds for it and its currency is that goal's.
struct Revenue<'a> {
    amounts: Vec<Option<i128>>,
    amount_codes: CodesRef<'a>,
    currency_codes: CodesRef<'a>,
    goals: Vec<(Compiled<'a>, u32)>,
}

impl<'a> Revenue<'a> {
    fn new(s: &'a SiteEvents, none: &'a Dict, goals: &[crate::goal::Goal]) -> Option<Revenue<'a>> {
        let amount = s.props.get(crate::goal::REVENUE_AMOUNT)?;
        let currency = s.props.get(crate::goal::REVENUE_CURRENCY)?;
        let goals: Vec<(Compiled, u32)> = goals
            .iter()
            .filter_map(|g| Some((compile(s, none, &g.to_filter()), currency.dict.code(g.currency()?)?)))
            .collect();
        if goals.is_empty() {
            return None;
        }
        Some(Revenue {
            amounts: amount.dict.texts().map(crate::goal::parse_amount).collect(),
            amount_codes: amount.values.slice(),
            currency_codes: currency.values.slice(),
            goals,
        })
    }

    #[inline]
    fn of(&self, event: usize, visit: u32) -> Option<i128> {
        let amount = self.amounts[self.amount_codes.get(event) as usize]?;
        let currency = self.currency_codes.get(event);
        self.goals
            .iter()
            .any(|(f, c)| *c == currency && f.holds(event, visit))
            .then_some(amount)
    }
}

impl Scan<'_> {
    fn part(&self, (from, to): (usize, usize)) -> Partial {
        let s = self.s;
        let mut buckets = self.granularity.map(|g| Buckets::new(g, self.tz, self.range));
        let sizes = self
            .keys
            .iter()
            .map(|k| match k {
                Key::Column(dict, _) => dict.len().max(1),
                Key::Time => buckets.as_ref().map_or(1, |b| b.labels.len().max(1)),
            })
            .collect();
        let mut rows = Rows::new(sizes, self.dense_cells);
        // Without dimensions there is one row, even with no events.
        let mut single = Acc::default();
        let mut total = Acc::default();
        let (start, end) = (nanos(self.range.start), nanos(self.range.end));
        let mut key = vec![0u32; self.keys.len()];
        let checks_visits = self.by_visit.iter().any(|&v| v);
        // One dimension read from a column: the row is found without the
        // general key loop (most breakdowns).
        let one_column = match self.keys.as_slice() {
            [Key::Column(_, source)] => Some(*source),
            _ => None,
        };
        // The visit whose filters on the visit held at its first event.
        let mut passed = NONE;
        let mut i = from;
        while i < to {
            let visit = s.visit[i];
            if let Some(x) = self.exclusion {
                if let Some(next) = x.skip(s, i) {
                    i = next;
                    continue;
                }
            }
            if checks_visits && visit != NONE && s.visit_start[visit as usize] as usize == i {
                let holds = self
                    .filters
                    .iter()
                    .zip(&self.by_visit)
                    .all(|(f, &by_visit)| !by_visit || f.holds(i, visit));
                if !holds {
                    i += s.visit_len[visit as usize] as usize;
                    continue;
                }
                passed = visit;
            }
            if self.per_visit && visit != NONE && s.visit_start[visit as usize] as usize == i {
                let after = i + s.visit_len[visit as usize] as usize;
                if start <= s.ts[i] && s.ts[after - 1] < end {
                    // Every filter is the visit's, so all held above.
                    i = after;
                    if self.total {
                        total.add_visit(s, visit);
                    }
                    if self.keys.is_empty() {
                        single.add_visit(s, visit);
                        continue;
                    }
                    let mut missing = false;
                    for (slot, k) in key.iter_mut().zip(&self.keys) {
                        *slot = match k {
                            Key::Column(_, source) => source.code(after - 1, visit),
                            Key::Time => NONE,
                        };
                        missing |= *slot == NONE;
                    }
                    if !missing {
                        rows.get(&key).add_visit(s, visit);
                    }
                    continue;
                }
            }
            let i_now = i;
            i += 1;
            let i = i_now;
            let ts = s.ts[i];
            if ts < start || ts >= end {
                continue;
            }
            let visit = s.visit[i];
            let kept = if visit != NONE && visit == passed {
                self.filters
                    .iter()
                    .zip(&self.by_visit)
                    .all(|(f, &by_visit)| by_visit || f.holds(i, visit))
            } else {
                self.filters.iter().all(|f| f.holds(i, visit))
            };
            if !kept {
                continue;
            }
            let is_pageview = s.name.get(i) == s.pageview;
            let revenue = self.revenue.as_ref().and_then(|r| r.of(i, visit));
            if self.total {
                total.add(s, is_pageview, visit);
            }
            if self.keys.is_empty() {
                single.add(s, is_pageview, visit);
                single.add_revenue(revenue);
                continue;
            }
            let acc = if let Some(source) = one_column {
                let code = source.code(i, visit);
                if code == NONE {
                    continue;
                }
                rows.get_one(code)
            } else {
                let mut missing = false;
                for (slot, k) in key.iter_mut().zip(&self.keys) {
                    *slot = match k {
                        Key::Column(_, source) => source.code(i, visit),
                        Key::Time => buckets.as_mut().map_or(NONE, |b| b.code(ts)),
                    };
                    missing |= *slot == NONE;
                }
                if missing {
                    continue;
                }
                rows.get(&key)
            };
            acc.add(s, is_pageview, visit);
            acc.add_revenue(revenue);
        }
        Partial {
            rows,
            single,
            total,
            buckets,
        }
    }
}

fn add(into: &mut Counts, other: &Counts) {
    into.visitors += other.visitors;
    into.visits += other.visits;
    into.pageviews += other.pageviews;
    into.visit_pageviews += other.visit_pageviews;
    into.events += other.events;
    into.bounced += other.bounced;
    into.duration_secs += other.duration_secs;
    into.revenue_micros += other.revenue_micros;
    into.revenue_events += other.revenue_events;
}

impl Partial {
    /// Adds another part's counts: its visitors and visits are not this
    /// part's, so distinct counts add. Time codes go through the labels.
    fn merge(&mut self, other: Partial, keys: &[Key]) {
        add(&mut self.single.counts, &other.single.counts);
        add(&mut self.total.counts, &other.total.counts);
        for (mut codes, acc) in other.rows.into_rows() {
            for (code, k) in codes.iter_mut().zip(keys) {
                if let (Key::Time, Some(mine), Some(theirs)) = (k, self.buckets.as_mut(), other.buckets.as_ref()) {
                    *code = mine.labels.intern(theirs.labels.text(*code));
                }
            }
            add(&mut self.rows.get(&codes).counts, &acc.counts);
        }
    }
}

/// `evaluate` with rows in a dense array only up to `dense_cells`, over
/// `parts` threads (tests take every way). Goals become event filters: one
/// scan per goal for the `event:goal` dimension (an event may convert on
/// several), and scans without the goal filters for conversion rates.
pub(crate) fn evaluate_with(
    query: &Query,
    range: ResolvedRange,
    tz: Tz,
    segments: &[Segment],
    dense_cells: usize,
    parts: usize,
) -> Result<Response, EvalError> {
    if range.end < range.start {
        return Err(EvalError::InvalidRange);
    }
    let goals = query.goals();
    let metrics = query.metrics();
    let revenue = metrics.iter().any(|m| m.is_revenue());
    let scan = |filters: &[Filter], dims: &[Dimension], total: bool, in_play: &[crate::goal::Goal]| {
        let in_play = if revenue { in_play } else { &[] };
        tally_segments(filters, dims, total, in_play, range, tz, segments, dense_cells, parts)
    };
    let filters: Vec<Filter> = query.filters().iter().map(|f| goal::expand(f, goals)).collect();
    let goal_at = query.dimensions().iter().position(|d| *d == Dimension::Goal);
    let others: Vec<Dimension> = query
        .dimensions()
        .iter()
        .filter(|d| **d != Dimension::Goal)
        .cloned()
        .collect();
    let percentage = metrics.contains(&Metric::Percentage);
    let (rows, total_visitors) = match goal_at {
        None => {
            let t = scan(&filters, &others, percentage && !others.is_empty(), goals);
            (t.rows, t.all.visitors)
        }
        Some(at) => {
            let mut rows = Vec::new();
            for g in goals {
                let mut with_goal = filters.clone();
                with_goal.push(g.to_filter());
                for (mut dims, counts) in scan(&with_goal, &others, false, std::slice::from_ref(g)).rows {
                    // Without other dimensions a scan has its one row even
                    // when empty; a goal without conversions has none.
                    if counts.events > 0 {
                        dims.insert(at, g.name.clone());
                        rows.push((dims, counts));
                    }
                }
            }
            let total = if percentage {
                scan(&filters, &[], false, &[]).all.visitors
            } else {
                0
            };
            (rows, total)
        }
    };
    let base_filters = query.non_goal_filters();
    let conversion_base = if metrics.contains(&Metric::ConversionRate) {
        scan(&base_filters, &[], false, &[]).all.visitors
    } else {
        0
    };
    let group_bases: HashMap<Vec<String>, u64> = if metrics.contains(&Metric::GroupConversionRate) {
        scan(&base_filters, &others, false, &[])
            .rows
            .into_iter()
            .map(|(dims, c)| (dims, c.visitors))
            .collect()
    } else {
        HashMap::new()
    };
    let out: Vec<Row> = rows
        .into_iter()
        .map(|(dimensions, counts)| {
            let mut group = dimensions.clone();
            if let Some(at) = goal_at {
                group.remove(at);
            }
            let currency = match goal_at {
                Some(at) => shared_currency(goals.iter().filter(|g| g.name == dimensions[at])),
                None => shared_currency(goals),
            };
            let bases = Bases {
                percentage: total_visitors,
                conversion: conversion_base,
                group: group_bases.get(&group).copied().unwrap_or(0),
                currency,
            };
            Row {
                metrics: counts.metrics(metrics, &bases),
                dimensions,
            }
        })
        .collect();
    let granularity = query.time_dimension().map(|t| Granularity::for_dimension(t, range, tz));
    Ok(respond(query, out, granularity, range, tz))
}

/// What one scan counts: every row with its dimension values (without
/// dimensions, the single row, even empty), and the counts of all kept
/// events (their visitors only when `total` was asked, or without
/// dimensions).
struct Tally {
    rows: Vec<(Vec<String>, Counts)>,
    all: Counts,
}

/// `tally` over each segment, added up: their visitors are disjoint, so
/// distinct counts add; rows meet by their dimensions' texts.
#[allow(clippy::too_many_arguments)]
fn tally_segments(
    filters: &[Filter],
    dimensions: &[Dimension],
    total: bool,
    revenue_goals: &[crate::goal::Goal],
    range: ResolvedRange,
    tz: Tz,
    segments: &[Segment],
    dense_cells: usize,
    parts: usize,
) -> Tally {
    let mut tallies = segments.iter().map(|&segment| {
        tally(
            filters,
            dimensions,
            total,
            revenue_goals,
            range,
            tz,
            segment,
            dense_cells,
            parts,
        )
    });
    let Some(mut out) = tallies.next() else {
        return tally(
            filters,
            dimensions,
            total,
            revenue_goals,
            range,
            tz,
            (&SiteEvents::default(), None),
            dense_cells,
            parts,
        );
    };
    let mut index: Option<HashMap<Vec<String>, usize>> = None;
    for other in tallies {
        add(&mut out.all, &other.all);
        let index = index.get_or_insert_with(|| {
            out.rows
                .iter()
                .enumerate()
                .map(|(k, (dims, _))| (dims.clone(), k))
                .collect()
        });
        for (dims, counts) in other.rows {
            match index.get(&dims) {
                Some(&k) => add(&mut out.rows[k].1, &counts),
                None => {
                    index.insert(dims.clone(), out.rows.len());
                    out.rows.push((dims, counts));
                }
            }
        }
    }
    out
}

/// One pass over one segment's columns for goal-free filters and
/// dimensions.
#[allow(clippy::too_many_arguments)]
fn tally(
    filters: &[Filter],
    dimensions: &[Dimension],
    total: bool,
    revenue_goals: &[crate::goal::Goal],
    range: ResolvedRange,
    tz: Tz,
    (s, exclusion): Segment,
    dense_cells: usize,
    parts: usize,
) -> Tally {
    let none = {
        let mut d = Dict::default();
        d.intern(NO_PROP);
        d
    };
    let keys: Vec<Key> = dimensions
        .iter()
        .map(|d| match d {
            Dimension::Event(e) => {
                let (dict, source) = column(s, &none, &FilterDimension::Event(e.clone()));
                Key::Column(dict, source)
            }
            Dimension::Visit(v) => {
                let (dict, source) = column(s, &none, &FilterDimension::Visit(*v));
                Key::Column(dict, source)
            }
            Dimension::Time(_) => Key::Time,
            Dimension::Goal => Key::Column(&none, Source::Constant(NONE)),
        })
        .collect();
    let time = dimensions.iter().find_map(|d| match d {
        Dimension::Time(t) => Some(*t),
        _ => None,
    });
    let filters: Vec<Compiled> = filters.iter().map(|f| compile(s, &none, f)).collect();
    let scan = Scan {
        s,
        exclusion,
        by_visit: filters.iter().map(Compiled::per_visit).collect(),
        filters,
        keys,
        granularity: time.map(|t| Granularity::for_dimension(t, range, tz)),
        tz,
        range,
        dense_cells,
        per_visit: false,
        total: false,
        revenue: Revenue::new(s, &none, revenue_goals),
    };
    // Revenue is an event's: no visit is counted at once then.
    let per_visit = scan.revenue.is_none()
        && scan.filters.iter().all(Compiled::per_visit)
        && scan
            .keys
            .iter()
            .all(|k| matches!(k, Key::Column(_, source) if source.per_visit()));
    // Without dimensions the single row's counts are all kept events'.
    let total = total && !scan.keys.is_empty();
    let scan = Scan {
        per_visit,
        total,
        ..scan
    };
    let bounds = split(s, parts.max(1));
    let mut partials: Vec<Partial> = if bounds.len() == 1 {
        vec![scan.part(bounds[0])]
    } else {
        std::thread::scope(|scope| {
            let scan = &scan;
            let handles: Vec<_> = bounds.iter().map(|&b| scope.spawn(move || scan.part(b))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    let mut result = partials.remove(0);
    for p in partials {
        result.merge(p, &scan.keys);
    }

    let keys = &scan.keys;
    if keys.is_empty() {
        let single = result.single.counts;
        return Tally {
            rows: vec![(Vec::new(), single)],
            all: single,
        };
    }
    let buckets = result.buckets;
    let rows = result
        .rows
        .into_rows()
        .map(|(codes, acc)| {
            let dims = codes
                .iter()
                .zip(keys)
                .map(|(&c, k)| match k {
                    Key::Column(dict, _) => dict.text(c).to_owned(),
                    Key::Time => buckets.as_ref().map_or("", |b| b.labels.text(c)).to_owned(),
                })
                .collect();
            (dims, acc.counts)
        })
        .collect();
    Tally {
        rows,
        all: result.total.counts,
    }
}
