//! A site's raw events for one query: every event in the range, and every
//! event of the visits those events belong to, whatever their time.
//!
//! A visit is a visitor's run of events with no gap over
//! [`VISIT_TIMEOUT`], so it can reach past the range by any length of
//! chained events. The window starts at the range widened by one timeout on
//! each side; then, for the visitors with an event in the range whose
//! earliest (latest) loaded event lies within one timeout of the window's
//! edge, their own events beyond the edge are fetched, in doubling steps,
//! until each of them has a gap over the timeout at both edges. The
//! events of one visitor are then always a whole time interval of theirs,
//! so every visit that touches the range is complete. Visits wholly in the
//! margins may be cut; no answer reads them.
//!
//! The window's closed UTC days come from their stored day blocks where
//! those still hold (`blocks`), else from their rows, each into a block of
//! its own that the caller may store; the edges of the window and the
//! extensions past it always from rows.

use super::blocks::{self, StoredBlock};
use super::QueryError;
use crate::store::StoreError;
use analytics_query::engine::{nanos, split_off, Block, Builder, EventRef, Exclusion, SiteEvents, NONE};
use analytics_query::reference::VISIT_TIMEOUT;
use analytics_query::time::ResolvedRange;
use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use sea_orm::{ConnectionTrait, QueryResult, Statement, StreamTrait, Value};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// A site's events from `$2` to `$3`, both included.
const SELECT_RANGE: &str = "SELECT event_id, timestamp, event_type, path, user_id, visitor_id, referrer, props, \
    hostname, source, channel, utm_source, utm_medium, utm_campaign, utm_content, utm_term, \
    browser, browser_version, os, os_version, device, country \
    FROM events WHERE site_id = $1 AND timestamp >= $2 AND timestamp <= $3";

/// The first extension step past an edge; each further one doubles.
const FIRST_STEP: Duration = Duration::hours(1);
/// Visitors per statement of an extension (bind parameters stay far below
/// PostgreSQL's 65,535).
const VISITORS_PER_STATEMENT: usize = 1000;

/// Who a stored event's visitor is: its `user_id`, else its cookieless id.
#[derive(Debug, Clone, PartialEq, Eq)]
enum VisitorKey {
    User(String),
    Cookieless(i64),
}

impl VisitorKey {
    fn parse(name: &str) -> Option<VisitorKey> {
        match name.split_once(':') {
            Some(("u", user)) => Some(Self::User(user.to_string())),
            Some(("c", id)) => id.parse().ok().map(Self::Cookieless),
            _ => None,
        }
    }
}

/// Where a visitor's loaded events begin and end (nanoseconds), and
/// whether one of them is in the range.
#[derive(Clone, Copy)]
struct Extent {
    first: i64,
    last: i64,
    in_range: bool,
}

/// Collects the loaded events into columns, and each visitor's extent.
struct Collect {
    builder: Builder,
    extents: Vec<Extent>,
    range: (i64, i64),
    max_events: usize,
}

impl Collect {
    fn new(range: ResolvedRange, max_events: usize) -> Collect {
        Collect {
            builder: Builder::default(),
            extents: Vec::new(),
            range: (nanos(range.start), nanos(range.end)),
            max_events,
        }
    }

    fn add(&mut self, e: EventRef) -> Result<(), QueryError> {
        self.room_for(1)?;
        let visitor = self.builder.push_ref(e);
        extend(&mut self.extents, self.range, visitor, e.ts);
        Ok(())
    }

    fn add_block(&mut self, block: &Block) -> Result<(), QueryError> {
        self.room_for(block.len())?;
        let Collect {
            builder,
            extents,
            range,
            ..
        } = self;
        builder
            .push_block(block, |visitor, ts| extend(extents, *range, visitor, ts))
            .map_err(|e| StoreError::internal(format!("a day block: {e}")))?;
        Ok(())
    }

    /// Whether `more` events would stay within the most one read holds.
    fn room_for(&self, more: usize) -> Result<(), QueryError> {
        if self.builder.len().saturating_add(more) > self.max_events {
            return Err(QueryError::TooLarge { max: self.max_events });
        }
        Ok(())
    }

    /// The visitors with an event in the range whose loaded events come
    /// within one timeout of `edge` (below it when `low`, above it else).
    fn open(&self, edge: i64, low: bool) -> Vec<VisitorKey> {
        let timeout = VISIT_TIMEOUT.num_nanoseconds().unwrap_or(i64::MAX);
        self.extents
            .iter()
            .enumerate()
            .filter(|(_, x)| {
                x.in_range
                    && if low {
                        x.first < edge.saturating_add(timeout)
                    } else {
                        x.last.saturating_add(timeout) > edge
                    }
            })
            .filter_map(|(v, _)| VisitorKey::parse(self.builder.visitor(v as u32)))
            .collect()
    }
}

/// Widens `visitor`'s extent by an event at `ts`.
fn extend(extents: &mut Vec<Extent>, range: (i64, i64), visitor: u32, ts: i64) {
    if visitor == NONE {
        return;
    }
    let v = visitor as usize;
    if v >= extents.len() {
        extents.resize(
            v + 1,
            Extent {
                first: i64::MAX,
                last: i64::MIN,
                in_range: false,
            },
        );
    }
    let x = &mut extents[v];
    x.first = x.first.min(ts);
    x.last = x.last.max(ts);
    x.in_range |= range.0 <= ts && ts < range.1;
}

/// The columns of a site's events for a range, and the window they were
/// read from: every event of the site in `[low, high]`, and the
/// visits that touch the range whole.
pub struct Loaded {
    pub columns: SiteEvents,
    pub low: DateTime<Utc>,
    pub high: DateTime<Utc>,
    pub days: DaysRead,
}

/// How the window's closed days were read (see `blocks`).
#[derive(Debug, Default)]
pub struct DaysRead {
    /// Days answered by their stored block.
    pub from_blocks: u64,
    /// Days read from their rows.
    pub from_rows: u64,
    /// The blocks of the days read from rows, to store.
    pub to_store: Vec<StoredBlock>,
}

/// The columns of the events of `site` that a query over `range` reads
/// (see the module). Run in one snapshot (a transaction) for a read that
/// is consistent with itself.
pub async fn columns_for<C: StreamTrait + ConnectionTrait>(
    db: &C,
    site: &str,
    range: ResolvedRange,
    max_events: usize,
) -> Result<Loaded, QueryError> {
    let (low, high) = (range.start - VISIT_TIMEOUT, range.end + VISIT_TIMEOUT);
    let mut collect = Collect::new(range, max_events);
    let days = window(db, site, low, high, &mut collect).await?;
    let mut loaded = complete(db, site, collect, low, high).await?;
    loaded.days = days;
    Ok(loaded)
}

/// Every event of `site` in `[low, high]`: its closed UTC days from their
/// stored blocks where those hold, else from their rows (and their blocks
/// made to store), the rest from the rows.
async fn window<C: StreamTrait + ConnectionTrait>(
    db: &C,
    site: &str,
    low: DateTime<Utc>,
    high: DateTime<Utc>,
    collect: &mut Collect,
) -> Result<DaysRead, QueryError> {
    let plan = blocks::plan(db, site, low, high, Utc::now().date_naive()).await?;
    let mut read = DaysRead::default();
    let (Some(&first), Some(&last)) = (plan.days.first(), plan.days.last()) else {
        fetch(db, site, low, high, None, collect).await?;
        return Ok(read);
    };
    let (start, end) = (blocks::start_of(first), blocks::start_of(last + Duration::days(1)));
    let just_before = |t: DateTime<Utc>| t - Duration::nanoseconds(1);
    if low < start {
        fetch(db, site, low, just_before(start), None, collect).await?;
    }
    for &day in &plan.days {
        // A year's range of a site that began last month reads a month.
        if plan.empty(day) {
            continue;
        }
        if plan.holds(day) {
            if let Some(block) = blocks::load(db, site, day).await? {
                collect.add_block(&block)?;
                read.from_blocks += 1;
                continue;
            }
        }
        let mut builder = Builder::default();
        let (from, to) = (
            blocks::start_of(day),
            just_before(blocks::start_of(day + Duration::days(1))),
        );
        let values: Vec<Value> = vec![site.into(), from.into(), to.into()];
        read_rows(db, SELECT_RANGE, values, |e| {
            collect.room_for(builder.len() + 1)?;
            builder.push_ref(e);
            Ok(())
        })
        .await?;
        let block = builder.into_block();
        collect.add_block(&block)?;
        read.from_rows += 1;
        read.to_store.extend(plan.to_store(day, &block)?);
    }
    if end <= high {
        fetch(db, site, end, high, None, collect).await?;
    }
    Ok(read)
}

/// A newer segment for `base`, read over `range` from `[low, high]` as
/// `columns_for` did, whose events from `cut` on may have changed since
/// (none before it): every event from `cut` to `high` as it is now, and
/// the events before `cut` of the visitors among them, taken from `base`,
/// which leaves those visitors out (the exclusion). Needs `cut` at least
/// one visit timeout after the range's start: a new event in the range
/// then has before it, within a timeout, only events in the range, so a
/// visitor it joins had an event in the range before, and `base` holds
/// their visits whole.
pub async fn recent_for<C: StreamTrait>(
    db: &C,
    site: &str,
    base: &SiteEvents,
    range: ResolvedRange,
    (low, high): (DateTime<Utc>, DateTime<Utc>),
    cut: DateTime<Utc>,
    max_events: usize,
) -> Result<(Exclusion, Loaded), QueryError> {
    let mut collect = Collect::new(range, max_events);
    fetch(db, site, cut, high, None, &mut collect).await?;
    let recent: Vec<String> = collect.builder.visitors().map(str::to_string).collect();
    let visitors: HashSet<&str> = recent.iter().map(String::as_str).collect();
    let (exclusion, before) = split_off(base, &visitors, cut);
    for e in &before {
        collect.add(EventRef::of(e))?;
    }
    Ok((exclusion, complete(db, site, collect, low, high).await?))
}

/// Extends `collect`, loaded from `[low, high]`, past the window's edges
/// until no visitor with an event in the range is open at either edge
/// (see the module).
async fn complete<C: StreamTrait>(
    db: &C,
    site: &str,
    mut collect: Collect,
    mut low: DateTime<Utc>,
    mut high: DateTime<Utc>,
) -> Result<Loaded, QueryError> {
    let mut step = FIRST_STEP;
    loop {
        // Open at the low edge: an event before `low` could join the
        // earliest loaded one; likewise at the high edge.
        let open_low = collect.open(nanos(low), true);
        let open_high = collect.open(nanos(high), false);
        if open_low.is_empty() && open_high.is_empty() {
            break;
        }
        if !open_low.is_empty() {
            let from = low - step;
            // `low` itself is loaded: the extension is [from, low).
            fetch(
                db,
                site,
                from,
                low - Duration::nanoseconds(1),
                Some(&open_low),
                &mut collect,
            )
            .await?;
            low = from;
        }
        if !open_high.is_empty() {
            let to = high + step;
            fetch(
                db,
                site,
                high + Duration::nanoseconds(1),
                to,
                Some(&open_high),
                &mut collect,
            )
            .await?;
            high = to;
        }
        step = step * 2;
    }
    // Ordering and sessionizing a large site's events is a fraction of a
    // second of CPU without an await: off the async workers, as the scan.
    let builder = collect.builder;
    let columns = tokio::task::spawn_blocking(move || builder.finish())
        .await
        .map_err(|e| StoreError::internal(format!("building the columns stopped: {e}")))?;
    Ok(Loaded {
        columns,
        low,
        high,
        days: DaysRead::default(),
    })
}

/// Events of `site` from `from` to `to` (both included), of `visitors`
/// only when given.
async fn fetch<C: StreamTrait>(
    db: &C,
    site: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    visitors: Option<&[VisitorKey]>,
    collect: &mut Collect,
) -> Result<(), QueryError> {
    let base = SELECT_RANGE;
    let Some(visitors) = visitors else {
        let values: Vec<Value> = vec![site.into(), from.into(), to.into()];
        return read_rows(db, base, values, |e| collect.add(e)).await;
    };
    for chunk in visitors.chunks(VISITORS_PER_STATEMENT) {
        let mut values: Vec<Value> = vec![site.into(), from.into(), to.into()];
        let mut users = Vec::new();
        let mut cookieless = Vec::new();
        for v in chunk {
            values.push(match v {
                VisitorKey::User(u) => u.clone().into(),
                VisitorKey::Cookieless(c) => (*c).into(),
            });
            let n = format!("${}", values.len());
            match v {
                VisitorKey::User(_) => users.push(n),
                VisitorKey::Cookieless(_) => cookieless.push(n),
            }
        }
        let mut who = Vec::new();
        if !users.is_empty() {
            who.push(format!("user_id IN ({})", users.join(", ")));
        }
        if !cookieless.is_empty() {
            who.push(format!("(user_id = '' AND visitor_id IN ({}))", cookieless.join(", ")));
        }
        read_rows(db, &format!("{base} AND ({})", who.join(" OR ")), values, |e| {
            collect.add(e)
        })
        .await?;
    }
    Ok(())
}

/// Streams the rows into `add`: a large range is never held as rows.
async fn read_rows<C: StreamTrait>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
    mut add: impl FnMut(EventRef) -> Result<(), QueryError>,
) -> Result<(), QueryError> {
    let rows = db
        .stream_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values))
        .await?;
    let mut rows = std::pin::pin!(rows);
    let mut visitor = String::new();
    while let Some(row) = rows.try_next().await? {
        let props = props(&row)?;
        add(decode(&row, &mut visitor, &props)?)?;
    }
    Ok(())
}

/// A text column of a row, borrowed from it (the reads' texts are only
/// interned: allocating each was a large part of a read's time).
fn text(row: &QueryResult, i: usize) -> Result<&str, StoreError> {
    use sea_orm::sqlx::Row;
    // Unchecked: the columns are this schema's texts, and checking their
    // type again for every value stood out in a large site's read.
    let got = if let Some(pg) = row.try_as_pg_row() {
        pg.try_get_unchecked::<Option<&str>, _>(i)
    } else if let Some(lite) = row.try_as_sqlite_row() {
        lite.try_get_unchecked::<Option<&str>, _>(i)
    } else {
        return Err(StoreError::internal("a row of neither PostgreSQL nor SQLite"));
    };
    got.map(Option::unwrap_or_default)
        .map_err(|e| StoreError::internal(format!("reading column {i} of an event: {e}")))
}

/// The row's event; `visitor` holds its visitor's name: `u:` and the user
/// id, else `c:` and the cookieless id (the prefixes keep a user id from
/// ever equalling a cookieless one; `VisitorKey::parse` reads them back).
fn decode<'r>(
    row: &'r QueryResult,
    visitor: &'r mut String,
    props: &'r BTreeMap<String, String>,
) -> Result<EventRef<'r>, StoreError> {
    let user_id = text(row, 4)?;
    let visitor_id: Option<i64> = row.try_get_by_index(5)?;
    visitor.clear();
    let known = if !user_id.is_empty() {
        visitor.push_str("u:");
        visitor.push_str(user_id);
        true
    } else if let Some(id) = visitor_id {
        use std::fmt::Write;
        let _ = write!(visitor, "c:{id}");
        true
    } else {
        false
    };
    let event_id: Uuid = row.try_get_by_index(0)?;
    let timestamp: DateTime<Utc> = row.try_get_by_index(1)?;
    let attribute = |i| text(row, i);
    Ok(EventRef {
        event_id: event_id.as_u128(),
        ts: nanos(timestamp),
        name: text(row, 2)?,
        path: text(row, 3)?,
        hostname: text(row, 8)?,
        visitor: known.then_some(visitor.as_str()),
        // `ATTRIBUTES` order: source, referrer, channel, the five UTM
        // values, device, browser and its version, OS and its version,
        // country.
        attributes: [
            attribute(9)?,
            attribute(6)?,
            attribute(10)?,
            attribute(11)?,
            attribute(12)?,
            attribute(13)?,
            attribute(14)?,
            attribute(15)?,
            attribute(20)?,
            attribute(16)?,
            attribute(17)?,
            attribute(18)?,
            attribute(19)?,
            attribute(21)?,
        ],
        props,
    })
}

/// The props as texts: a string as itself, another JSON value as its JSON.
fn props(row: &QueryResult) -> Result<BTreeMap<String, String>, StoreError> {
    let raw: Option<serde_json::Value> = row.try_get_by_index(7)?;
    let Some(serde_json::Value::Object(map)) = raw else {
        return Ok(BTreeMap::new());
    };
    Ok(map
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
}
