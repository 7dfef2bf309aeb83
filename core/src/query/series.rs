//! `GET /stats/timeseries`: views, unique users and events per hour or
//! day of a period, every bucket present, from the hourly and daily
//! rollups and user sets.

use super::params::{parse_period, parse_site, period_values, reject_unknown, Params};
use crate::event::{FieldError, PAGE_VIEW};
use crate::store::StoreError;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde::Serialize;

/// Hourly points beyond a month are unreadable on a chart and large to send.
pub const MAX_HOURLY_DAYS: i64 = 31;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Point {
    /// Start of the hour or day, UTC.
    pub start: DateTime<Utc>,
    pub views: i64,
    pub unique_users: i64,
    pub events: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Series {
    pub site_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub interval: Interval,
    /// One point per hour or day of the period, zeros included, oldest first.
    pub points: Vec<Point>,
}

impl SeriesQuery {
    pub fn parse(params: &Params, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
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

fn start_of(day: NaiveDate, hour: i64) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() + Duration::hours(hour)
}

pub async fn series(db: &DatabaseConnection, q: &SeriesQuery) -> Result<Series, StoreError> {
    let backend = db.get_database_backend();
    // The hour column is selected as a constant 0 for daily points so both
    // shapes decode the same way.
    let (hour_col, group, counts_table, users_table) = match q.interval {
        Interval::Hour => ("hour", "day, hour", "hourly_event_counts", "hourly_user_sets"),
        Interval::Day => ("0", "day", "daily_event_counts", "daily_user_sets"),
    };
    let counts_sql = format!(
        "SELECT day, CAST({hour_col} AS BIGINT), \
                    CAST(SUM(CASE WHEN event_type = '{PAGE_VIEW}' THEN events ELSE 0 END) AS BIGINT), \
                    CAST(SUM(events) AS BIGINT) \
             FROM {counts_table} WHERE site_id = $1 AND day >= $2 AND day <= $3 GROUP BY {group}"
    );
    let users_sql = format!(
        "SELECT day, CAST({hour_col} AS BIGINT), user_count \
             FROM {users_table} WHERE site_id = $1 AND day >= $2 AND day <= $3"
    );
    let (counts, users) = tokio::try_join!(
        db.query_all_raw(Statement::from_sql_and_values(
            backend,
            counts_sql,
            period_values(&q.site_id, q.from, q.to)
        )),
        db.query_all_raw(Statement::from_sql_and_values(
            backend,
            users_sql,
            period_values(&q.site_id, q.from, q.to)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::test_support::{params, today};

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
}
