//! Scenario `engine`: the v2 scenario's queries evaluated in-process over
//! the largest site's columns, without HTTP, JSON or the cache around them.
//! The columns are read once from the query dataset with the api's own
//! reader (`columns_for`); then each query of [`query_v2::specs`] is
//! evaluated by `analytics_query::engine::evaluate` (on every core, as the
//! api does) `--engine-repetitions` times after one untimed answer. It is
//! the scan's own time: what a change to the engine moves, measured in
//! seconds where the `v2` scenario takes tens of minutes.

use super::queries::{ensure_dataset, DatasetInfo};
use super::query_v2::{bounds, specs};
use super::{say, Ctx};
use crate::loadgen::{new_histogram, record, Latency};
use crate::workload::site_name;
use analytics_core::query::v2::{columns_for, DEFAULT_MAX_EVENTS};
use analytics_query::engine;
use analytics_query::time::ResolvedRange;
use analytics_query::Query;
use anyhow::{anyhow, Result};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EngineQuery {
    pub kind: String,
    pub query: String,
    pub samples: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub rows: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EngineResults {
    pub dataset: DatasetInfo,
    pub site: String,
    pub events: usize,
    pub visits: usize,
    /// What the columns hold, as the cache accounts it.
    pub heap_mb: f64,
    pub read_seconds: f64,
    pub threads: usize,
    pub queries: Vec<EngineQuery>,
}

pub async fn run(ctx: &Ctx) -> Result<EngineResults> {
    let dataset = ensure_dataset(ctx).await?;
    let url = ctx.env.database_url(&dataset.database);
    let first: NaiveDate = dataset.first_day.parse()?;
    let last: NaiveDate = dataset.last_day.parse()?;
    let (start, end) = bounds(first, last);
    let range = ResolvedRange { start, end };
    let site = site_name(0);
    let db = analytics_core::store::connect::connect(&url, 1).await?;
    say(format!("engine: reading {site}'s columns"));
    let started = Instant::now();
    let loaded = columns_for(&db, &site, range, DEFAULT_MAX_EVENTS).await?;
    let read_seconds = started.elapsed().as_secs_f64();
    db.close().await?;
    let columns = loaded.columns;
    #[allow(clippy::cast_precision_loss)]
    let heap_mb = columns.heap_bytes() as f64 / 1e6;
    say(format!(
        "  {} events, {} visits, {heap_mb:.1} MB, read in {read_seconds:.1} s",
        columns.len(),
        columns.visit_visitor.len(),
    ));
    let reps = ctx.args.engine_repetitions.max(1);
    let mut queries = Vec::new();
    let only = ctx.args.engine_only.as_deref().unwrap_or("");
    for spec in specs().into_iter().filter(|s| s.label().contains(only)) {
        let query = Query::parse(&spec.request(&site, first, last))
            .map_err(|e| anyhow!("{}: the request does not parse: {e:?}", spec.label()))?;
        let tz = chrono_tz::UTC;
        let rows = engine::evaluate(&query, range, tz, &columns)?.results.len();
        // Recorded as every other latency of the suite (microseconds, three
        // significant digits, nearest-rank quantiles).
        let mut hist = new_histogram()?;
        for _ in 0..reps {
            let t = Instant::now();
            let answer = engine::evaluate(&query, range, tz, &columns);
            record(&mut hist, t.elapsed());
            drop(answer);
        }
        let l = Latency::from_histogram(&hist);
        #[allow(clippy::cast_precision_loss)]
        let q = EngineQuery {
            kind: spec.kind.clone(),
            query: spec.label(),
            samples: reps,
            min_ms: hist.min() as f64 / 1e3,
            p50_ms: l.p50_ms,
            p99_ms: l.p99_ms,
            rows,
        };
        say(format!(
            "  {:<60} min {:>6.2}  p50 {:>6.2}  p99 {:>6.2} ms",
            q.query, q.min_ms, q.p50_ms, q.p99_ms
        ));
        queries.push(q);
    }
    Ok(EngineResults {
        dataset,
        site,
        events: columns.len(),
        visits: columns.visit_visitor.len(),
        heap_mb,
        read_seconds,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        queries,
    })
}

/// The results as a Markdown section.
pub fn markdown(r: &EngineResults) -> String {
    let mut s = format!(
        "`{}` of `{}`: {} events, {} visits, columns {:.1} MB (read in {:.1} s); \
         each query evaluated in-process on {} threads, {} timed answers after one untimed.\n\n\
         | kind | query | min | p50 | p99 | rows |\n| --- | --- | ---: | ---: | ---: | ---: |\n",
        r.site,
        r.dataset.database,
        r.events,
        r.visits,
        r.heap_mb,
        r.read_seconds,
        r.threads,
        r.queries.first().map_or(0, |q| q.samples)
    );
    for q in &r.queries {
        s.push_str(&format!(
            "| {} | `{}` | {:.2} ms | {:.2} ms | {:.2} ms | {} |\n",
            q.kind,
            q.query.replace('|', "\\|"),
            q.min_ms,
            q.p50_ms,
            q.p99_ms,
            q.rows
        ));
    }
    s
}
