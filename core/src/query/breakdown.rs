//! `GET /stats/breakdown`: page views by path, or events by type, largest
//! first, ties by key in byte order.

use super::params::{parse_limit, parse_period, parse_site, period_values, reject_unknown, Params};
use super::stats::top_paths;
use crate::event::FieldError;
use crate::store::sql::binary_collation;
use crate::store::StoreError;
use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde::Serialize;

pub const DEFAULT_BREAKDOWN_LIMIT: u32 = 10;
/// Enough for the dashboard's "hundreds of paths" table.
pub const MAX_BREAKDOWN_LIMIT: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Row {
    pub key: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Breakdown {
    pub site_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub by: Dimension,
    /// Largest count first, ties by key in byte order.
    pub rows: Vec<Row>,
}

impl BreakdownQuery {
    pub fn parse(params: &Params, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
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

pub async fn breakdown(db: &DatabaseConnection, q: &BreakdownQuery) -> Result<Breakdown, StoreError> {
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
            let sql = format!(
                "SELECT event_type, CAST(SUM(events) AS BIGINT) AS n FROM daily_event_counts \
                     WHERE site_id = $1 AND day >= $2 AND day <= $3 \
                     GROUP BY event_type ORDER BY n DESC, event_type{} ASC LIMIT $4",
                binary_collation(backend)
            );
            let mut values = period_values(&q.site_id, q.from, q.to);
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
                .collect::<Result<Vec<_>, StoreError>>()?
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::test_support::{params, today};

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
}
