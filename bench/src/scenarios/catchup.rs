//! Scenario 2: processor catch-up. The api (Kafka mode) takes N events while
//! no processor runs; then the processor starts and the time until every
//! acknowledged event is a row in `events` (rollups included) is measured.
//! Beside it: a raw binary COPY of the same rows into an empty copy of the
//! events table with the same indexes (and, for reference, into one without).

use super::{say, Ctx, KafkaStack};
use crate::loadgen::{self, LoadResult, LoadSpec, Mode};
use crate::services;
use crate::workload::{body_pool, pool_size, Generator, Shape};
use anyhow::{anyhow, Result};
use futures::StreamExt;
use hyper::StatusCode;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::{raw_sql, AssertSqlSafe, Connection};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every column the writer fills: the event's own, its visitor and the
/// context's texts (without these the baseline wrote narrower rows than
/// the writer it is the reference of).
fn columns() -> String {
    let own = "event_id, site_id, event_type, path, user_id, timestamp, received_at, referrer, props, visitor_id";
    std::iter::once(own)
        .chain(analytics_core::event::Context::TEXT_FIELDS)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CopyResult {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub rows_per_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CatchupResults {
    pub events_requested: u64,
    /// Events the api acknowledged (202) while the processor was stopped.
    pub events_acked: u64,
    pub push: LoadResult,
    /// Seconds from spawning the processor until every acknowledged event was written.
    pub seconds_from_start: f64,
    /// Seconds from the first written row until every acknowledged event was written.
    pub seconds_from_first_row: f64,
    /// Seconds from spawning the processor to its first written row (start-up, group join).
    pub seconds_to_first_row: f64,
    pub rows_stored: i64,
    pub rows_per_s_from_start: f64,
    pub rows_per_s_from_first_row: f64,
    pub complete: bool,
    /// COPY of the rows into `events_copy (LIKE events INCLUDING ALL)` plus
    /// of their keys into `event_keys_copy (LIKE event_keys INCLUDING ALL)`:
    /// the indexes the writer maintains; rows/s over the two together.
    pub copy_indexed: CopyResult,
    /// COPY into `events_bare (LIKE events)` with defaults: no primary key, no index.
    pub copy_bare: CopyResult,
    /// Processor rows/s (from its first row) ÷ indexed COPY rows/s.
    pub ratio_to_copy: f64,
}

pub async fn run(ctx: &Ctx) -> Result<CatchupResults> {
    let mut stack = KafkaStack::start(ctx, 6, false).await?;
    let result = measure(ctx, &mut stack).await;
    stack.teardown(ctx).await;
    result
}

async fn measure(ctx: &Ctx, stack: &mut KafkaStack) -> Result<CatchupResults> {
    let n = ctx.args.catchup_events();
    let shape = Shape::Batch(1000);
    let mut gen = Generator::new(ctx.args.mix());
    let bodies = Arc::new(body_pool(&mut gen, shape, pool_size(shape))?);
    let api = stack.api.as_ref().ok_or_else(|| anyhow!("api not running"))?;
    say(format!(
        "catch-up: pushing {n} events through the api (processor stopped)"
    ));
    let spec = LoadSpec {
        path: shape.path().to_string(),
        bodies,
        connections: ctx.args.batch_connections,
        mode: Mode::Max,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(3600),
        max_requests: Some(n.div_ceil(1000)),
        ok_status: StatusCode::ACCEPTED,
    };
    let push = loadgen::run(api.http_addr(), "push", &spec).await?;
    let acked = push.events_acked_total;
    say(format!(
        "  pushed: {acked} acknowledged in {:.1} s ({:.0} events/s), errors {}",
        push.duration_s, push.events_per_s, push.error_total
    ));

    say("  starting the processor");
    let spawned = Instant::now();
    stack.start_processor(ctx).await?;
    let paddr = stack
        .processor
        .as_ref()
        .map(services::Service::metrics_addr)
        .ok_or_else(|| anyhow!("processor not running"))?;
    let mut first_row: Option<Instant> = None;
    let mut last_progress = (0u64, Instant::now());
    let (written, done_at) = loop {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let written = services::read_metric(paddr, "analytics_events_written_total")
            .await
            .map_or(0, |v| v as u64);
        let now = Instant::now();
        if written > 0 && first_row.is_none() {
            first_row = Some(now);
        }
        if written > last_progress.0 {
            last_progress = (written, now);
        }
        if written >= acked {
            break (written, now);
        }
        if last_progress.1.elapsed() > Duration::from_secs(120) {
            say(format!("  processor stalled at {written} of {acked}"));
            break (written, now);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let complete = written >= acked;
    let first = first_row.unwrap_or(done_at);
    let from_start = done_at.duration_since(spawned).as_secs_f64();
    let from_first = done_at.duration_since(first).as_secs_f64().max(1e-9);
    let rows = services::count_rows(&stack.db_url, "events").await?;
    #[allow(clippy::cast_precision_loss)]
    let (rps_start, rps_first) = (acked as f64 / from_start, acked as f64 / from_first);
    say(format!(
        "  processor: {rows} rows in {from_start:.1} s from start ({rps_start:.0} rows/s), \
         {from_first:.1} s from its first row ({rps_first:.0} rows/s)"
    ));
    if let Some(p) = stack.processor.take() {
        let _ = p.stop(Duration::from_secs(30)).await;
    }

    let (copy_indexed, copy_bare) = copy_baseline(&stack.db_url).await?;
    say(format!(
        "  COPY: {:.0} rows/s with the rows' and keys' indexes, {:.0} rows/s bare",
        copy_indexed.rows_per_s, copy_bare.rows_per_s
    ));
    Ok(CatchupResults {
        events_requested: n,
        events_acked: acked,
        push,
        seconds_from_start: from_start,
        seconds_from_first_row: from_first,
        seconds_to_first_row: first.duration_since(spawned).as_secs_f64(),
        rows_stored: rows,
        rows_per_s_from_start: rps_start,
        rows_per_s_from_first_row: rps_first,
        complete,
        ratio_to_copy: if copy_indexed.rows_per_s > 0.0 {
            rps_first / copy_indexed.rows_per_s
        } else {
            0.0
        },
        copy_indexed,
        copy_bare,
    })
}

/// Exports the stored rows (binary COPY, into memory) and times loading them
/// into empty copies of the tables. The indexed baseline is what the writer
/// maintains: the rows into a copy of `events` (its time index) plus their
/// keys into a copy of `event_keys` (its primary key and day index); the
/// bare one, the rows alone into a table with no index.
async fn copy_baseline(url: &str) -> Result<(CopyResult, CopyResult)> {
    const KEY_COLUMNS: &str = "event_id, site_id, day";
    let mut conn = PgConnection::connect(url).await?;
    let columns = columns();
    let rows = export(&mut conn, "events", &columns).await?;
    let keys = export(&mut conn, "event_keys", KEY_COLUMNS).await?;
    let into_events = time_copy(&mut conn, "events_copy", "LIKE events INCLUDING ALL", &columns, &rows).await?;
    let into_keys = time_copy(
        &mut conn,
        "event_keys_copy",
        "LIKE event_keys INCLUDING ALL",
        KEY_COLUMNS,
        &keys,
    )
    .await?;
    let bare = time_copy(
        &mut conn,
        "events_bare",
        "LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY",
        &columns,
        &rows,
    )
    .await?;
    conn.close().await?;
    let seconds = into_events.seconds + into_keys.seconds;
    #[allow(clippy::cast_precision_loss)]
    let indexed = CopyResult {
        table: format!("{} + {}", into_events.table, into_keys.table),
        rows: into_events.rows,
        bytes: into_events.bytes + into_keys.bytes,
        seconds,
        rows_per_s: into_events.rows as f64 / seconds.max(1e-9),
    };
    Ok((indexed, bare))
}

async fn export(conn: &mut PgConnection, table: &str, columns: &str) -> Result<Vec<bytes::Bytes>> {
    let mut chunks = Vec::new();
    let mut stream = conn
        .copy_out_raw(&format!(
            "COPY (SELECT {columns} FROM {table}) TO STDOUT (FORMAT binary)"
        ))
        .await?;
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk?);
    }
    Ok(chunks)
}

/// Loads `chunks` into a new `table (like)` after a checkpoint, timed; the
/// table is dropped afterwards.
async fn time_copy(
    conn: &mut PgConnection,
    table: &str,
    like: &str,
    columns: &str,
    chunks: &[bytes::Bytes],
) -> Result<CopyResult> {
    let bytes: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    raw_sql(AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({like})"
    )))
    .execute(&mut *conn)
    .await?;
    raw_sql("CHECKPOINT").execute(&mut *conn).await?;
    let start = Instant::now();
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN (FORMAT binary)"))
        .await?;
    for c in chunks {
        copy.send(c.as_ref()).await?;
    }
    let rows = copy.finish().await?;
    let seconds = start.elapsed().as_secs_f64();
    raw_sql(AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(&mut *conn)
        .await?;
    #[allow(clippy::cast_precision_loss)]
    Ok(CopyResult {
        table: format!("{table} ({like})"),
        rows,
        bytes,
        seconds,
        rows_per_s: rows as f64 / seconds.max(1e-9),
    })
}
