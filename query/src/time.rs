//! Date ranges and time buckets, in the site's time zone.
//!
//! A site's *local day* `D` is the half-open UTC interval `[start(D), start(D + 1))`, where `start(D)` is the
//! earliest instant whose local wall-clock time is at or after `D 00:00`: the instant of local midnight, the earlier
//! of two if midnight repeats, or the end of the gap if a transition skips midnight (e.g. America/Santiago,
//! America/Havana). Days are therefore 23, 24 or 25 hours long across DST, and zones with +05:30 or +05:45 offsets
//! start their days at the matching UTC instants.
//!
//! Every bucket label is a local wall-clock value with no offset: `YYYY-MM-DD` for days, weeks (the Monday) and
//! months (the first), `YYYY-MM-DD HH:00:00` for hours. At a fall-back the repeated local hour is one bucket; a
//! skipped (spring-forward) hour has no label.

use chrono::{DateTime, Datelike, Duration, FixedOffset, LocalResult, Months, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::dimension::TimeDimension;
use crate::error::{quoted, type_name, Errors};

/// A documented named period, relative to today in the site's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamedPeriod {
    /// `day`: today.
    Day,
    /// `7d`, `28d`, `30d`, `91d`: the `n` days before today (today excluded).
    LastDays(u32),
    /// `month`: from the first of this month to today.
    Month,
    /// `6mo`, `12mo`: from the first of the month `n - 1` months before this one, to today.
    LastMonths(u32),
    /// `year`: from the first of January to today.
    Year,
    /// `all`: from the local day of the site's first event (today if none) to today.
    All,
}

impl NamedPeriod {
    pub const ALL: [NamedPeriod; 10] = [
        NamedPeriod::Day,
        NamedPeriod::LastDays(7),
        NamedPeriod::LastDays(28),
        NamedPeriod::LastDays(30),
        NamedPeriod::LastDays(91),
        NamedPeriod::Month,
        NamedPeriod::LastMonths(6),
        NamedPeriod::LastMonths(12),
        NamedPeriod::Year,
        NamedPeriod::All,
    ];

    pub fn name(self) -> String {
        match self {
            NamedPeriod::Day => "day".to_owned(),
            NamedPeriod::LastDays(n) => format!("{n}d"),
            NamedPeriod::Month => "month".to_owned(),
            NamedPeriod::LastMonths(n) => format!("{n}mo"),
            NamedPeriod::Year => "year".to_owned(),
            NamedPeriod::All => "all".to_owned(),
        }
    }

    pub fn parse(name: &str) -> Option<NamedPeriod> {
        NamedPeriod::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// `date_range` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateRangeSpec {
    Named(NamedPeriod),
    /// `["YYYY-MM-DD", "YYYY-MM-DD"]`: both days included.
    Dates(NaiveDate, NaiveDate),
    /// Two RFC 3339 datetimes with offsets; the end is included to the second (`…T15:59:59+02:00` includes that
    /// whole second).
    DateTimes(DateTime<FixedOffset>, DateTime<FixedOffset>),
}

/// A resolved range of instants: `start` included, `end` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResolvedRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl ResolvedRange {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// The range as Plausible echoes it: both ends as local datetimes with the site's offset, the end inclusive
    /// (one second before the exclusive end).
    pub fn to_json(&self, tz: Tz) -> Value {
        let fmt = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S%:z").to_string();
        json!([fmt(self.start), fmt(self.end - Duration::seconds(1))])
    }
}

/// Earliest and latest years accepted in explicit date ranges (keeps all date arithmetic far from chrono's limits).
pub const MIN_YEAR: i32 = 1900;
pub const MAX_YEAR: i32 = 9999;

impl DateRangeSpec {
    pub fn to_json(&self) -> Value {
        match self {
            DateRangeSpec::Named(p) => json!(p.name()),
            DateRangeSpec::Dates(a, b) => json!([a.format("%Y-%m-%d").to_string(), b.format("%Y-%m-%d").to_string()]),
            DateRangeSpec::DateTimes(a, b) => json!([a.to_rfc3339(), b.to_rfc3339()]),
        }
    }

    /// Resolves the range for a site in zone `tz` at instant `now`; `first_event` is the site's first event, for
    /// `all`.
    pub fn resolve(&self, now: DateTime<Utc>, tz: Tz, first_event: Option<DateTime<Utc>>) -> ResolvedRange {
        let today = local_date(tz, now);
        let (first, last) = match *self {
            DateRangeSpec::DateTimes(a, b) => {
                let end = truncate_to_second(b.with_timezone(&Utc)) + Duration::seconds(1);
                return ResolvedRange {
                    start: a.with_timezone(&Utc),
                    end,
                };
            }
            DateRangeSpec::Dates(a, b) => (a, b),
            DateRangeSpec::Named(NamedPeriod::Day) => (today, today),
            DateRangeSpec::Named(NamedPeriod::LastDays(n)) => {
                (today - Duration::days(i64::from(n)), today - Duration::days(1))
            }
            DateRangeSpec::Named(NamedPeriod::Month) => (first_of_month(today), today),
            DateRangeSpec::Named(NamedPeriod::LastMonths(n)) => {
                let this_month = first_of_month(today);
                (
                    this_month
                        .checked_sub_months(Months::new(n.saturating_sub(1)))
                        .unwrap_or(this_month),
                    today,
                )
            }
            DateRangeSpec::Named(NamedPeriod::Year) => {
                (NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today), today)
            }
            DateRangeSpec::Named(NamedPeriod::All) => {
                let first = first_event.map_or(today, |t| local_date(tz, t).min(today));
                (first, today)
            }
        };
        ResolvedRange {
            start: local_day_start(tz, first),
            end: local_day_start(tz, last + Duration::days(1)),
        }
    }
}

pub(crate) fn parse_date_range(v: &Value, errors: &mut Errors) -> Option<DateRangeSpec> {
    const PATH: &str = "date_range";
    match v {
        Value::String(s) => match NamedPeriod::parse(s) {
            Some(p) => Some(DateRangeSpec::Named(p)),
            None => {
                let names: Vec<String> = NamedPeriod::ALL.iter().map(|p| p.name()).collect();
                errors.push(
                    PATH,
                    format!("unknown period {}; expected one of {}", quoted(s), names.join(", ")),
                );
                None
            }
        },
        Value::Array(items) if items.len() == 2 => {
            let (Value::String(a), Value::String(b)) = (&items[0], &items[1]) else {
                errors.push(PATH, "expected two ISO 8601 dates or datetimes as strings");
                return None;
            };
            if let (Some(a), Some(b)) = (parse_date(a), parse_date(b)) {
                if a > b {
                    errors.push(PATH, "the start date is after the end date");
                    return None;
                }
                return Some(DateRangeSpec::Dates(a, b));
            }
            match (DateTime::parse_from_rfc3339(a), DateTime::parse_from_rfc3339(b)) {
                (Ok(x), Ok(y)) => {
                    let years = MIN_YEAR..=MAX_YEAR;
                    if !years.contains(&x.year()) || !years.contains(&y.year()) {
                        errors.push(PATH, format!("years must be between {MIN_YEAR} and {MAX_YEAR}"));
                        None
                    } else if x > y {
                        errors.push(PATH, "the start is after the end");
                        None
                    } else {
                        Some(DateRangeSpec::DateTimes(x, y))
                    }
                }
                _ => {
                    let bad: Vec<String> = [(0, a), (1, b)]
                        .iter()
                        .filter(|(_, s)| parse_date(s).is_none() && DateTime::parse_from_rfc3339(s).is_err())
                        .map(|(i, s)| format!("{PATH}[{i}] {}", quoted(s)))
                        .collect();
                    let detail = if bad.is_empty() {
                        "one date and one datetime".to_owned()
                    } else {
                        bad.join(", ")
                    };
                    errors.push(
                        PATH,
                        format!(
                            "expected two dates (YYYY-MM-DD, years {MIN_YEAR}-{MAX_YEAR}) or two datetimes with \
                             offsets (e.g. 2024-01-01T12:00:00+02:00); not valid: {detail}"
                        ),
                    );
                    None
                }
            }
        }
        other => {
            errors.push(
                PATH,
                format!(
                    "expected a period name or a two-element array, found {}",
                    type_name(other)
                ),
            );
            None
        }
    }
}

/// `YYYY-MM-DD` exactly (four-digit year between MIN_YEAR and MAX_YEAR, two-digit month and day).
fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|d| (MIN_YEAR..=MAX_YEAR).contains(&d.year()))
}

fn truncate_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// The site-local calendar date of an instant.
pub fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// The site-local wall-clock time of an instant.
pub fn local_datetime(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&tz).naive_local()
}

/// The instant a local day starts: local midnight, the earlier one if it repeats, or the end of the gap if a
/// transition skips it.
pub fn local_day_start(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    let mut wall = midnight;
    // A gap is at most a few hours; walk forward one second at a time until the wall clock exists again. The first
    // existing wall time after a gap is the instant of the transition.
    for _ in 0..(2 * 86_400) {
        match tz.from_local_datetime(&wall) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, b) => return a.min(b).with_timezone(&Utc),
            LocalResult::None => wall += Duration::seconds(1),
        }
    }
    // Unreachable for any real zone; fall back to midnight read as UTC.
    midnight.and_utc()
}

/// The bucket size a time dimension uses over a range: `time` is hourly for a range of at most one day (at most 24
/// hours long, or within a single local date, which covers 25-hour DST days), else daily.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    Hour,
    Day,
    Week,
    Month,
}

impl Granularity {
    pub fn for_dimension(dim: TimeDimension, range: ResolvedRange, tz: Tz) -> Granularity {
        match dim {
            TimeDimension::Hour => Granularity::Hour,
            TimeDimension::Day => Granularity::Day,
            TimeDimension::Week => Granularity::Week,
            TimeDimension::Month => Granularity::Month,
            TimeDimension::Auto => {
                let short = range.end - range.start <= Duration::hours(24);
                let last = range.end - Duration::nanoseconds(1);
                if short || local_date(tz, range.start) == local_date(tz, last) {
                    Granularity::Hour
                } else {
                    Granularity::Day
                }
            }
        }
    }

    /// The label of the bucket an instant falls in.
    pub fn label(self, tz: Tz, t: DateTime<Utc>) -> String {
        let local = local_datetime(tz, t);
        match self {
            Granularity::Hour => local.format("%Y-%m-%d %H:00:00").to_string(),
            _ => self.date_label(local.date()),
        }
    }

    /// The label of the day/week/month bucket a local date falls in.
    fn date_label(self, d: NaiveDate) -> String {
        let bucket = match self {
            Granularity::Hour | Granularity::Day => d,
            Granularity::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
            Granularity::Month => first_of_month(d),
        };
        bucket.format("%Y-%m-%d").to_string()
    }

    /// Every bucket label that an instant of the range falls in, in order.
    pub fn labels(self, tz: Tz, range: ResolvedRange) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if range.start >= range.end {
            return out;
        }
        let mut push = |label: String| {
            if out.last() != Some(&label) {
                out.push(label);
            }
        };
        match self {
            Granularity::Hour => {
                // Every current zone's offset is a multiple of 15 minutes, so a local hour starts at a UTC instant
                // that is a multiple of 15 minutes: sampling the range's start and each such instant in it visits
                // every local hour the range touches.
                push(self.label(tz, range.start));
                let quarter = 15 * 60;
                let mut secs = range.start.timestamp().div_euclid(quarter) * quarter + quarter;
                while let Some(t) = DateTime::from_timestamp(secs, 0).filter(|t| *t < range.end) {
                    push(self.label(tz, t));
                    secs += quarter;
                }
            }
            _ => {
                let first = local_date(tz, range.start);
                let last = local_date(tz, range.end - Duration::nanoseconds(1));
                let mut d = first;
                while d <= last {
                    push(self.date_label(d));
                    d += Duration::days(1);
                }
            }
        }
        // A repeated (fall-back) hour comes back after later ones; keep labels sorted and distinct.
        out.sort();
        out.dedup();
        out
    }
}
