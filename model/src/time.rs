//! Time as the rollups cut it: epoch minutes (the live panel), Monday–Sunday
//! weeks (the weekly caches), and timestamps as text, formatted once per run
//! of equal values.

use chrono::{DateTime, Datelike, Days, NaiveDate, SecondsFormat, Utc};

/// Minutes since the Unix epoch: the key of `minute_event_counts`.
pub fn epoch_minute(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

/// The start of an epoch minute.
pub fn minute_start(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(minute.saturating_mul(60), 0).unwrap_or_default()
}

/// `t` as both stores hold it: whole microseconds (PostgreSQL's
/// `timestamptz` precision; SQLite's text keeps what it is given, so the
/// two stores and the Kafka payload agree only if it is cut first), and a
/// leap second (`23:59:60`, which chrono parses) folded into the second
/// after it.
pub fn to_stored_precision(t: DateTime<Utc>) -> DateTime<Utc> {
    let (secs, nanos) = (t.timestamp(), t.timestamp_subsec_nanos());
    let (secs, nanos) = if nanos >= 1_000_000_000 {
        (secs.saturating_add(1), nanos - 1_000_000_000)
    } else {
        (secs, nanos)
    };
    DateTime::from_timestamp(secs, nanos - nanos % 1_000).unwrap_or(t)
}

/// The Monday and the Sunday of `day`'s week.
pub fn week_of(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let monday = day - Days::new(u64::from(day.weekday().num_days_from_monday()));
    (monday, monday + Days::new(6))
}

/// The first Monday and the last Sunday of the whole weeks inside
/// `from..=to`, if there is at least one.
pub fn whole_weeks(from: NaiveDate, to: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let first = from + Days::new(u64::from((7 - from.weekday().num_days_from_monday()) % 7));
    let last = to - Days::new(u64::from((to.weekday().num_days_from_monday() + 1) % 7));
    (first.checked_add_days(Days::new(6))? <= last).then_some((first, last))
}

/// RFC 3339 text of a timestamp, remembering the last one formatted: a
/// request's events share their `received_at` and, unless the client dated
/// them, their `timestamp`, and chrono's formatter was a visible share of
/// the api's CPU (bench/README.md).
#[derive(Debug)]
pub struct TimestampText {
    /// `Z` (chrono's serde form) or `+00:00` (sqlx's SQLite form).
    use_z: bool,
    last: Option<(DateTime<Utc>, String)>,
}

impl TimestampText {
    /// As chrono's `Serialize` writes it: `2025-11-15T05:00:00.123Z`.
    pub fn serde() -> Self {
        Self {
            use_z: true,
            last: None,
        }
    }

    /// As sqlx stores a `DateTime<Utc>` on SQLite: `2025-11-15T05:00:00.123+00:00`.
    pub fn sqlx_sqlite() -> Self {
        Self {
            use_z: false,
            last: None,
        }
    }

    pub fn get(&mut self, t: DateTime<Utc>) -> &str {
        if self.last.as_ref().is_none_or(|(at, _)| *at != t) {
            self.last = Some((t, t.to_rfc3339_opts(SecondsFormat::AutoSi, self.use_z)));
        }
        self.last.as_ref().map_or("", |(_, text)| text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap_or_default()
    }

    #[test]
    fn weeks_run_monday_to_sunday() {
        // 2026-11-30 is a Monday.
        assert_eq!(week_of(d(11, 30)), (d(11, 30), d(12, 6)));
        assert_eq!(week_of(d(12, 6)), (d(11, 30), d(12, 6)));
        assert_eq!(week_of(d(12, 1)), (d(11, 30), d(12, 6)));
        assert_eq!(week_of(d(12, 7)), (d(12, 7), d(12, 13)));
    }

    #[test]
    fn whole_weeks_inside_a_range() {
        assert_eq!(whole_weeks(d(11, 30), d(12, 6)), Some((d(11, 30), d(12, 6))));
        assert_eq!(whole_weeks(d(11, 30), d(12, 5)), None);
        assert_eq!(whole_weeks(d(12, 1), d(12, 7)), None);
        assert_eq!(whole_weeks(d(12, 1), d(12, 14)), Some((d(12, 7), d(12, 13))));
        // 30 days from a Tuesday: three whole weeks and 9 edge days.
        assert_eq!(whole_weeks(d(11, 3), d(12, 2)), Some((d(11, 9), d(11, 29))));
        // 30 days from a Monday: four whole weeks and 2 edge days.
        assert_eq!(whole_weeks(d(11, 2), d(12, 1)), Some((d(11, 2), d(11, 29))));
        assert_eq!(whole_weeks(d(12, 1), d(12, 1)), None);
    }

    #[test]
    fn epoch_minutes_round_down_before_1970_too() {
        let t = Utc.timestamp_opt(-1, 0).single().unwrap_or_default();
        assert_eq!(epoch_minute(t), -1);
        assert_eq!(minute_start(epoch_minute(t)).timestamp(), -60);
    }

    #[test]
    fn stored_precision_is_microseconds_and_folds_leap_seconds() {
        let t = Utc
            .timestamp_opt(1_763_182_800, 123_456_789)
            .single()
            .unwrap_or_default();
        assert_eq!(to_stored_precision(t).timestamp_subsec_nanos(), 123_456_000);
        let leap = DateTime::parse_from_rfc3339("2016-12-31T23:59:60.5Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let folded = to_stored_precision(leap);
        assert_eq!(folded.to_rfc3339(), "2017-01-01T00:00:00.500+00:00");
        assert_eq!(to_stored_precision(folded), folded);
    }

    #[test]
    fn sqlite_text_matches_sqlx() {
        let t = Utc
            .timestamp_opt(1_763_182_800, 120_000_000)
            .single()
            .unwrap_or_default();
        assert_eq!(TimestampText::sqlx_sqlite().get(t), "2025-11-15T05:00:00.120+00:00");
        assert_eq!(TimestampText::serde().get(t), "2025-11-15T05:00:00.120Z");
    }
}
