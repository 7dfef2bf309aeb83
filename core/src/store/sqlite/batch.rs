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

/// The raw row's parameters before the context's texts.
const OWN_PARAMS: usize = 10;

/// The raw row: the event's own columns, its visitor, then of the
/// context's texts (`Context::TEXT_FIELDS`) those in `used`: a column empty
/// in the whole batch takes its default (`''`), as on PostgreSQL.
fn insert_event_sql(used: &[usize]) -> String {
    let fixed = "event_id, site_id, event_type, path, user_id, timestamp, received_at, referrer, props, visitor_id";
    let fixed_count = fixed.split(", ").count();
    debug_assert_eq!(fixed_count, OWN_PARAMS);
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
        // SQLite keeps a statement's bindings from one execution to the
        // next, and a batch's neighbours (in id order, so mostly a request's
        // events one after another) share their site, type, timestamps and
        // context: each value is bound only when it differs from the
        // previous event's, which saves a copy into SQLite per value.
        let mut previous: Option<&Event> = None;
        for e in unique {
            let changed = |same: fn(&Event, &Event) -> bool| previous.is_none_or(|p| !same(p, e));
            insert.raw_bind_parameter(1, e.event_id.as_bytes().as_slice())?;
            if changed(|p, e| p.site_id == e.site_id) {
                insert.raw_bind_parameter(2, &e.site_id)?;
            }
            if changed(|p, e| p.event_type == e.event_type) {
                insert.raw_bind_parameter(3, &e.event_type)?;
            }
            if changed(|p, e| p.path == e.path) {
                insert.raw_bind_parameter(4, &e.path)?;
            }
            if changed(|p, e| p.user_id == e.user_id) {
                insert.raw_bind_parameter(5, &e.user_id)?;
            }
            if changed(|p, e| p.timestamp == e.timestamp) {
                insert.raw_bind_parameter(6, ts.get(e.timestamp))?;
            }
            if changed(|p, e| p.received_at == e.received_at) {
                insert.raw_bind_parameter(7, received.get(e.received_at))?;
            }
            if changed(|p, e| p.referrer == e.referrer) {
                insert.raw_bind_parameter(8, &e.referrer)?;
            }
            // Props are bound whenever either event has some: comparing
            // two maps costs more than binding one.
            if changed(|p, e| p.props.is_none() && e.props.is_none()) {
                let props = e
                    .props
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|err| StoreError::Rejected(err.into()))?;
                insert.raw_bind_parameter(9, props)?;
            }
            if changed(|p, e| p.context.visitor_id == e.context.visitor_id) {
                insert.raw_bind_parameter(10, e.context.visitor_id)?;
            }
            if changed(|p, e| p.context.texts_key() == e.context.texts_key()) {
                for (n, &i) in used.iter().enumerate() {
                    insert.raw_bind_parameter(OWN_PARAMS + 1 + n, e.context.get(ContextField::ALL[i]))?;
                }
            }
            previous = Some(e);
            let new = insert.raw_execute()?;
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
