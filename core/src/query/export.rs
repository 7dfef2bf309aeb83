//! `GET /api/export/events`: a site's raw events over local days, streamed
//! as NDJSON (each line the event as the Kafka message carries it, which
//! `analytics-admin import` reads back) or CSV (one column per stored
//! field, `props` as JSON text). Rows go from the database to the client
//! through a small bounded channel, so memory stays flat whatever the
//! size: a slow client slows the read.

use super::params::{parse_site, reject_unknown, Params};
use crate::event::exchange;
use crate::event::{Context, Event, FieldError};
use crate::store::StoreError;
use analytics_query::time::local_day_start;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use futures::{Stream, TryStreamExt};
use sea_orm::{DatabaseConnection, QueryResult, Statement, StreamTrait};
use serde_json::{Map, Value};

pub use crate::event::exchange::Format;

/// What a response of each format is.
pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::Ndjson => "application/x-ndjson",
        Format::Csv => "text/csv; charset=utf-8",
    }
}

pub fn extension(format: Format) -> &'static str {
    match format {
        Format::Ndjson => "ndjson",
        Format::Csv => "csv",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportQuery {
    pub site_id: String,
    /// Local days of the site, both included.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub format: Format,
}

impl ExportQuery {
    pub fn parse(params: &Params) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        reject_unknown(params, &["site_id", "from", "to", "format"], &mut errors);
        let site_id = parse_site(params, &mut errors);
        let mut date = |field: &str| match params.get(field) {
            None => {
                errors.push(FieldError::new(field, "is required (YYYY-MM-DD)"));
                None
            }
            Some(raw) => match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
                Ok(d) if (1900..=9999).contains(&chrono::Datelike::year(&d)) => Some(d),
                _ => {
                    errors.push(FieldError::new(
                        field,
                        format!("must be a date YYYY-MM-DD (got `{raw}`)"),
                    ));
                    None
                }
            },
        };
        let (from, to) = (date("from"), date("to"));
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                errors.push(FieldError::new("to", "must not be before from"));
            }
        }
        let format = match params.get("format").map(String::as_str) {
            None | Some("ndjson") => Format::Ndjson,
            Some("csv") => Format::Csv,
            Some(other) => {
                errors.push(FieldError::new(
                    "format",
                    format!("must be `ndjson` or `csv` (got `{other}`)"),
                ));
                Format::Ndjson
            }
        };
        match (from, to) {
            (Some(from), Some(to)) if errors.is_empty() => Ok(Self {
                site_id,
                from,
                to,
                format,
            }),
            _ => Err(errors),
        }
    }
}

/// The stored columns, in the CSV's order.
const COLUMNS: &str = "event_id, site_id, event_type, path, user_id, timestamp, received_at, referrer, props, \
    visitor_id, hostname, source, channel, utm_source, utm_medium, utm_campaign, utm_content, utm_term, \
    browser, browser_version, os, os_version, device, country";

/// The CSV header: the columns above.
pub fn csv_header() -> Vec<&'static str> {
    exchange::CSV_HEADER.to_vec()
}

fn decode(row: &QueryResult) -> Result<Event, StoreError> {
    let props: Option<Value> = row.try_get_by_index(8)?;
    let texts: Vec<String> = (10..24)
        .map(|i| row.try_get_by_index::<String>(i))
        .collect::<Result<_, _>>()?;
    Ok(Event {
        event_id: row.try_get_by_index(0)?,
        site_id: row.try_get_by_index(1)?,
        event_type: row.try_get_by_index(2)?,
        path: row.try_get_by_index(3)?,
        user_id: row.try_get_by_index(4)?,
        timestamp: row.try_get_by_index(5)?,
        received_at: row.try_get_by_index(6)?,
        referrer: row.try_get_by_index(7)?,
        props: match props {
            Some(Value::Object(m)) => Some(m),
            _ => None::<Map<String, Value>>,
        },
        context: Context::new(row.try_get_by_index(9)?, std::array::from_fn(|i| texts[i].as_str())),
    })
}

/// Chunks of the export, each about this size, at most `IN_FLIGHT` of
/// them between the database and the client.
const CHUNK_BYTES: usize = 64 * 1024;
const IN_FLIGHT: usize = 4;

/// The export as a stream of chunks. The read runs in a task of its own
/// (it owns its connection) and stops when the client goes away.
pub fn stream(
    db: DatabaseConnection,
    q: &ExportQuery,
    tz: Tz,
) -> impl Stream<Item = Result<Vec<u8>, StoreError>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, StoreError>>(IN_FLIGHT);
    let (site, format) = (q.site_id.clone(), q.format);
    let start = local_day_start(tz, q.from);
    let end = local_day_start(tz, q.to + Duration::days(1));
    tokio::spawn(async move {
        if let Err(e) = produce(&db, &site, start, end, format, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

async fn produce(
    db: &DatabaseConnection,
    site: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    format: Format,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<u8>, StoreError>>,
) -> Result<(), StoreError> {
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
    if format == Format::Csv {
        chunk.extend(exchange::csv_header_line());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE site_id = $1 AND timestamp >= $2 AND timestamp < $3 ORDER BY timestamp"
    );
    let rows = db
        .stream_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [site.into(), start.into(), end.into()],
        ))
        .await?;
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = rows.try_next().await? {
        chunk.extend(exchange::to_line(format, &decode(&row)?));
        if chunk.len() >= CHUNK_BYTES {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES + 4096));
            if tx.send(Ok(full)).await.is_err() {
                return Ok(()); // the client went away
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Ok(chunk)).await;
    }
    Ok(())
}
