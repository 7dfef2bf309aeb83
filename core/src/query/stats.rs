//! `GET /stats`: parameters, validation and the queries, which read only the
//! rollup tables (never a scan of raw events).

use super::params::{finish, parse_limit, parse_period, parse_site, previous_period, reject_unknown, Params};
use super::weeks::{blobs, fresh_weeks_cte};
use crate::codec::path_pack::{self, PathTotals, PathViews};
use crate::codec::user_set;
use crate::event::{FieldError, PAGE_VIEW};
use crate::store::schema::{PATH_WEEKS, USER_WEEKS};
use crate::store::StoreError;
use crate::time::whole_weeks;
use chrono::NaiveDate;
use roaring::RoaringBitmap;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};
use serde::Serialize;

pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 100;

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

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Stats {
    pub site_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub total_views: i64,
    pub unique_users: i64,
    /// Distinct visitors: users (`unique_users`) and cookieless visitors.
    pub visitors: i64,
    pub total_events: i64,
    #[schema(value_type = Vec<TopPath>)]
    pub top_paths: Vec<PathViews>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<PeriodTotals>,
}

/// `PathViews` as the OpenAPI document shows it (the type lives in the
/// model crate, which knows nothing of the document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TopPath {
    pub path: String,
    pub views: i64,
}

const KNOWN_PARAMS: [&str; 6] = ["site_id", "date", "from", "to", "limit", "compare"];

/// The three numbers of a period, for `compare=previous`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PeriodTotals {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub total_views: i64,
    pub unique_users: i64,
    pub visitors: i64,
    pub total_events: i64,
}

impl StatsQuery {
    /// `today` (UTC) is the period when neither `date` nor `from`/`to` is given.
    pub fn parse(params: &Params, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
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
        finish(
            Self {
                site_id,
                from,
                to,
                limit,
                single_date,
                compare,
            },
            errors,
        )
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

/// What each row of the period statement holds (its first column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
enum RowKind {
    /// Page views and events, from the daily counts.
    Counts = 0,
    /// Users: a day's stored count, or a set of a range, to union.
    Users = 1,
    /// A path's views not yet packed.
    PathRow = 2,
    /// A pack of paths.
    PathPack = 3,
    /// Cookieless visitors: the sum of the days' counts (no visitor id is
    /// on two days).
    CookielessVisitors = 4,
}

impl RowKind {
    fn of(tag: i32) -> Option<Self> {
        [
            Self::Counts,
            Self::Users,
            Self::PathRow,
            Self::PathPack,
            Self::CookielessVisitors,
        ]
        .into_iter()
        .find(|k| *k as i32 == tag)
    }

    fn tag(self) -> i32 {
        self as i32
    }
}

/// One period's numbers and/or its path views (packs and rows not yet
/// packed, summed), read in one statement: one round trip, and one
/// snapshot, so views, users and paths agree even while a batch or a
/// compaction commits. A range's whole weeks read their weekly sets and
/// packs where those are current (`super::weeks`), its other days the
/// daily ones.
///
/// Placeholders: `$1` site, `$2`/`$3` the period, `$4`/`$5` its whole weeks.
async fn period(
    db: &DatabaseConnection,
    site_id: &str,
    from: NaiveDate,
    to: NaiveDate,
    read: Read,
) -> Result<(PeriodTotals, PathTotals), StoreError> {
    const IN_PERIOD: &str = "site_id = $1 AND day >= $2 AND day <= $3";
    let (counts_row, users_row, path_row, pack_row, cookieless_row) = (
        RowKind::Counts.tag(),
        RowKind::Users.tag(),
        RowKind::PathRow.tag(),
        RowKind::PathPack.tag(),
        RowKind::CookielessVisitors.tag(),
    );
    let backend = db.get_database_backend();
    let weeks = whole_weeks(from, to);
    let mut ctes = Vec::new();
    let mut parts = Vec::new();
    if read.totals {
        parts.push(format!(
            "SELECT {counts_row}, CAST(NULL AS TEXT), \
               CAST(COALESCE(SUM(CASE WHEN event_type = '{PAGE_VIEW}' THEN events ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(events), 0) AS BIGINT), CAST(NULL AS BYTEA) \
             FROM daily_event_counts WHERE {IN_PERIOD}"
        ));
        parts.push(format!(
            "SELECT {cookieless_row}, NULL, CAST(COALESCE(SUM(visitors), 0) AS BIGINT), NULL, NULL \
             FROM daily_visitor_counts WHERE {IN_PERIOD}"
        ));
        if from == to {
            parts.push(format!(
                "SELECT {users_row}, NULL, user_count, NULL, NULL FROM daily_user_sets WHERE {IN_PERIOD}"
            ));
        } else if weeks.is_some() {
            ctes.push(fresh_weeks_cte(&USER_WEEKS, "user_weeks"));
            parts.push(blobs(&USER_WEEKS, users_row, "user_weeks"));
        } else {
            parts.push(format!(
                "SELECT {users_row}, NULL, NULL, NULL, users FROM daily_user_sets WHERE {IN_PERIOD}"
            ));
        }
    }
    if read.paths {
        parts.push(format!(
            "SELECT {path_row}, CAST(path AS TEXT), CAST(SUM(views) AS BIGINT), CAST(NULL AS BIGINT), \
               CAST(NULL AS BYTEA) \
             FROM daily_path_views WHERE {IN_PERIOD} GROUP BY path"
        ));
        if weeks.is_some() {
            ctes.push(fresh_weeks_cte(&PATH_WEEKS, "path_weeks"));
            parts.push(blobs(&PATH_WEEKS, pack_row, "path_weeks"));
        } else {
            parts.push(format!(
                "SELECT {pack_row}, NULL, NULL, NULL, paths FROM daily_path_packs WHERE {IN_PERIOD}"
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
        visitors: 0,
        total_events: 0,
    };
    let mut cookieless = 0;
    let mut user_union = RoaringBitmap::new();
    let mut path_views = PathTotals::default();
    for row in &rows {
        let n = row.try_get_by_index::<Option<i64>>(2)?;
        let blob = row.try_get_by_index::<Option<Vec<u8>>>(4)?;
        let kind = RowKind::of(row.try_get_by_index::<i32>(0)?)
            .ok_or_else(|| StoreError::internal("the period statement returned an unknown row kind"))?;
        match kind {
            RowKind::Counts => {
                totals.total_views = n.unwrap_or(0);
                totals.total_events = row.try_get_by_index::<Option<i64>>(3)?.unwrap_or(0);
            }
            RowKind::Users => match (n, blob) {
                (Some(count), _) => totals.unique_users = count,
                (None, Some(set)) => user_union |= user_set::decode(&set)?,
                (None, None) => {}
            },
            RowKind::PathRow => {
                if let (Some(path), Some(views)) = (row.try_get_by_index::<Option<String>>(1)?, n) {
                    *path_views.entry(path.into_bytes()).or_default() += views;
                }
            }
            RowKind::PathPack => {
                if let Some(pack) = blob {
                    path_pack::add_pack(&mut path_views, &pack)?;
                }
            }
            RowKind::CookielessVisitors => cookieless = n.unwrap_or(0),
        }
    }
    if read.totals && from != to {
        totals.unique_users = user_set::cardinality(&user_union);
    }
    totals.visitors = totals.unique_users + cookieless;
    Ok((totals, path_views))
}

/// Views, events and distinct users of `site_id` from `from` to `to`.
pub async fn totals(
    db: &DatabaseConnection,
    site_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<PeriodTotals, StoreError> {
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
) -> Result<Vec<PathViews>, StoreError> {
    let read = Read {
        totals: false,
        paths: true,
    };
    Ok(path_pack::rank(period(db, site_id, from, to, read).await?.1, limit)?)
}

pub async fn query(db: &DatabaseConnection, q: &StatsQuery) -> Result<Stats, StoreError> {
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
        visitors: current.visitors,
        total_events: current.total_events,
        top_paths: path_pack::rank(path_views, q.limit)?,
        previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::test_support::{params, today};

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
