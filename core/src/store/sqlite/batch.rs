//! One batch transaction on SQLite: raw rows one prepared insert each, new
//! ones folded into the rollups, the counts upserted row by row in key
//! order, then the users (`user_sets`).

use super::user_sets;
use crate::event::{Context, ContextField, Event};
use crate::ingest::{unique_by_id, Cell, CountKind, Rollups, WriteOutcome};
use crate::store::schema::{count_table, INSERT_SITE, INSERT_VISITOR_DAY};
use crate::store::sql::for_rusqlite;
use crate::store::{StoreError, WriterState};
use crate::time::TimestampText;
use chrono::NaiveDate;
use rusqlite::types::{ToSqlOutput, Value as SqlValue};
use rusqlite::{Connection, ToSql, TransactionBehavior};

/// The raw row: the event's own columns, its visitor, then of the
/// context's texts (`Context::TEXT_FIELDS`) those in `used`: a column empty
/// in the whole batch takes its default (`''`), as on PostgreSQL.
fn insert_event_sql(used: &[usize]) -> String {
    let fixed = "event_id, site_id, event_type, path, user_id, timestamp, received_at, referrer, props, visitor_id";
    let fixed_count = fixed.split(", ").count();
    let names: String = used.iter().map(|&i| format!(", {}", Context::TEXT_FIELDS[i])).collect();
    let placeholders: Vec<String> = (1..=fixed_count + used.len()).map(|i| format!("${i}")).collect();
    for_rusqlite(&format!(
        "INSERT INTO events ({fixed}{names}) VALUES ({}) ON CONFLICT (event_id, site_id) DO NOTHING",
        placeholders.join(", ")
    ))
}

/// The context columns with a value in some event of the batch.
fn used_context(events: &[&Event]) -> Vec<usize> {
    let used = events.iter().fold(0u16, |used, e| used | e.context.nonempty_fields());
    (0..Context::TEXT_FIELDS.len())
        .filter(|&i| used & (1 << i) != 0)
        .collect()
}

pub(super) fn write(conn: &mut Connection, events: &[Event], state: &WriterState) -> Result<WriteOutcome, StoreError> {
    let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut rollups = Rollups::default();
    let mut inserted = 0;
    // A request's events share their received_at, and usually (no client
    // timestamp) their timestamp: formatting each once per run saves two
    // chrono formats an event.
    let (mut ts, mut received) = (TimestampText::sqlx_sqlite(), TimestampText::sqlx_sqlite());
    {
        let unique = unique_by_id(events);
        let used = used_context(&unique);
        let mut insert = txn.prepare_cached(&insert_event_sql(&used))?;
        for e in unique {
            let props = e
                .props
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|err| StoreError::Rejected(err.into()))?;
            let own: [&dyn ToSql; 10] = [
                &e.event_id.as_bytes().as_slice(),
                &e.site_id,
                &e.event_type,
                &e.path,
                &e.user_id,
                &ts.get(e.timestamp),
                &received.get(e.received_at),
                &e.referrer,
                &props,
                &e.context.visitor_id,
            ];
            // Only the used fields: splitting all fourteen out of the
            // context for every event showed in the writer's profile.
            let mut texts = [""; Context::TEXT_FIELDS.len()];
            for &i in &used {
                texts[i] = e.context.get(ContextField::ALL[i]);
            }
            let new = insert.execute(rusqlite::params_from_iter(
                own.into_iter().chain(used.iter().map(|&i| &texts[i] as &dyn ToSql)),
            ))?;
            if new == 1 {
                inserted += 1;
                rollups.add(e);
            }
        }
    }
    {
        let mut insert = txn.prepare_cached(&for_rusqlite(INSERT_VISITOR_DAY))?;
        for (site, day, visitor) in rollups.visitor_days() {
            if insert.execute(rusqlite::params![site, date(day), visitor])? == 1 {
                rollups.count_new_visitor(site, day);
            }
        }
    }
    add_counts(&txn, &rollups)?;
    let learnt = user_sets::fold(&txn, rollups.users(), &state.known)?;
    txn.commit()?;
    state.known.learn(learnt);
    state.touched.record(rollups.days());
    Ok(WriteOutcome::of(events.len(), inserted))
}

/// sqlx's encoding of a `NaiveDate` on SQLite.
pub(super) fn date(d: NaiveDate) -> String {
    d.format("%F").to_string()
}

/// A key cell as sqlx encodes it on SQLite.
struct SqlCell<'a>(Cell<'a>);

impl ToSql for SqlCell<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Cell::Text(s) => ToSqlOutput::from(s),
            Cell::Day(d) => ToSqlOutput::Owned(SqlValue::Text(date(d))),
            Cell::Hour(h) => ToSqlOutput::from(h),
            Cell::Minute(m) => ToSqlOutput::from(m),
        })
    }
}

fn add_counts(txn: &rusqlite::Transaction<'_>, r: &Rollups<'_>) -> Result<(), StoreError> {
    for kind in CountKind::ALL {
        let mut stmt = txn.prepare_cached(&for_rusqlite(&count_table(kind).add_sql(1)))?;
        for (key, n) in r.rows(kind) {
            let cells: Vec<SqlCell<'_>> = key.cells().iter().map(|c| SqlCell(*c)).collect();
            let mut values: Vec<&dyn ToSql> = cells.iter().map(|c| c as &dyn ToSql).collect();
            values.push(&n);
            stmt.execute(values.as_slice())?;
        }
    }
    let mut stmt = txn.prepare_cached(&for_rusqlite(INSERT_SITE))?;
    for site in r.sites() {
        stmt.execute([site])?;
    }
    Ok(())
}
