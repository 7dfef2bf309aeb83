//! `GET /stats`: parameters, validation and the queries, which read only the
//! rollup tables (never a scan of raw events).

use crate::event::{FieldError, PAGE_VIEW};
use crate::path_packs::PathTotals;
use chrono::NaiveDate;
use roaring::RoaringBitmap;
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

/// What `period` reads.
#[derive(Clone, Copy)]
struct Read {
    totals: bool,
    paths: bool,
}

const BOTH: Read = Read {
    totals: true,
    paths: true,
};

/// One period's numbers and/or its path views (packs and rows not
/// yet packed, summed), read in one statement: one round trip, and one
/// snapshot, so views, users and paths agree even while a batch or a
/// compaction commits. Rows by kind: 0 event counts (from the daily rollup), 1 users (a day's stored
/// count, or the sets of a range, to union), 2 a path's unpacked views, 3 a
/// pack. A range's whole weeks read their weekly sets and packs where those
/// are current (`week_rollups`), its other days the daily ones.
///
/// Placeholders are numbered on both backends (sqlx binds SQLite's `$NNN`
/// by number): `$1` site, `$2`/`$3` the period, `$4`/`$5` its whole weeks.
async fn period(
    db: &DatabaseConnection,
    site_id: &str,
    from: NaiveDate,
    to: NaiveDate,
    read: Read,
) -> Result<(PeriodTotals, PathTotals), DbErr> {
    use crate::week_rollups::{whole_weeks, PATHS, USERS};
    const IN_PERIOD: &str = "site_id = $1 AND day >= $2 AND day <= $3";
    let backend = db.get_database_backend();
    let weeks = whole_weeks(from, to);
    let mut ctes = Vec::new();
    let mut parts = Vec::new();
    if read.totals {
        parts.push(format!(
            "SELECT 0, CAST(NULL AS TEXT), \
               CAST(COALESCE(SUM(CASE WHEN event_type = '{PAGE_VIEW}' THEN events ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(events), 0) AS BIGINT), CAST(NULL AS BYTEA) \
             FROM daily_event_counts WHERE {IN_PERIOD}"
        ));
        if from == to {
            parts.push(format!(
                "SELECT 1, NULL, user_count, NULL, NULL FROM daily_user_sets WHERE {IN_PERIOD}"
            ));
        } else if weeks.is_some() {
            ctes.push(USERS.fresh_weeks_cte("user_weeks"));
            parts.push(USERS.blobs(1, "user_weeks"));
        } else {
            parts.push(format!(
                "SELECT 1, NULL, NULL, NULL, users FROM daily_user_sets WHERE {IN_PERIOD}"
            ));
        }
    }
    if read.paths {
        parts.push(format!(
            "SELECT 2, CAST(path AS TEXT), CAST(SUM(views) AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BYTEA) \
             FROM daily_path_views WHERE {IN_PERIOD} GROUP BY path"
        ));
        if weeks.is_some() {
            ctes.push(PATHS.fresh_weeks_cte("path_weeks"));
            parts.push(PATHS.blobs(3, "path_weeks"));
        } else {
            parts.push(format!(
                "SELECT 3, NULL, NULL, NULL, paths FROM daily_path_packs WHERE {IN_PERIOD}"
            ));
        }
    }
    let mut sql = String::new();
    if !ctes.is_empty() {
        sql = format!("WITH {} ", ctes.join(", "));
    }
    sql.push_str(&parts.join(" UNION ALL "));
    let mut values: Vec<Value> = vec![site_id.into(), from.into(), to.into()];
    if let Some((first, last)) = weeks {
        values.extend([first.into(), last.into()]);
    }
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;

    let mut totals = PeriodTotals {
        from,
        to,
        total_views: 0,
        unique_users: 0,
        total_events: 0,
    };
    let mut users = RoaringBitmap::new();
    let mut path_views = PathTotals::default();
    for row in &rows {
        let n = row.try_get_by_index::<Option<i64>>(2)?;
        let blob = row.try_get_by_index::<Option<Vec<u8>>>(4)?;
        match row.try_get_by_index::<i32>(0)? {
            0 => {
                totals.total_views = n.unwrap_or(0);
                totals.total_events = row.try_get_by_index::<Option<i64>>(3)?.unwrap_or(0);
            }
            1 => match (n, blob) {
                (Some(count), _) => totals.unique_users = count,
                (None, Some(set)) => users |= crate::user_sets::decode(&set)?,
                (None, None) => {}
            },
            2 => {
                if let (Some(path), Some(views)) = (row.try_get_by_index::<Option<String>>(1)?, n) {
                    *path_views.entry(path.into_bytes()).or_default() += views;
                }
            }
            _ => {
                if let Some(pack) = blob {
                    crate::path_packs::add_pack(&mut path_views, &pack)?;
                }
            }
        }
    }
    if read.totals && from != to {
        totals.unique_users = i64::try_from(users.len()).unwrap_or(i64::MAX);
    }
    Ok((totals, path_views))
}

/// Views, events and distinct users of `site_id` from `from` to `to`.
pub async fn totals(
    db: &DatabaseConnection,
    site_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<PeriodTotals, DbErr> {
    let read = Read {
        totals: true,
        paths: false,
    };
    Ok(period(db, site_id, from, to, read).await?.0)
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
    let read = Read {
        totals: false,
        paths: true,
    };
    crate::path_packs::rank(period(db, site_id, from, to, read).await?.1, limit)
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
    let ((current, path_views), previous) = tokio::try_join!(period(db, &q.site_id, q.from, q.to, BOTH), previous)?;
    Ok(Stats {
        site_id: q.site_id.clone(),
        date: q.single_date.then_some(q.from),
        from: q.from,
        to: q.to,
        total_views: current.total_views,
        unique_users: current.unique_users,
        total_events: current.total_events,
        top_paths: crate::path_packs::rank(path_views, q.limit)?,
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
