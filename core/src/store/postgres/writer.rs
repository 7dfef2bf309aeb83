//! The batch transaction on PostgreSQL (the processor's writer): the raw
//! insert as one `unnest` statement, the rollup counts as multi-row upserts
//! in key order, then the users (`user_sets`).
//!
//! `events` is partitioned by day (`partitions`), and PostgreSQL wants the
//! partition key in every unique key of a partitioned table. The
//! idempotency key cannot carry the timestamp: a client that resends an
//! event without one gets a new timestamp from the api each time, and the
//! resend would count twice. So the key `(event_id, site_id)` lives in
//! `event_keys`, a narrow table of its own, and one statement inserts the
//! keys and then the rows of only the keys that were new.

use super::partitions;
use super::user_sets;
use crate::event::{Context, Event};
use crate::ingest::{unique_by_id, Cell, CountKind, Rollups, WriteOutcome};
use crate::store::schema::count_table;
use crate::store::sql::values_placeholders;
use crate::store::{StoreError, WriterState};
use chrono::NaiveDate;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement, TransactionTrait, Value,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

/// Rows per rollup INSERT: keeps bind parameters under PostgreSQL's 65,535.
const ROLLUP_ROWS_PER_STATEMENT: usize = 2000;

#[derive(Clone)]
pub struct PostgresWriter {
    db: DatabaseConnection,
    pub(crate) state: Arc<WriterState>,
}

impl PostgresWriter {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            state: Arc::default(),
        }
    }

    /// One transaction: insert the new raw rows, fold only those into the
    /// rollups, commit, then remember the users' ordinals. Before it, the
    /// partitions of days this writer has not seen yet are made sure of.
    pub async fn write(&self, events: &[Event]) -> Result<WriteOutcome, StoreError> {
        let days = days_of(events);
        self.ensure_partitions(&days).await?;
        match self.write_batch(events).await {
            Err(Failed::MissingPartition(_)) => {
                // A day this writer knew was dropped since (retention, here
                // or in another process): check every day again, once.
                self.state.partitions.forget_all();
                self.ensure_partitions(&days).await?;
                self.write_batch(events).await.map_err(StoreError::from)
            }
            other => other.map_err(StoreError::from),
        }
    }

    async fn ensure_partitions(&self, days: &BTreeSet<NaiveDate>) -> Result<(), StoreError> {
        let unknown = self.state.partitions.unknown(days);
        if !unknown.is_empty() {
            partitions::ensure(&self.db, &unknown).await.map_err(|e| match e {
                // Never the events' fault: retried, not dead-lettered.
                StoreError::Rejected(source) => StoreError::Unavailable(source),
                other => other,
            })?;
            self.state.partitions.learn(unknown);
        }
        Ok(())
    }

    async fn write_batch(&self, events: &[Event]) -> Result<WriteOutcome, Failed> {
        let txn = self.db.begin().await?;
        let unique = unique_by_id(events);
        let inserted_ids = match insert_events(&txn, &unique).await {
            Err(e) if partitions::is_missing_partition(&e) => return Err(Failed::MissingPartition(e)),
            other => other?,
        };
        let mut rollups = Rollups::default();
        for e in unique.iter().filter(|e| is_new(&inserted_ids, e)) {
            rollups.add(e);
        }
        insert_visitor_days(&txn, &mut rollups).await?;
        add_counts(&txn, &rollups).await?;
        // Last: it locks each site's row, so the sites must exist, and
        // holding those locks for the shortest time keeps concurrent
        // writers moving.
        let learnt = user_sets::fold(&txn, rollups.users(), &self.state.known).await?;
        txn.commit().await?;
        self.state.known.learn(learnt);
        self.state.touched.record(rollups.days());
        Ok(WriteOutcome::of(
            events.len(),
            inserted_ids.values().map(Vec::len).sum(),
        ))
    }
}

/// How a batch transaction failed: for want of a partition (retried once
/// after creating it), or otherwise.
enum Failed {
    MissingPartition(DbErr),
    Store(StoreError),
}

impl From<DbErr> for Failed {
    fn from(e: DbErr) -> Self {
        Self::Store(e.into())
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Failed> for StoreError {
    fn from(f: Failed) -> Self {
        match f {
            Failed::MissingPartition(e) => e.into(),
            Failed::Store(e) => e,
        }
    }
}

/// The UTC days of the events' timestamps: their partitions.
fn days_of(events: &[Event]) -> BTreeSet<NaiveDate> {
    events.iter().map(|e| e.timestamp.date_naive()).collect()
}

fn value(cell: &Cell<'_>) -> Value {
    match *cell {
        Cell::Text(s) => s.into(),
        Cell::Day(d) => d.into(),
        Cell::Hour(h) => h.into(),
        Cell::Minute(m) => m.into(),
    }
}

/// Every counted rollup of the batch, then its sites, each in key order,
/// `ROLLUP_ROWS_PER_STATEMENT` rows a statement.
async fn add_counts(txn: &DatabaseTransaction, rollups: &Rollups<'_>) -> Result<(), DbErr> {
    for kind in CountKind::ALL {
        let table = count_table(kind);
        for chunk in rollups.rows(kind).chunks(ROLLUP_ROWS_PER_STATEMENT) {
            let mut values = Vec::with_capacity(chunk.len() * (table.key.len() + 1));
            for (key, n) in chunk {
                values.extend(key.cells().iter().map(value));
                values.push((*n).into());
            }
            let stmt = Statement::from_sql_and_values(DbBackend::Postgres, table.add_sql(chunk.len()), values);
            txn.execute_raw(stmt).await?;
        }
    }
    for chunk in rollups.sites().chunks(ROLLUP_ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO sites (site_id) VALUES {} ON CONFLICT (site_id) DO NOTHING",
            values_placeholders(chunk.len(), 1)
        );
        let values: Vec<Value> = chunk.iter().map(|site| (*site).into()).collect();
        txn.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
            .await?;
    }
    Ok(())
}

/// Inserts the batch's cookieless visitor-days, in key order, one statement
/// of three arrays; those that took are new that day and counted.
async fn insert_visitor_days(txn: &DatabaseTransaction, rollups: &mut Rollups<'_>) -> Result<(), DbErr> {
    let days = rollups.visitor_days();
    if days.is_empty() {
        return Ok(());
    }
    let sites: Vec<String> = days.iter().map(|(s, _, _)| (*s).to_string()).collect();
    let dates: Vec<NaiveDate> = days.iter().map(|(_, d, _)| *d).collect();
    let ids: Vec<i64> = days.iter().map(|(_, _, v)| *v).collect();
    let stmt = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO daily_visitors (site_id, day, visitor_id) \
         SELECT * FROM unnest($1::text[], $2::date[], $3::int8[]) \
         ON CONFLICT DO NOTHING RETURNING site_id, day, visitor_id",
        [sites.into(), dates.into(), ids.into()],
    );
    for row in txn.query_all_raw(stmt).await? {
        let key = (
            row.try_get_by_index::<String>(0)?,
            row.try_get_by_index::<NaiveDate>(1)?,
            row.try_get_by_index::<i64>(2)?,
        );
        if let Ok(i) = days.binary_search_by(|(s, d, v)| (*s, *d, *v).cmp(&(key.0.as_str(), key.1, key.2))) {
            rollups.count_new_visitor(days[i].0, days[i].1);
        }
    }
    Ok(())
}

/// The keys a statement inserted: event id → its sites (almost always one).
type Inserted = foldhash::HashMap<Uuid, Vec<String>>;

fn is_new(inserted: &Inserted, e: &Event) -> bool {
    inserted
        .get(&e.event_id)
        .is_some_and(|sites| sites.contains(&e.site_id))
}

/// Inserts the keys, in `(event_id, site_id)` order, and the raw rows of
/// those that were new, and returns those keys. The whole batch is one
/// statement of ten array parameters: a 1,000-row `VALUES` list costs the
/// server more to parse and plan than to insert.
async fn insert_events(txn: &DatabaseTransaction, events: &[&Event]) -> Result<Inserted, DbErr> {
    let mut inserted = Inserted::with_capacity_and_hasher(events.len(), foldhash::fast::RandomState::default());
    for row in txn.query_all_raw(unnest_insert(events)?).await? {
        let (id, site) = (row.try_get_by_index::<Uuid>(0)?, row.try_get_by_index::<String>(1)?);
        inserted.entry(id).or_default().push(site);
    }
    Ok(inserted)
}

/// The keys first (a key already there is a duplicate: no row), then the
/// rows joined to the keys inserted. A key's `day` is its row's partition,
/// so that retention drops both by day.
///
/// The context's texts (`Context::TEXT_FIELDS`) travel as a dictionary:
/// each distinct context of the batch once, one array per column, and per
/// row its index in them (`ctx`). A batch repeats a handful of contexts
/// (a server's events all carry the same two texts), and an array element
/// costs both ends an allocation and a copy per row. Of the columns only
/// `columns` are sent: the others are empty in the whole batch and take
/// their default (`''`). Without any, there is no dictionary.
fn insert_sql(columns: &[&str]) -> String {
    let dictionary = if columns.is_empty() {
        String::new()
    } else {
        let params: Vec<String> = (0..columns.len())
            .map(|i| format!("${}::text[]", FIXED_PARAMS + 1 + i))
            .collect();
        format!(
            ", c AS (SELECT * FROM unnest({}) WITH ORDINALITY AS c({}, ctx))",
            params.join(", "),
            columns.join(", ")
        )
    };
    let join = if columns.is_empty() {
        ""
    } else {
        " JOIN c ON c.ctx = e.ctx"
    };
    let names: String = columns.iter().map(|c| format!(", {c}")).collect();
    let selected: String = columns.iter().map(|c| format!(", c.{c}")).collect();
    format!(
        "WITH e AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::timestamptz[], $7::timestamptz[], $8::text[], $9::bool[], $10::text[], $11::int8[], $12::int8[]) \
           AS e(id, site, etype, path, usr, ts, recv, ref, has_ref, props, visitor, ctx)){dictionary}, \
         k AS (INSERT INTO event_keys (event_id, site_id, day) \
            SELECT e.id, e.site, CAST(e.ts AT TIME ZONE 'UTC' AS date) FROM e \
            ON CONFLICT (event_id, site_id) DO NOTHING RETURNING event_id, site_id) \
         INSERT INTO events (event_id, site_id, event_type, path, user_id, timestamp, received_at, referrer, \
            props, visitor_id{names}) \
         SELECT e.id, e.site, e.etype, e.path, e.usr, e.ts, e.recv, CASE WHEN e.has_ref THEN e.ref END, \
            CAST(NULLIF(e.props, '') AS jsonb), NULLIF(e.visitor, 0){selected} \
         FROM e JOIN k ON k.event_id = e.id AND k.site_id = e.site{join} \
         RETURNING event_id, site_id"
    )
}

/// The parameters before the context's texts.
const FIXED_PARAMS: usize = 12;

/// A batch's distinct contexts, numbered from 1 (SQL's ordinality) in
/// order of first appearance.
#[derive(Default)]
struct Contexts<'a> {
    index: foldhash::HashMap<(&'a str, &'a [u16; 14]), i64>,
    distinct: Vec<&'a Context>,
}

impl<'a> Contexts<'a> {
    fn number(&mut self, context: &'a Context) -> i64 {
        let next = self.distinct.len();
        *self.index.entry(context.texts_key()).or_insert_with(|| {
            self.distinct.push(context);
            i64::try_from(next + 1).unwrap_or(i64::MAX)
        })
    }
}

/// Arrays cannot carry SQL NULLs through sea-query, so the optional columns
/// travel as a presence flag (referrer, which may be empty), as `''` for no
/// props (a JSON object is never empty text) and as 0 for no visitor (a
/// visitor id is never 0). The context's texts are a dictionary
/// (`insert_sql`).
fn unnest_insert(events: &[&Event]) -> Result<Statement, DbErr> {
    let n = events.len();
    let (mut ids, mut sites, mut types, mut paths, mut users) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut times, mut received, mut referrers, mut has_referrer, mut props) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut visitors, mut numbers): (Vec<i64>, Vec<i64>) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut contexts = Contexts::default();
    for e in events {
        ids.push(e.event_id);
        sites.push(e.site_id.clone());
        types.push(e.event_type.clone());
        paths.push(e.path.clone());
        users.push(e.user_id.clone());
        times.push(e.timestamp);
        received.push(e.received_at);
        referrers.push(e.referrer.clone().unwrap_or_default());
        has_referrer.push(e.referrer.is_some());
        // The map itself serialises to the text `Value::Object` of it
        // does, without copying it first.
        props.push(match &e.props {
            Some(p) => serde_json::to_string(p).map_err(|err| DbErr::Json(err.to_string()))?,
            None => String::new(),
        });
        visitors.push(e.context.visitor_id.unwrap_or(0));
        numbers.push(contexts.number(&e.context));
    }
    let columns: Vec<usize> = (0..Context::TEXT_FIELDS.len())
        .filter(|&i| contexts.distinct.iter().any(|c| !c.text_values()[i].is_empty()))
        .collect();
    let names: Vec<&str> = columns.iter().map(|&i| Context::TEXT_FIELDS[i]).collect();
    let mut values: Vec<Value> = vec![
        ids.into(),
        sites.into(),
        types.into(),
        paths.into(),
        users.into(),
        times.into(),
        received.into(),
        referrers.into(),
        has_referrer.into(),
        props.into(),
        visitors.into(),
        numbers.into(),
    ];
    for &i in &columns {
        let column: Vec<String> = contexts
            .distinct
            .iter()
            .map(|c| c.text_values()[i].to_string())
            .collect();
        values.push(column.into());
    }
    Ok(Statement::from_sql_and_values(
        DbBackend::Postgres,
        insert_sql(&names),
        values,
    ))
}
