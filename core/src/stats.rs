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
    /// `compare=previous`: also answer the totals of the period of the same
    /// length just before (the dashboard's change figures).
    pub compare: bool,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<PeriodTotals>,
}

const KNOWN_PARAMS: [&str; 6] = ["site_id", "date", "from", "to", "limit", "compare"];

/// The three numbers of a period, for `compare=previous`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PeriodTotals {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub total_views: i64,
    pub unique_users: i64,
    pub total_events: i64,
}

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

/// Names every parameter not in `known`, sorted, so each query endpoint
/// rejects typos the same way.
pub fn reject_unknown(params: &HashMap<String, String>, known: &[&str], errors: &mut Vec<FieldError>) {
    let mut unknown: Vec<&String> = params.keys().filter(|k| !known.contains(&k.as_str())).collect();
    unknown.sort();
    for k in unknown {
        errors.push(FieldError::new(k.as_str(), "unknown parameter"));
    }
}

/// `site_id`: required, 1–100 characters.
pub fn parse_site(params: &HashMap<String, String>, errors: &mut Vec<FieldError>) -> String {
    match params.get("site_id") {
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
    }
}

/// A whole number `field` from 1 to `max`, `default` when absent.
pub fn parse_limit(
    params: &HashMap<String, String>,
    field: &str,
    default: u32,
    max: u32,
    errors: &mut Vec<FieldError>,
) -> u32 {
    match params.get(field) {
        None => default,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    field,
                    format!("must be a whole number from 1 to {max}"),
                ));
                default
            }
        },
    }
}

/// The period of a query: `date=`, or `from`/`to` (inclusive, at most
/// `MAX_RANGE_DAYS`), or today. Returns (from, to, asked with `date` or nothing).
pub fn parse_period(
    params: &HashMap<String, String>,
    today: NaiveDate,
    errors: &mut Vec<FieldError>,
) -> (NaiveDate, NaiveDate, bool) {
    let date = params.get("date");
    let (from_raw, to_raw) = (params.get("from"), params.get("to"));
    let (mut from, mut to, single_date) = (today, today, date.is_some() || (from_raw.is_none() && to_raw.is_none()));
    match (date, from_raw, to_raw) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            errors.push(FieldError::new("date", "give either date or from/to, not both"));
        }
        (Some(d), None, None) => {
            if let Some(d) = parse_date(errors, "date", d) {
                (from, to) = (d, d);
            }
        }
        (None, Some(f), Some(t)) => {
            let f = parse_date(errors, "from", f);
            let t = parse_date(errors, "to", t);
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
    (from, to, single_date)
}

/// The period of the same length that ends the day before `from`.
pub fn previous_period(from: NaiveDate, to: NaiveDate) -> (NaiveDate, NaiveDate) {
    let len = to - from + chrono::Duration::days(1);
    (from - len, from - chrono::Duration::days(1))
}

impl StatsQuery {
    /// `today` (UTC) is the period when neither `date` nor `from`/`to` is given.
    pub fn parse(params: &HashMap<String, String>, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        reject_unknown(params, &KNOWN_PARAMS, &mut errors);
        let site_id = parse_site(params, &mut errors);
        let limit = parse_limit(params, "limit", DEFAULT_LIMIT, MAX_LIMIT, &mut errors);
        let (from, to, single_date) = parse_period(params, today, &mut errors);
        let compare = match params.get("compare").map(String::as_str) {
            None => false,
            Some("previous") => true,
            Some(_) => {
                errors.push(FieldError::new("compare", "must be `previous`"));
                false
            }
        };
        if errors.is_empty() {
            Ok(Self {
                site_id,
                from,
                to,
                limit,
                single_date,
                compare,
            })
        } else {
            Err(errors)
        }
    }
}

fn period_values(site_id: &str, from: NaiveDate, to: NaiveDate) -> Vec<Value> {
    vec![site_id.to_string().into(), from.into(), to.into()]
}

/// Views, events and distinct users of `site_id` from `from` to `to`.
pub async fn totals(
    db: &DatabaseConnection,
    site_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<PeriodTotals, DbErr> {
    let backend = db.get_database_backend();
    let totals_sql = portable(
        backend,
        &format!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN event_type = '{PAGE_VIEW}' THEN events ELSE 0 END), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(events), 0) AS BIGINT) \
             FROM hourly_event_counts WHERE site_id = $1 AND day >= $2 AND day <= $3"
        ),
    );
    let (totals, unique_users) = tokio::try_join!(
        db.query_one_raw(Statement::from_sql_and_values(
            backend,
            totals_sql,
            period_values(site_id, from, to)
        )),
        crate::user_sets::unique_users(db, site_id, from, to),
    )?;
    let (total_views, total_events) = match totals {
        Some(row) => (row.try_get_by_index::<i64>(0)?, row.try_get_by_index::<i64>(1)?),
        None => (0, 0),
    };
    Ok(PeriodTotals {
        from,
        to,
        total_views,
        unique_users,
        total_events,
    })
}

/// `page_view` paths of `site_id` from `from` to `to`, most viewed first,
/// ties by path in byte order.
pub async fn top_paths(
    db: &DatabaseConnection,
    site_id: &str,
    from: NaiveDate,
    to: NaiveDate,
    limit: u32,
) -> Result<Vec<PathViews>, DbErr> {
    let backend = db.get_database_backend();
    let paths_sql = portable(
        backend,
        &format!(
            "SELECT path, CAST(SUM(views) AS BIGINT) AS v FROM daily_path_views \
             WHERE site_id = $1 AND day >= $2 AND day <= $3 \
             GROUP BY path ORDER BY v DESC, path{} ASC LIMIT $4",
            binary_collation(backend)
        ),
    );
    let mut values = period_values(site_id, from, to);
    values.push(i64::from(limit).into());
    db.query_all_raw(Statement::from_sql_and_values(backend, paths_sql, values))
        .await?
        .into_iter()
        .map(|row| {
            Ok(PathViews {
                path: row.try_get_by_index::<String>(0)?,
                views: row.try_get_by_index::<i64>(1)?,
            })
        })
        .collect()
}

pub async fn query(db: &DatabaseConnection, q: &StatsQuery) -> Result<Stats, DbErr> {
    let (prev_from, prev_to) = previous_period(q.from, q.to);
    let previous = async {
        if q.compare {
            totals(db, &q.site_id, prev_from, prev_to).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let (current, top_paths, previous) = tokio::try_join!(
        totals(db, &q.site_id, q.from, q.to),
        top_paths(db, &q.site_id, q.from, q.to, q.limit),
        previous,
    )?;
    Ok(Stats {
        site_id: q.site_id.clone(),
        date: q.single_date.then_some(q.from),
        from: q.from,
        to: q.to,
        total_views: current.total_views,
        unique_users: current.unique_users,
        total_events: current.total_events,
        top_paths,
        previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{params, today};

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
        assert_eq!(err_fields(&[("site_id", "s"), ("compare", "last")]), vec!["compare"]);
    }

    #[test]
    fn previous_period_has_the_same_length() {
        let d = |m, day| NaiveDate::from_ymd_opt(2025, m, day).unwrap_or_default();
        assert_eq!(previous_period(d(11, 15), d(11, 15)), (d(11, 14), d(11, 14)));
        assert_eq!(previous_period(d(11, 1), d(11, 30)), (d(10, 2), d(10, 31)));
        let q = StatsQuery::parse(&params(&[("site_id", "s"), ("compare", "previous")]), today());
        assert!(q.is_ok_and(|q| q.compare));
    }
}
