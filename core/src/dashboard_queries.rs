//! The dashboard's queries, each also public API: a time series, breakdowns,
//! the list of sites and the live count. Like `/stats` they read only rollup
//! tables, never raw `events`, and parse their parameters the same way.

use crate::db::{binary_collation, portable};
use crate::event::{FieldError, PAGE_VIEW};
use crate::stats::{parse_limit, parse_period, parse_site, reject_unknown, top_paths};
use crate::writer::epoch_minute;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement, Value};
use serde::Serialize;
use std::collections::HashMap;

/// Hourly points beyond a month are unreadable on a chart and large to send.
pub const MAX_HOURLY_DAYS: i64 = 31;
pub const DEFAULT_BREAKDOWN_LIMIT: u32 = 10;
/// Enough for the dashboard's "hundreds of paths" table.
pub const MAX_BREAKDOWN_LIMIT: u32 = 1000;
/// "Events in the last 5 minutes": the current minute and the four before it.
pub const LIVE_WINDOW_MINUTES: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Hour,
    Day,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesQuery {
    pub site_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub interval: Interval,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Point {
    /// Start of the hour or day, UTC.
    pub start: DateTime<Utc>,
    pub views: i64,
    pub unique_users: i64,
    pub events: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Series {
    pub site_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub interval: Interval,
    /// One point per hour or day of the period, zeros included, oldest first.
    pub points: Vec<Point>,
}

impl SeriesQuery {
    pub fn parse(params: &HashMap<String, String>, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        reject_unknown(params, &["site_id", "date", "from", "to", "interval"], &mut errors);
        let site_id = parse_site(params, &mut errors);
        let (from, to, _) = parse_period(params, today, &mut errors);
        let days = (to - from).num_days() + 1;
        let interval = match params.get("interval").map(String::as_str) {
            // One or two days read best per hour, longer periods per day.
            None if days <= 2 => Interval::Hour,
            None | Some("day") => Interval::Day,
            Some("hour") => {
                if days > MAX_HOURLY_DAYS {
                    errors.push(FieldError::new(
                        "interval",
                        format!("hour is allowed for periods of at most {MAX_HOURLY_DAYS} days"),
                    ));
                }
                Interval::Hour
            }
            Some(other) => {
                errors.push(FieldError::new(
                    "interval",
                    format!("must be `hour` or `day` (got `{other}`)"),
                ));
                Interval::Day
            }
        };
        if errors.is_empty() {
            Ok(Self {
                site_id,
                from,
                to,
                interval,
            })
        } else {
            Err(errors)
        }
    }
}

fn period(site_id: &str, from: NaiveDate, to: NaiveDate) -> Vec<Value> {
    vec![site_id.to_string().into(), from.into(), to.into()]
}

fn start_of(day: NaiveDate, hour: i64) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() + Duration::hours(hour)
}

pub async fn series(db: &DatabaseConnection, q: &SeriesQuery) -> Result<Series, DbErr> {
    let backend = db.get_database_backend();
    // The hour column is selected as a constant 0 for daily points so both
    // shapes decode the same way.
    let (hour_col, group, counts_table, users_table) = match q.interval {
        Interval::Hour => ("hour", "day, hour", "hourly_event_counts", "hourly_user_sets"),
        Interval::Day => ("0", "day", "daily_event_counts", "daily_user_sets"),
    };
    let counts_sql = portable(
        backend,
        &format!(
            "SELECT day, CAST({hour_col} AS BIGINT), \
                    CAST(SUM(CASE WHEN event_type = '{PAGE_VIEW}' THEN events ELSE 0 END) AS BIGINT), \
                    CAST(SUM(events) AS BIGINT) \
             FROM {counts_table} WHERE site_id = $1 AND day >= $2 AND day <= $3 GROUP BY {group}"
        ),
    );
    let users_sql = portable(
        backend,
        &format!(
            "SELECT day, CAST({hour_col} AS BIGINT), user_count \
             FROM {users_table} WHERE site_id = $1 AND day >= $2 AND day <= $3"
        ),
    );
    let (counts, users) = tokio::try_join!(
        db.query_all_raw(Statement::from_sql_and_values(
            backend,
            counts_sql,
            period(&q.site_id, q.from, q.to)
        )),
        db.query_all_raw(Statement::from_sql_and_values(
            backend,
            users_sql,
            period(&q.site_id, q.from, q.to)
        )),
    )?;

    // Dense series: every bucket of the period, so a chart shows quiet hours
    // as zeros instead of joining the points around them.
    let days = (q.to - q.from).num_days() + 1;
    let per_day = if q.interval == Interval::Hour { 24 } else { 1 };
    let index = |day: NaiveDate, hour: i64| -> Option<usize> {
        let i = (day - q.from).num_days() * per_day + hour;
        usize::try_from(i).ok()
    };
    let mut points: Vec<Point> = (0..days * per_day)
        .map(|i| Point {
            start: start_of(q.from, if per_day == 24 { i } else { i * 24 }),
            views: 0,
            unique_users: 0,
            events: 0,
        })
        .collect();
    for row in counts {
        let (day, hour) = (row.try_get_by_index::<NaiveDate>(0)?, row.try_get_by_index::<i64>(1)?);
        if let Some(p) = index(day, hour).and_then(|i| points.get_mut(i)) {
            p.views = row.try_get_by_index::<i64>(2)?;
            p.events = row.try_get_by_index::<i64>(3)?;
        }
    }
    for row in users {
        let (day, hour) = (row.try_get_by_index::<NaiveDate>(0)?, row.try_get_by_index::<i64>(1)?);
        if let Some(p) = index(day, hour).and_then(|i| points.get_mut(i)) {
            p.unique_users = row.try_get_by_index::<i64>(2)?;
        }
    }
    Ok(Series {
        site_id: q.site_id.clone(),
        from: q.from,
        to: q.to,
        interval: q.interval,
        points,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// `page_view` paths by views.
    Path,
    /// Event types by events.
    EventType,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakdownQuery {
    pub site_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub by: Dimension,
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Row {
    pub key: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Breakdown {
    pub site_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub by: Dimension,
    /// Largest count first, ties by key in byte order.
    pub rows: Vec<Row>,
}

impl BreakdownQuery {
    pub fn parse(params: &HashMap<String, String>, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        reject_unknown(params, &["site_id", "date", "from", "to", "by", "limit"], &mut errors);
        let site_id = parse_site(params, &mut errors);
        let (from, to, _) = parse_period(params, today, &mut errors);
        let limit = parse_limit(
            params,
            "limit",
            DEFAULT_BREAKDOWN_LIMIT,
            MAX_BREAKDOWN_LIMIT,
            &mut errors,
        );
        let by = match params.get("by").map(String::as_str) {
            Some("path") => Dimension::Path,
            Some("event_type") => Dimension::EventType,
            None => {
                errors.push(FieldError::new("by", "is required: `path` or `event_type`"));
                Dimension::Path
            }
            Some(other) => {
                errors.push(FieldError::new(
                    "by",
                    format!("must be `path` or `event_type` (got `{other}`)"),
                ));
                Dimension::Path
            }
        };
        if errors.is_empty() {
            Ok(Self {
                site_id,
                from,
                to,
                by,
                limit,
            })
        } else {
            Err(errors)
        }
    }
}

pub async fn breakdown(db: &DatabaseConnection, q: &BreakdownQuery) -> Result<Breakdown, DbErr> {
    let rows = match q.by {
        Dimension::Path => top_paths(db, &q.site_id, q.from, q.to, q.limit)
            .await?
            .into_iter()
            .map(|p| Row {
                key: p.path,
                count: p.views,
            })
            .collect(),
        Dimension::EventType => {
            let backend = db.get_database_backend();
            let sql = portable(
                backend,
                &format!(
                    "SELECT event_type, CAST(SUM(events) AS BIGINT) AS n FROM daily_event_counts \
                     WHERE site_id = $1 AND day >= $2 AND day <= $3 \
                     GROUP BY event_type ORDER BY n DESC, event_type{} ASC LIMIT $4",
                    binary_collation(backend)
                ),
            );
            let mut values = period(&q.site_id, q.from, q.to);
            values.push(i64::from(q.limit).into());
            db.query_all_raw(Statement::from_sql_and_values(backend, sql, values))
                .await?
                .into_iter()
                .map(|row| {
                    Ok(Row {
                        key: row.try_get_by_index::<String>(0)?,
                        count: row.try_get_by_index::<i64>(1)?,
                    })
                })
                .collect::<Result<Vec<_>, DbErr>>()?
        }
    };
    Ok(Breakdown {
        site_id: q.site_id.clone(),
        from: q.from,
        to: q.to,
        by: q.by,
        rows,
    })
}

/// `/sites` takes no parameters; anything given is a typo worth naming.
pub fn parse_sites(params: &HashMap<String, String>) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    reject_unknown(params, &[], &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Every site with data, in byte order.
pub async fn sites(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT site_id FROM sites ORDER BY site_id{} ASC",
        binary_collation(backend)
    );
    db.query_all_raw(Statement::from_string(backend, sql))
        .await?
        .into_iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect()
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MinuteCount {
    pub start: DateTime<Utc>,
    pub events: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Live {
    pub site_id: String,
    pub window_minutes: i64,
    /// Start of the oldest minute counted.
    pub since: DateTime<Utc>,
    /// Events received from `since` until now.
    pub events: i64,
    /// The same events per minute, oldest first, zeros included.
    pub minutes: Vec<MinuteCount>,
}

pub fn parse_live(params: &HashMap<String, String>) -> Result<String, Vec<FieldError>> {
    let mut errors = Vec::new();
    reject_unknown(params, &["site_id"], &mut errors);
    let site_id = parse_site(params, &mut errors);
    if errors.is_empty() {
        Ok(site_id)
    } else {
        Err(errors)
    }
}

/// Events of `site_id` received in the current minute and the four before it
/// (by the api's `received_at`, not the event's own timestamp).
pub async fn live(db: &DatabaseConnection, site_id: &str, now: DateTime<Utc>) -> Result<Live, DbErr> {
    let backend = db.get_database_backend();
    let first = epoch_minute(now) - (LIVE_WINDOW_MINUTES - 1);
    let sql = portable(
        backend,
        "SELECT minute, events FROM minute_event_counts WHERE site_id = $1 AND minute >= $2",
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [site_id.to_string().into(), first.into()],
        ))
        .await?;
    let minute_start = |m: i64| DateTime::from_timestamp(m * 60, 0).unwrap_or_default();
    let mut minutes: Vec<MinuteCount> = (0..LIVE_WINDOW_MINUTES)
        .map(|i| MinuteCount {
            start: minute_start(first + i),
            events: 0,
        })
        .collect();
    for row in rows {
        let (m, n) = (row.try_get_by_index::<i64>(0)?, row.try_get_by_index::<i64>(1)?);
        // A minute ahead of this clock (another replica's skew) is left out.
        if let Some(slot) = usize::try_from(m - first).ok().and_then(|i| minutes.get_mut(i)) {
            slot.events += n;
        }
    }
    Ok(Live {
        site_id: site_id.to_string(),
        window_minutes: LIVE_WINDOW_MINUTES,
        since: minute_start(first),
        events: minutes.iter().map(|m| m.events).sum(),
        minutes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{params, today};

    fn series_errors(p: &[(&str, &str)]) -> Vec<String> {
        SeriesQuery::parse(&params(p), today())
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn series_interval_defaults_and_limits() {
        let q = SeriesQuery::parse(&params(&[("site_id", "s")]), today());
        assert!(q.is_ok_and(|q| q.interval == Interval::Hour));
        let q = SeriesQuery::parse(
            &params(&[("site_id", "s"), ("from", "2025-11-01"), ("to", "2025-11-03")]),
            today(),
        );
        assert!(q.is_ok_and(|q| q.interval == Interval::Day));
        assert_eq!(
            series_errors(&[
                ("site_id", "s"),
                ("from", "2025-01-01"),
                ("to", "2025-11-03"),
                ("interval", "hour")
            ]),
            vec!["interval"]
        );
        assert_eq!(
            series_errors(&[("site_id", "s"), ("interval", "week")]),
            vec!["interval"]
        );
        assert_eq!(series_errors(&[("interval", "day")]), vec!["site_id"]);
    }

    #[test]
    fn breakdown_needs_a_dimension() {
        let fields = |p: &[(&str, &str)]| -> Vec<String> {
            BreakdownQuery::parse(&params(p), today())
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(fields(&[("site_id", "s")]), vec!["by"]);
        assert_eq!(fields(&[("site_id", "s"), ("by", "referrer")]), vec!["by"]);
        assert_eq!(
            fields(&[("site_id", "s"), ("by", "path"), ("limit", "1001")]),
            vec!["limit"]
        );
        assert!(fields(&[("site_id", "s"), ("by", "event_type"), ("limit", "1000")]).is_empty());
    }

    #[test]
    fn live_and_sites_reject_unknown_parameters() {
        assert!(parse_live(&params(&[("site_id", "s"), ("x", "1")])).is_err());
        assert!(parse_live(&params(&[])).is_err());
        assert!(parse_sites(&params(&[("x", "1")])).is_err());
        assert!(parse_sites(&params(&[])).is_ok());
    }
}
