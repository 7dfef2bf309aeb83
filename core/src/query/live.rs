//! `GET /stats/live`: events received in the current minute and the four
//! before it, by arrival time.

use super::params::{parse_site, reject_unknown, Params};
use crate::event::FieldError;
use crate::store::StoreError;
use crate::time::{epoch_minute, minute_start};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde::Serialize;

/// "Events in the last 5 minutes": the current minute and the four before it.
pub const LIVE_WINDOW_MINUTES: i64 = 5;

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct MinuteCount {
    pub start: DateTime<Utc>,
    pub events: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
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

pub fn parse_live(params: &Params) -> Result<String, Vec<FieldError>> {
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
pub async fn live(db: &DatabaseConnection, site_id: &str, now: DateTime<Utc>) -> Result<Live, StoreError> {
    let backend = db.get_database_backend();
    let first = epoch_minute(now) - (LIVE_WINDOW_MINUTES - 1);
    let sql = "SELECT minute, events FROM minute_event_counts WHERE site_id = $1 AND minute >= $2";
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [site_id.to_string().into(), first.into()],
        ))
        .await?;
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
    use crate::query::sites::parse_sites;
    use crate::query::test_support::params;

    #[test]
    fn live_and_sites_reject_unknown_parameters() {
        assert!(parse_live(&params(&[("site_id", "s"), ("x", "1")])).is_err());
        assert!(parse_live(&params(&[])).is_err());
        assert!(parse_sites(&params(&[("x", "1")])).is_err());
        assert!(parse_sites(&params(&[])).is_ok());
    }
}
