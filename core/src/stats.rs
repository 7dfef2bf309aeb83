//! `GET /stats`: parameters, validation and the queries, which read only the
//! rollup tables (never a scan of raw events).

use crate::db::{binary_collation, portable};
use crate::event::{FieldError, PAGE_VIEW};
use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement, Value};
use serde::Serialize;
use std::collections::HashMap;

pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 100;
/// A year and a leap day: the longest period a dashboard asks for.
pub const MAX_RANGE_DAYS: i64 = 366;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    pub site_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub limit: u32,
    /// Asked with `date=` (the seed's form) rather than `from`/`to`.
    pub single_date: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PathViews {
    pub path: String,
    pub views: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub site_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub total_views: i64,
    pub unique_users: i64,
    pub total_events: i64,
    pub top_paths: Vec<PathViews>,
}

const KNOWN_PARAMS: [&str; 5] = ["site_id", "date", "from", "to", "limit"];

fn parse_date(errors: &mut Vec<FieldError>, field: &str, raw: &str) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) if raw.len() == 10 => Some(d),
        _ => {
            errors.push(FieldError::new(
                field,
                format!("must be a date as YYYY-MM-DD (got `{raw}`)"),
            ));
            None
        }
    }
}

impl StatsQuery {
    /// `today` (UTC) is the period when neither `date` nor `from`/`to` is given.
    pub fn parse(params: &HashMap<String, String>, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut unknown: Vec<&String> = params.keys().filter(|k| !KNOWN_PARAMS.contains(&k.as_str())).collect();
        unknown.sort();
        for k in unknown {
            errors.push(FieldError::new(k.as_str(), "unknown parameter"));
        }

        let site_id = match params.get("site_id") {
            None => {
                errors.push(FieldError::new("site_id", "is required"));
                String::new()
            }
            Some(s) if s.is_empty() => {
                errors.push(FieldError::new("site_id", "must not be empty"));
                String::new()
            }
            Some(s) if s.chars().count() > crate::event::MAX_SITE_ID_CHARS => {
                errors.push(FieldError::new("site_id", "must be at most 100 characters"));
                String::new()
            }
            Some(s) => s.clone(),
        };

        let limit = match params.get("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    errors.push(FieldError::new(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_LIMIT}"),
                    ));
                    DEFAULT_LIMIT
                }
            },
        };

        let date = params.get("date");
        let (from_raw, to_raw) = (params.get("from"), params.get("to"));
        let (mut from, mut to, single_date) =
            (today, today, date.is_some() || (from_raw.is_none() && to_raw.is_none()));
        match (date, from_raw, to_raw) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                errors.push(FieldError::new("date", "give either date or from/to, not both"));
            }
            (Some(d), None, None) => {
                if let Some(d) = parse_date(&mut errors, "date", d) {
                    (from, to) = (d, d);
                }
            }
            (None, Some(f), Some(t)) => {
                let f = parse_date(&mut errors, "from", f);
                let t = parse_date(&mut errors, "to", t);
                if let (Some(f), Some(t)) = (f, t) {
                    if f > t {
                        errors.push(FieldError::new("to", "must not be before from"));
                    } else if (t - f).num_days() + 1 > MAX_RANGE_DAYS {
                        errors.push(FieldError::new(
                            "to",
                            format!("a range may span at most {MAX_RANGE_DAYS} days"),
                        ));
                    }
                    (from, to) = (f, t);
                }
            }
            (None, Some(_), None) => errors.push(FieldError::new("to", "is required with from")),
            (None, None, Some(_)) => errors.push(FieldError::new("from", "is required with to")),
            (None, None, None) => {}
        }

        if errors.is_empty() {
            Ok(Self {
                site_id,
                from,
                to,
                limit,
                single_date,
            })
        } else {
            Err(errors)
        }
    }
}

fn period_values(q: &StatsQuery) -> Vec<Value> {
    vec![q.site_id.clone().into(), q.from.into(), q.to.into()]
}

pub async fn query(db: &DatabaseConnection, q: &StatsQuery) -> Result<Stats, DbErr> {
    let backend = db.get_database_backend();
    let totals_sql = portable(
        backend,
        &format!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN event_type = '{PAGE_VIEW}' THEN events ELSE 0 END), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(events), 0) AS BIGINT) \
             FROM hourly_event_counts WHERE site_id = $1 AND day >= $2 AND day <= $3"
        ),
    );
    let users_sql = portable(
        backend,
        "SELECT CAST(COUNT(DISTINCT user_id) AS BIGINT) FROM daily_users WHERE site_id = $1 AND day >= $2 AND day <= $3",
    );
    let paths_sql = portable(
        backend,
        &format!(
            "SELECT path, CAST(SUM(views) AS BIGINT) AS v FROM daily_path_views \
             WHERE site_id = $1 AND day >= $2 AND day <= $3 \
             GROUP BY path ORDER BY v DESC, path{} ASC LIMIT $4",
            binary_collation(backend)
        ),
    );
    let mut path_values = period_values(q);
    path_values.push(i64::from(q.limit).into());

    let (totals, users, paths) = tokio::try_join!(
        db.query_one_raw(Statement::from_sql_and_values(backend, totals_sql, period_values(q))),
        db.query_one_raw(Statement::from_sql_and_values(backend, users_sql, period_values(q))),
        db.query_all_raw(Statement::from_sql_and_values(backend, paths_sql, path_values)),
    )?;

    let (total_views, total_events) = match totals {
        Some(row) => (row.try_get_by_index::<i64>(0)?, row.try_get_by_index::<i64>(1)?),
        None => (0, 0),
    };
    let unique_users = match users {
        Some(row) => row.try_get_by_index::<i64>(0)?,
        None => 0,
    };
    let top_paths = paths
        .into_iter()
        .map(|row| {
            Ok(PathViews {
                path: row.try_get_by_index::<String>(0)?,
                views: row.try_get_by_index::<i64>(1)?,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;

    Ok(Stats {
        site_id: q.site_id.clone(),
        date: q.single_date.then_some(q.from),
        from: q.from,
        to: q.to,
        total_views,
        unique_users,
        total_events,
        top_paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 11, 20).unwrap_or_default()
    }

    fn err_fields(p: &[(&str, &str)]) -> Vec<String> {
        StatsQuery::parse(&params(p), today())
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn date_and_range() {
        let q = StatsQuery::parse(&params(&[("site_id", "s"), ("date", "2025-11-15")]), today());
        assert!(q
            .as_ref()
            .is_ok_and(|q| q.single_date && q.from == q.to && q.limit == 10));
        let q = StatsQuery::parse(
            &params(&[
                ("site_id", "s"),
                ("from", "2025-11-01"),
                ("to", "2025-11-30"),
                ("limit", "100"),
            ]),
            today(),
        );
        assert!(q.is_ok_and(|q| !q.single_date && (q.to - q.from).num_days() == 29 && q.limit == 100));
        let q = StatsQuery::parse(&params(&[("site_id", "s")]), today());
        assert!(q.is_ok_and(|q| q.from == today() && q.single_date));
    }

    #[test]
    fn errors() {
        assert_eq!(err_fields(&[("date", "2025-11-15")]), vec!["site_id"]);
        assert_eq!(err_fields(&[("site_id", "s"), ("date", "15/11/2025")]), vec!["date"]);
        assert_eq!(err_fields(&[("site_id", "s"), ("date", "2025-11-5")]), vec!["date"]);
        assert_eq!(
            err_fields(&[("site_id", "s"), ("from", "2025-11-02"), ("to", "2025-11-01")]),
            vec!["to"]
        );
        assert_eq!(
            err_fields(&[("site_id", "s"), ("from", "2024-01-01"), ("to", "2025-11-01")]),
            vec!["to"]
        );
        assert_eq!(err_fields(&[("site_id", "s"), ("from", "2025-11-02")]), vec!["to"]);
        assert_eq!(err_fields(&[("site_id", "s"), ("limit", "0")]), vec!["limit"]);
        assert_eq!(err_fields(&[("site_id", "s"), ("limit", "101")]), vec!["limit"]);
        assert_eq!(
            err_fields(&[
                ("site_id", "s"),
                ("date", "2025-11-15"),
                ("from", "2025-11-15"),
                ("to", "2025-11-15")
            ]),
            vec!["date"]
        );
        assert_eq!(err_fields(&[("site_id", "s"), ("bogus", "1")]), vec!["bogus"]);
    }
}
