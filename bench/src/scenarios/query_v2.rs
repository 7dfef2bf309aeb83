//! Scenario `v2`: Stats API v2 queries (issue 23) on the query dataset of
//! scenario 4 (10M events, 20 sites, 30 days, visits of several pageviews).
//! A fixed list of queries ([`specs`]) over the dataset's 30 days, for the
//! largest site and a mid-sized one, each answered by three systems in the
//! same run, sequentially, one connection each:
//!
//! - ours: `POST /api/v2/query` to the real api binary;
//! - ClickHouse: the same raw events in a chdb (in-process ClickHouse)
//!   MergeTree table, the query in ClickHouse SQL with window functions for
//!   the visits, timed in-process by `bench/v2_chdb.py`;
//! - the seed's design: plain SQL with window functions over PostgreSQL's
//!   `events` table.
//!
//! The semantics of query/README.md are written out in both SQL flavours
//! here (visits from a visitor's events with gaps of at most 30 minutes,
//! visit attributes from the first event, entry/exit page from the first/last
//! pageview, bounce = one event that is a pageview, ...). The first answer of
//! every (query, system) is untimed (a warm-up) unless it took longer than
//! [`COLD_COUNTS_AFTER`]; its rows are compared between the systems.

use super::queries::{ensure_dataset, DatasetInfo};
use super::{say, Ctx};
use crate::loadgen::{new_histogram, record, HttpConn, Latency};
use crate::services::{self, Service};
use crate::workload::site_name;
use anyhow::{anyhow, bail, Context as _, Result};
use chrono::{DateTime, Duration as Days, NaiveDate, Utc};
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::{Connection, Row};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A first (warm-up) answer slower than this is a sample too: at seconds a
/// query, a cold cache is noise, and a repetition costs as much.
pub const COLD_COUNTS_AFTER: Duration = Duration::from_secs(2);
/// Rows compared per answer (a breakdown's top rows; a time series whole).
pub const TOP: usize = 10;

/// A dimension of the list: its name in the request and whether it is an
/// event dimension (no session metrics).
pub const DIMENSIONS: [&str; 9] = [
    "visit:source",
    "visit:channel",
    "visit:browser",
    "visit:os",
    "visit:device",
    "visit:country",
    "event:page",
    "visit:entry_page",
    "visit:exit_page",
];
pub const SESSION_METRICS: [&str; 5] = ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"];
pub const EVENT_METRICS: [&str; 2] = ["visitors", "pageviews"];

/// One filter: `is` or `contains`, a dimension, one clause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub op: String,
    pub dimension: String,
    pub value: String,
}

impl Filter {
    fn new(op: &str, dimension: &str, value: &str) -> Self {
        Self {
            op: op.into(),
            dimension: dimension.into(),
            value: value.into(),
        }
    }
}

/// One query of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// `breakdown`, `1 filter`, `2 filters`, `contains` or `series`.
    pub kind: String,
    pub dimension: String,
    pub filters: Vec<Filter>,
    pub metrics: Vec<String>,
}

impl Spec {
    fn new(kind: &str, dimension: &str, filters: Vec<Filter>) -> Self {
        let metrics: &[&str] = if dimension.starts_with("event:") {
            &EVENT_METRICS
        } else {
            &SESSION_METRICS
        };
        Self {
            kind: kind.into(),
            dimension: dimension.into(),
            filters,
            metrics: metrics.iter().map(|m| (*m).to_string()).collect(),
        }
    }

    pub fn label(&self) -> String {
        let f: Vec<String> = self
            .filters
            .iter()
            .map(|f| format!("{} {} {}", f.dimension, f.op, f.value))
            .collect();
        if f.is_empty() {
            self.dimension.clone()
        } else {
            format!("{} | {}", self.dimension, f.join(" & "))
        }
    }

    fn is_series(&self) -> bool {
        self.dimension.starts_with("time")
    }

    fn session_metrics(&self) -> bool {
        self.metrics
            .iter()
            .any(|m| matches!(m.as_str(), "visits" | "bounce_rate" | "visit_duration"))
    }

    /// Whether visits must be built: a visit dimension, filter or metric.
    fn needs_visits(&self) -> bool {
        self.dimension.starts_with("visit:")
            || self.session_metrics()
            || self.filters.iter().any(|f| f.dimension.starts_with("visit:"))
    }

    /// The `POST /api/v2/query` body.
    pub fn request(&self, site: &str, first: NaiveDate, last: NaiveDate) -> Value {
        let filters: Vec<Value> = self
            .filters
            .iter()
            .map(|f| json!([f.op, f.dimension, [f.value]]))
            .collect();
        let mut q = json!({
            "site_id": site,
            "metrics": self.metrics,
            "date_range": [first.to_string(), last.to_string()],
            "dimensions": [self.dimension],
        });
        if !filters.is_empty() {
            q["filters"] = Value::Array(filters);
        }
        if !self.is_series() {
            q["pagination"] = json!({ "limit": TOP });
        }
        q
    }
}

/// The page of the two-filter queries (the most visited one) and the
/// fragment of the `contains` ones.
pub const FILTER_PAGE: &str = "/";
pub const CONTAINS: &str = "/blog";

/// The fixed list: each dimension unfiltered, with one filter (a visit
/// filter) and with two (an event and a visit filter); a `contains` filter;
/// a daily series with a filter.
pub fn specs() -> Vec<Spec> {
    let de = || Filter::new("is", "visit:country", "DE");
    let mut out: Vec<Spec> = DIMENSIONS.iter().map(|d| Spec::new("breakdown", d, vec![])).collect();
    out.extend(DIMENSIONS.iter().map(|d| Spec::new("1 filter", d, vec![de()])));
    out.extend(DIMENSIONS.iter().map(|d| {
        Spec::new(
            "2 filters",
            d,
            vec![
                Filter::new("is", "event:page", FILTER_PAGE),
                Filter::new("is", "visit:source", "Google"),
            ],
        )
    }));
    for d in ["visit:source", "event:page"] {
        out.push(Spec::new(
            "contains",
            d,
            vec![Filter::new("contains", "event:page", CONTAINS)],
        ));
    }
    out.push(Spec::new("series", "time:day", vec![de()]));
    out
}

// -------------------------------------------------------------------- SQL

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A visit dimension's column (both SQL flavours name them alike).
fn visit_column(dimension: &str) -> Option<String> {
    dimension.strip_prefix("visit:").map(|d| format!("v_{d}"))
}

/// The seed-style SQL on PostgreSQL. `$1` the site; with visits, `$2`/`$3`
/// the events read to build them (the range widened by a day on each side:
/// exact while no visit lasts a day) and `$4`/`$5` the range; without,
/// `$2`/`$3` the range.
pub fn postgres_sql(spec: &Spec) -> String {
    let column = |d: &str| -> String {
        match d {
            "event:page" => "path".into(),
            "time:day" => "to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD')".into(),
            d => visit_column(d).unwrap_or_else(|| d.to_string()),
        }
    };
    let filters: String = spec
        .filters
        .iter()
        .map(|f| {
            let c = column(&f.dimension);
            match f.op.as_str() {
                "contains" => format!(" AND strpos({c}, {}) > 0", quote(&f.value)),
                _ => format!(" AND {c} = {}", quote(&f.value)),
            }
        })
        .collect();
    let d = column(&spec.dimension);
    // PostgreSQL takes an output name in ORDER BY only bare: the
    // expression itself then, where `d` is not a column of the input.
    let order = |d: &str| {
        if spec.is_series() {
            format!("{d} COLLATE \"C\"")
        } else {
            format!("visitors DESC, {d} COLLATE \"C\" LIMIT {TOP}")
        }
    };
    if !spec.needs_visits() {
        let order = order(&d);
        return format!(
            "SELECT {d} AS d, \
             count(DISTINCT CASE WHEN user_id <> '' THEN 'u:' || user_id WHEN visitor_id IS NOT NULL THEN 'c:' || visitor_id END) AS visitors, \
             count(*) FILTER (WHERE event_type = 'page_view') AS pageviews \
             FROM events WHERE site_id = $1 AND timestamp >= $2 AND timestamp < $3{filters} \
             GROUP BY 1 ORDER BY {order}"
        );
    }
    let visits = "WITH ev AS ( \
        SELECT event_id, timestamp, event_type, path, \
          CASE WHEN user_id <> '' THEN 'u:' || user_id ELSE 'c:' || visitor_id END AS visitor, \
          source, channel, browser, os, device, country \
        FROM events \
        WHERE site_id = $1 AND timestamp >= $2 AND timestamp < $3 AND (user_id <> '' OR visitor_id IS NOT NULL)), \
      marked AS ( \
        SELECT *, CASE WHEN timestamp - lag(timestamp) OVER (PARTITION BY visitor ORDER BY timestamp, event_id) \
          <= interval '30 minutes' THEN 0 ELSE 1 END AS new_visit FROM ev), \
      numbered AS ( \
        SELECT *, sum(new_visit) OVER (PARTITION BY visitor ORDER BY timestamp, event_id ROWS UNBOUNDED PRECEDING) \
          AS visit_no FROM marked), \
      visited AS ( \
        SELECT *, \
          first_value(source) OVER v AS v_source, \
          first_value(channel) OVER v AS v_channel, \
          first_value(browser) OVER v AS v_browser, \
          first_value(os) OVER v AS v_os, \
          first_value(device) OVER v AS v_device, \
          first_value(country) OVER v AS v_country, \
          array_agg(path) FILTER (WHERE event_type = 'page_view') OVER v AS v_pages, \
          count(*) OVER v = 1 AND bool_and(event_type = 'page_view') OVER v AS v_bounced, \
          floor(extract(epoch FROM max(timestamp) OVER v - min(timestamp) OVER v))::bigint AS v_duration \
        FROM numbered \
        WINDOW v AS (PARTITION BY visitor, visit_no ORDER BY timestamp, event_id \
          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)), \
      kept AS ( \
        SELECT * FROM ( \
          SELECT timestamp, event_type, path, visitor, visit_no, v_source, v_channel, v_browser, v_os, v_device, \
            v_country, v_pages[1] AS v_entry_page, v_pages[array_upper(v_pages, 1)] AS v_exit_page, v_bounced, \
            v_duration \
          FROM visited) AS x \
        WHERE timestamp >= $4 AND timestamp < $5";
    if spec.session_metrics() {
        let order = order("d");
        format!(
            "{visits}{filters}), \
             per_visit AS ( \
               SELECT {d} AS d, visitor, visit_no, bool_or(v_bounced) AS bounced, max(v_duration) AS duration, \
                 count(*) FILTER (WHERE event_type = 'page_view') AS pageviews \
               FROM kept WHERE {d} IS NOT NULL GROUP BY 1, 2, 3) \
             SELECT d, count(DISTINCT visitor) AS visitors, count(*) AS visits, sum(pageviews)::bigint AS pageviews, \
               (200 * count(*) FILTER (WHERE bounced) + count(*)) / (2 * count(*)) AS bounce_rate, \
               floor((2 * sum(duration) + count(*)) / (2.0 * count(*)))::bigint AS visit_duration \
             FROM per_visit GROUP BY d ORDER BY {order}"
        )
    } else {
        let order = order(&d);
        format!(
            "{visits}{filters}) \
             SELECT {d} AS d, count(DISTINCT visitor) AS visitors, \
               count(*) FILTER (WHERE event_type = 'page_view') AS pageviews \
             FROM kept WHERE {d} IS NOT NULL GROUP BY 1 ORDER BY {order}"
        )
    }
}

/// ClickHouse's SQL for `site` over `[from, to)` (the visits built from
/// the range widened by a day on each side, as on PostgreSQL).
pub fn clickhouse_sql(spec: &Spec, site: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let at = |t: DateTime<Utc>| format!("toDateTime64('{}', 6, 'UTC')", t.format("%Y-%m-%d %H:%M:%S"));
    let (lo, hi) = (at(from - Days::days(1)), at(to + Days::days(1)));
    let (from, to) = (at(from), at(to));
    let site = quote(site);
    let column = |d: &str| -> String {
        match d {
            "event:page" => "path".into(),
            "time:day" => "toString(toDate(timestamp, 'UTC'))".into(),
            d => visit_column(d).unwrap_or_else(|| d.to_string()),
        }
    };
    let mut filters: String = spec
        .filters
        .iter()
        .map(|f| {
            let c = column(&f.dimension);
            match f.op.as_str() {
                "contains" => format!(" AND position({c}, {}) > 0", quote(&f.value)),
                _ => format!(" AND {c} = {}", quote(&f.value)),
            }
        })
        .collect();
    // A visit without pageviews has no entry or exit page.
    if spec
        .filters
        .iter()
        .any(|f| f.dimension.ends_with("_page") && f.dimension.starts_with("visit:"))
        || matches!(spec.dimension.as_str(), "visit:entry_page" | "visit:exit_page")
    {
        filters.push_str(" AND v_pageviews > 0");
    }
    let d = column(&spec.dimension);
    let order = if spec.is_series() {
        "d ASC".to_string()
    } else {
        format!("m_visitors DESC, d ASC LIMIT {TOP}")
    };
    if !spec.needs_visits() {
        return format!(
            "SELECT {d} AS d, uniqExactIf(visitor, visitor != '') AS m_visitors, \
             countIf(event_type = 'page_view') AS m_pageviews \
             FROM events WHERE site_id = {site} AND timestamp >= {from} AND timestamp < {to}{filters} \
             GROUP BY d ORDER BY {order}"
        );
    }
    let visits = format!(
        "WITH ev AS ( \
           SELECT event_id, timestamp, toUnixTimestamp64Micro(timestamp) AS t, event_type, path, visitor, \
             source, channel, browser, os, device, country \
           FROM events WHERE site_id = {site} AND timestamp >= {lo} AND timestamp < {hi} AND visitor != ''), \
         marked AS ( \
           SELECT *, if(t - lagInFrame(t) OVER (PARTITION BY visitor ORDER BY t, event_id \
             ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) > 1800000000, 1, 0) AS new_visit FROM ev), \
         numbered AS ( \
           SELECT *, sum(new_visit) OVER (PARTITION BY visitor ORDER BY t, event_id \
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS visit_no FROM marked), \
         visited AS ( \
           SELECT *, \
             argMin(source, (t, event_id)) OVER v AS v_source, \
             argMin(channel, (t, event_id)) OVER v AS v_channel, \
             argMin(browser, (t, event_id)) OVER v AS v_browser, \
             argMin(os, (t, event_id)) OVER v AS v_os, \
             argMin(device, (t, event_id)) OVER v AS v_device, \
             argMin(country, (t, event_id)) OVER v AS v_country, \
             argMinIf(path, (t, event_id), event_type = 'page_view') OVER v AS v_entry_page, \
             argMaxIf(path, (t, event_id), event_type = 'page_view') OVER v AS v_exit_page, \
             countIf(event_type = 'page_view') OVER v AS v_pageviews, \
             count() OVER v AS v_events, \
             intDiv(max(t) OVER v - min(t) OVER v, 1000000) AS v_duration \
           FROM numbered \
           WINDOW v AS (PARTITION BY visitor, visit_no ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)), \
         kept AS (SELECT * FROM visited WHERE timestamp >= {from} AND timestamp < {to}{filters})"
    );
    if spec.session_metrics() {
        format!(
            "{visits}, \
             per_visit AS ( \
               SELECT {d} AS d, visitor, visit_no, any(v_events = 1 AND v_pageviews = 1) AS bounced, \
                 any(v_duration) AS duration, countIf(event_type = 'page_view') AS pv \
               FROM kept GROUP BY d, visitor, visit_no) \
             SELECT d, uniqExact(visitor) AS m_visitors, count() AS m_visits, sum(pv) AS m_pageviews, \
               intDiv(200 * countIf(bounced) + count(), 2 * count()) AS m_bounce_rate, \
               intDiv(2 * sum(duration) + count(), 2 * count()) AS m_visit_duration \
             FROM per_visit GROUP BY d ORDER BY {order}"
        )
    } else {
        format!(
            "{visits} \
             SELECT {d} AS d, uniqExact(visitor) AS m_visitors, countIf(event_type = 'page_view') AS m_pageviews \
             FROM kept GROUP BY d ORDER BY {order}"
        )
    }
}

// ---------------------------------------------------------------- results

/// One row of an answer: the dimension's value and the metrics in order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AnswerRow {
    pub dimension: String,
    pub metrics: Vec<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Timing {
    /// Samples (the warm-up answer included when it was slow, see the module).
    pub samples: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct QueryResult {
    pub site: String,
    pub kind: String,
    pub query: String,
    pub ours: Timing,
    pub clickhouse: Timing,
    pub postgres: Timing,
    /// The compared rows (ours; the others' when they differ).
    pub rows: Vec<AnswerRow>,
    pub clickhouse_rows: Option<Vec<AnswerRow>>,
    pub postgres_rows: Option<Vec<AnswerRow>>,
    /// `equal`, or what differs.
    pub comparison: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct V2Results {
    pub dataset: DatasetInfo,
    pub sites: Vec<(String, i64)>,
    pub repetitions: usize,
    pub min_samples: usize,
    pub budget_seconds: f64,
    /// Seconds to export the events from PostgreSQL and load them into chdb
    /// (0 when its table was reused).
    pub clickhouse_load_seconds: f64,
    pub clickhouse_version: String,
    pub queries: Vec<QueryResult>,
    pub mismatches: usize,
}

// ------------------------------------------------------------ measurement

/// Where chdb keeps its table between runs, and the Python that has chdb.
fn chdb_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
        PathBuf::from,
    );
    base.join("analytics")
}

fn python(ctx: &Ctx) -> PathBuf {
    ctx.args
        .chdb_python
        .clone()
        .unwrap_or_else(|| chdb_dir().join("chdb-venv/bin/python"))
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("v2_chdb.py")
}

pub async fn run(ctx: &Ctx) -> Result<V2Results> {
    let dataset = ensure_dataset(ctx).await?;
    let url = ctx.env.database_url(&dataset.database);
    let first: NaiveDate = dataset.first_day.parse()?;
    let last: NaiveDate = dataset.last_day.parse()?;
    // The mid-sized site first: the faster half of the run.
    let sites = vec![site_name(dataset.sites / 2), site_name(0)];
    let reps = ctx.args.v2_repetitions;
    let min = ctx.args.v2_min_samples.min(reps);
    let budget = Duration::from_secs_f64(ctx.args.v2_budget);
    let specs = specs();

    // ClickHouse first, on its own: the same raw events, exported once.
    let ch_dir = chdb_dir().join(format!("chdb-{}", dataset.database));
    let marker = format!("{}|{}|{}", dataset.database, dataset.first_day, dataset.build_seconds);
    let py = python(ctx);
    let mut load_seconds = 0.0;
    let status = chdb_call(&py, &["status", "--db", &path_str(&ch_dir), "--marker", &marker])?;
    if status.get("ready").and_then(Value::as_bool) != Some(true) {
        let started = Instant::now();
        let csv = chdb_dir().join(format!("{}-events.csv", dataset.database));
        say(format!("v2: exporting the raw events to {}", csv.display()));
        export_csv(&url, &csv).await?;
        say("v2: loading them into chdb");
        let loaded = chdb_call(
            &py,
            &[
                "load",
                "--db",
                &path_str(&ch_dir),
                "--marker",
                &marker,
                "--csv",
                &path_str(&csv),
            ],
        );
        let _ = std::fs::remove_file(&csv);
        let loaded = loaded?;
        load_seconds = started.elapsed().as_secs_f64();
        say(format!("  chdb loaded {} rows in {load_seconds:.0} s", loaded["rows"]));
    } else {
        say(format!("v2: reusing chdb's table ({} rows)", status["rows"]));
    }
    let (range_from, range_to) = bounds(first, last);

    let topic = ctx.env.unique("bench_v2_events");
    services::create_topics(&ctx.env, &topic, 1).await?;
    let group = ctx.env.unique("bench_group");
    let mut vars = services::kafka_vars(&ctx.env, &url, &topic, &group);
    // The brute-force evaluator takes seconds to minutes at this size.
    vars.push(("HTTP_REQUEST_TIMEOUT_SECONDS", "3600".into()));
    let mut results = Vec::new();
    let mut clickhouse_version = String::new();
    let measured = async {
        // Idle while the others answer.
        let mut api = Service::start(&ctx.env, "analytics-api", &[], &vars)?;
        api.wait_ready().await?;
        let mut conn = Conn {
            addr: api.http_addr(),
            http: None,
        };
        let db = analytics_core::store::connect::connect(&url, 1).await?;
        let _ = sea_orm::ConnectionTrait::execute_unprepared(&db, "CHECKPOINT").await;
        drop(db);
        let mut pg = PgConnection::connect(&url).await?;
        // Site by site, each system in turn: a run cut short still has
        // whole sites.
        for site in &sites {
            let first_of_site = results.len();
            // ClickHouse, in-process in its own Python.
            let ch_queries: Vec<Value> = specs
                .iter()
                .enumerate()
                .map(|(i, s)| json!({ "id": format!("{site}/{i}"), "sql": clickhouse_sql(s, site, range_from, range_to) }))
                .collect();
            let qfile = chdb_dir().join("v2-chdb-queries.json");
            std::fs::write(&qfile, serde_json::to_vec_pretty(&ch_queries)?)?;
            say(format!("v2: {site}: ClickHouse (chdb), {} queries", ch_queries.len()));
            let ch = chdb_call(
                &py,
                &[
                    "run",
                    "--db",
                    &path_str(&ch_dir),
                    "--marker",
                    &marker,
                    "--queries",
                    &path_str(&qfile),
                    "--reps",
                    &reps.to_string(),
                    "--budget",
                    &ctx.args.v2_budget.to_string(),
                    "--min-samples",
                    &min.to_string(),
                    "--cold-counts-after",
                    &COLD_COUNTS_AFTER.as_secs_f64().to_string(),
                ],
            )?;
            clickhouse_version = ch["version"].as_str().unwrap_or_default().to_string();
            for (i, s) in specs.iter().enumerate() {
                let c = &ch["results"][format!("{site}/{i}")];
                results.push(QueryResult {
                    site: site.clone(),
                    kind: s.kind.clone(),
                    query: s.label(),
                    clickhouse: timing_from_json(c),
                    clickhouse_rows: c.get("rows").and_then(|v| serde_json::from_value(v.clone()).ok()),
                    ..QueryResult::default()
                });
            }
            say(format!("v2: {site}: seed SQL"));
            for (i, s) in specs.iter().enumerate() {
                let sql = postgres_sql(s);
                let seed = Seed {
                    pg: &mut pg,
                    sql: &sql,
                    site,
                    from: range_from,
                    to: range_to,
                    spec: s,
                };
                let (t, rows) = measure(reps, min, budget, seed).await;
                progress("seed SQL", site, s, &t);
                let r = &mut results[first_of_site + i];
                r.postgres = t;
                r.postgres_rows = rows;
            }
            say(format!("v2: {site}: ours (POST /api/v2/query)"));
            for (i, s) in specs.iter().enumerate() {
                let body = bytes::Bytes::from(serde_json::to_vec(&s.request(site, first, last))?);
                let ours = Ours {
                    conn: &mut conn,
                    body,
                    spec: s,
                };
                let (t, rows) = measure(reps, min, budget, ours).await;
                progress("ours", site, s, &t);
                let r = &mut results[first_of_site + i];
                r.ours = t;
                r.rows = rows.unwrap_or_default();
            }
            // What is measured so far, should the run be cut short.
            let _ = std::fs::write(
                ctx.args.out.join("v2-partial.json"),
                serde_json::to_vec_pretty(&results).unwrap_or_default(),
            );
        }
        let _ = pg.close().await;
        let _ = api.stop(Duration::from_secs(30)).await;
        anyhow::Ok(())
    }
    .await;
    services::delete_topics(&ctx.env, &topic).await;
    measured?;
    let _ = std::fs::remove_file(ctx.args.out.join("v2-partial.json"));

    let mut mismatches = 0;
    for r in &mut results {
        r.comparison = compare(r);
        if r.comparison != "equal" {
            mismatches += 1;
            say(format!("  MISMATCH {} {}: {}", r.site, r.query, r.comparison));
        }
        // Keep the others' rows only where they differ.
        if r.clickhouse_rows.as_ref() == Some(&r.rows) {
            r.clickhouse_rows = None;
        }
        if r.postgres_rows.as_ref() == Some(&r.rows) {
            r.postgres_rows = None;
        }
    }
    let mut site_events = Vec::new();
    {
        let mut pg = PgConnection::connect(&url).await?;
        for site in &sites {
            let n: i64 = sea_orm::sqlx::query_scalar("SELECT count(*) FROM events WHERE site_id = $1")
                .bind(site)
                .fetch_one(&mut pg)
                .await?;
            site_events.push((site.clone(), n));
        }
        let _ = pg.close().await;
    }
    say(format!(
        "  v2: {} queries × 3 systems, {mismatches} answers differ",
        results.len()
    ));
    Ok(V2Results {
        dataset,
        sites: site_events,
        repetitions: reps,
        min_samples: min,
        budget_seconds: ctx.args.v2_budget,
        clickhouse_load_seconds: load_seconds,
        clickhouse_version,
        queries: results,
        mismatches,
    })
}

fn progress(system: &str, site: &str, s: &Spec, t: &Timing) {
    say(format!(
        "  {system:<8} {site} {:<60} p50 {:>9.1} ms p99 {:>9.1} ms ({} samples){}",
        s.label(),
        t.p50_ms,
        t.p99_ms,
        t.samples,
        t.error.as_deref().map(|e| format!(" ERROR {e}")).unwrap_or_default()
    ));
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The range's UTC bounds: `[first 00:00, last + 1 00:00)`.
pub(crate) fn bounds(first: NaiveDate, last: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    (start(first), start(last + Days::days(1)))
}

fn compare(r: &QueryResult) -> String {
    let mut diffs = Vec::new();
    if r.ours.error.is_some() || r.rows.is_empty() {
        diffs.push("ours: no answer".to_string());
    }
    for (name, rows) in [("ClickHouse", &r.clickhouse_rows), ("seed SQL", &r.postgres_rows)] {
        match rows {
            None => diffs.push(format!("{name}: no answer")),
            Some(rows) if *rows != r.rows => {
                let first = rows
                    .iter()
                    .zip(&r.rows)
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| rows.len().min(r.rows.len()));
                diffs.push(format!(
                    "{name} differs from row {first} ({} rows against {}): {:?} vs ours {:?}",
                    rows.len(),
                    r.rows.len(),
                    rows.get(first),
                    r.rows.get(first)
                ));
            }
            Some(_) => {}
        }
    }
    if diffs.is_empty() {
        "equal".into()
    } else {
        diffs.join("; ")
    }
}

fn timing_from_json(v: &Value) -> Timing {
    Timing {
        samples: v["samples"].as_u64().unwrap_or(0),
        errors: v["errors"].as_u64().unwrap_or(0),
        p50_ms: v["p50_ms"].as_f64().unwrap_or(f64::NAN),
        p99_ms: v["p99_ms"].as_f64().unwrap_or(f64::NAN),
        error: v["error"].as_str().map(str::to_string),
    }
}

/// Runs one answer as a warm-up (a sample too when slower than
/// [`COLD_COUNTS_AFTER`]), then up to `reps` samples, stopping once
/// `budget` is spent with at least `min` samples.
async fn measure<A: Answer>(reps: usize, min: usize, budget: Duration, mut a: A) -> (Timing, Option<Vec<AnswerRow>>) {
    let Ok(mut hist) = new_histogram() else {
        return (Timing::default(), None);
    };
    let mut timing = Timing::default();
    let started = Instant::now();
    let t = Instant::now();
    let rows = match a.once().await {
        Ok(rows) => {
            if t.elapsed() > COLD_COUNTS_AFTER {
                record(&mut hist, t.elapsed());
            }
            Some(rows)
        }
        Err(e) => {
            timing.errors += 1;
            timing.error = Some(format!("{e:#}"));
            None
        }
    };
    if rows.is_some() {
        while (hist.len() as usize) < reps && ((hist.len() as usize) < min || started.elapsed() < budget) {
            let t = Instant::now();
            match a.once().await {
                Ok(_) => record(&mut hist, t.elapsed()),
                Err(e) => {
                    timing.errors += 1;
                    timing.error = Some(format!("{e:#}"));
                    if timing.errors > 3 {
                        break;
                    }
                }
            }
        }
    }
    let l = Latency::from_histogram(&hist);
    timing.samples = l.count;
    timing.p50_ms = l.p50_ms;
    timing.p99_ms = l.p99_ms;
    (timing, rows)
}

/// One system's answer to one query.
trait Answer {
    async fn once(&mut self) -> Result<Vec<AnswerRow>>;
}

struct Seed<'a> {
    pg: &'a mut PgConnection,
    sql: &'a str,
    site: &'a str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    spec: &'a Spec,
}

impl Answer for Seed<'_> {
    async fn once(&mut self) -> Result<Vec<AnswerRow>> {
        postgres_once(self.pg, self.sql, self.site, self.from, self.to, self.spec).await
    }
}

struct Ours<'a> {
    conn: &'a mut Conn,
    body: bytes::Bytes,
    spec: &'a Spec,
}

impl Answer for Ours<'_> {
    async fn once(&mut self) -> Result<Vec<AnswerRow>> {
        self.conn.query(self.body.clone(), self.spec).await
    }
}

async fn postgres_once(
    pg: &mut PgConnection,
    sql: &str,
    site: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    spec: &Spec,
) -> Result<Vec<AnswerRow>> {
    let query = sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(sql.to_string())).bind(site);
    let query = if spec.needs_visits() {
        query
            .bind(from - Days::days(1))
            .bind(to + Days::days(1))
            .bind(from)
            .bind(to)
    } else {
        query.bind(from).bind(to)
    };
    let rows = query.fetch_all(&mut *pg).await?;
    rows.iter()
        .map(|r| {
            let dimension: String = r.try_get(0)?;
            let metrics = (1..=spec.metrics.len())
                .map(|i| {
                    #[allow(clippy::cast_precision_loss)]
                    r.try_get::<i64, _>(i).map(|v| v as f64)
                })
                .collect::<Result<Vec<f64>, _>>()?;
            Ok(AnswerRow { dimension, metrics })
        })
        .collect()
}

/// The api's connection, opened again after an error (a long answer may
/// outlast a keep-alive).
struct Conn {
    addr: std::net::SocketAddr,
    http: Option<HttpConn>,
}

impl Conn {
    async fn query(&mut self, body: bytes::Bytes, spec: &Spec) -> Result<Vec<AnswerRow>> {
        // A connection left idle while the other systems answered may have
        // been closed by the api (keep-alive): one new connection then.
        let reused = self.http.is_some();
        let (status, bytes) = match self.post(body.clone()).await {
            Ok(r) => r,
            Err(_) if reused => self.post(body).await?,
            Err(e) => return Err(e),
        };
        if status != hyper::StatusCode::OK {
            bail!(
                "/api/v2/query answered {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            );
        }
        parse_ours(&bytes, spec)
    }
}

impl Conn {
    async fn post(&mut self, body: bytes::Bytes) -> Result<(hyper::StatusCode, bytes::Bytes)> {
        if self.http.is_none() {
            self.http = Some(HttpConn::connect(self.addr).await?);
        }
        let http = self.http.as_mut().ok_or_else(|| anyhow!("no connection"))?;
        let r = http.post("/api/v2/query", body).await;
        if r.is_err() {
            self.http = None;
        }
        r
    }
}

/// The rows of a `/api/v2/query` answer (a breakdown's top [`TOP`]).
pub fn parse_ours(body: &[u8], spec: &Spec) -> Result<Vec<AnswerRow>> {
    let v: Value = serde_json::from_slice(body)?;
    let results = v["results"]
        .as_array()
        .ok_or_else(|| anyhow!("no results in {}", String::from_utf8_lossy(body)))?;
    let mut rows: Vec<AnswerRow> = results
        .iter()
        .map(|r| {
            let dimension = match &r["dimensions"][0] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let metrics: Vec<f64> = r["metrics"]
                .as_array()
                .map(|m| m.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
                .unwrap_or_default();
            AnswerRow { dimension, metrics }
        })
        .collect();
    if !spec.is_series() {
        rows.truncate(TOP);
    }
    Ok(rows)
}

/// Runs `bench/v2_chdb.py` with `args`; its stdout is one JSON document.
fn chdb_call(python: &Path, args: &[&str]) -> Result<Value> {
    let out = std::process::Command::new(python)
        .arg(script())
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| {
            format!(
                "running {} (install chdb with bench/chdb.sh, or pass --chdb-python)",
                python.display()
            )
        })?;
    if !out.status.success() {
        bail!("v2_chdb.py {} failed ({})", args.first().unwrap_or(&""), out.status);
    }
    serde_json::from_slice(&out.stdout).context("reading v2_chdb.py's answer")
}

/// The raw events as CSV with a header, as ClickHouse reads them: the
/// visitor as the api names it (`u:<user_id>`, `c:<visitor_id>`, or empty).
async fn export_csv(url: &str, path: &Path) -> Result<()> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let mut pg = PgConnection::connect(url).await?;
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(path).await?);
    let mut stream = pg
        .copy_out_raw(
            "COPY (SELECT site_id, to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS timestamp, \
               event_id::text AS event_id, event_type, path, \
               CASE WHEN user_id <> '' THEN 'u:' || user_id WHEN visitor_id IS NOT NULL THEN 'c:' || visitor_id ELSE '' END AS visitor, \
               hostname, coalesce(referrer, '') AS referrer, source, channel, utm_source, utm_medium, utm_campaign, \
               utm_content, utm_term, browser, browser_version, os, os_version, device, country, \
               coalesce(props::text, '') AS props \
             FROM events) TO STDOUT (FORMAT csv, HEADER)",
        )
        .await?;
    while let Some(chunk) = stream.next().await {
        file.write_all(&chunk?).await?;
    }
    file.flush().await?;
    drop(stream);
    let _ = pg.close().await;
    Ok(())
}

// ----------------------------------------------------------------- report

/// The markdown table of a run: p50/p99 per query and system, ratios.
pub fn markdown(r: &V2Results) -> String {
    use std::fmt::Write;
    let ms = |t: &Timing, v: f64| {
        if t.samples == 0 || !v.is_finite() {
            "–".to_string()
        } else if v < 100.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.0}")
        }
    };
    let ratio = |a: f64, b: f64| {
        if a.is_finite() && b.is_finite() && a > 0.0 && b > 0.0 {
            format!("{:.1}×", a / b)
        } else {
            "–".into()
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| site | query | ours p50 / p99 ms (n) | ClickHouse p50 / p99 ms (n) | seed SQL p50 / p99 ms (n) | ours ÷ ClickHouse p99 | answers |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- | --- |");
    for q in &r.queries {
        let cell = |t: &Timing| {
            if t.error.is_some() && t.samples == 0 {
                "error".to_string()
            } else {
                format!("{} / {} ({})", ms(t, t.p50_ms), ms(t, t.p99_ms), t.samples)
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} `{}` | {} | {} | {} | {} | {} |",
            q.site,
            q.kind,
            // A `|` splits a table cell, even in code.
            q.query.replace('|', "\\|"),
            cell(&q.ours),
            cell(&q.clickhouse),
            cell(&q.postgres),
            ratio(q.ours.p99_ms, q.clickhouse.p99_ms),
            if q.comparison == "equal" { "equal" } else { "**differ**" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_covers_the_issue() {
        let s = specs();
        assert_eq!(s.len(), 30);
        assert!(s.iter().filter(|q| q.kind == "breakdown").count() == DIMENSIONS.len());
        assert!(s.iter().any(|q| q.dimension == "time:day" && !q.filters.is_empty()));
        // Session metrics never with an event dimension (refused by the API).
        assert!(s
            .iter()
            .filter(|q| q.dimension.starts_with("event:"))
            .all(|q| !q.session_metrics()));
        let two = s.iter().find(|q| q.kind == "2 filters").map(|q| q.filters.clone());
        assert_eq!(
            two.unwrap_or_default()
                .iter()
                .map(|f| f.dimension.as_str())
                .collect::<Vec<_>>(),
            ["event:page", "visit:source"]
        );
    }

    #[test]
    fn request_has_the_v2_shape() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default();
        let spec = Spec::new(
            "1 filter",
            "visit:country",
            vec![Filter::new("is", "visit:country", "DE")],
        );
        let q = spec.request("site-00", d("2026-11-07"), d("2026-12-06"));
        assert_eq!(
            q,
            json!({
                "site_id": "site-00",
                "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"],
                "date_range": ["2026-11-07", "2026-12-06"],
                "dimensions": ["visit:country"],
                "filters": [["is", "visit:country", ["DE"]]],
                "pagination": {"limit": 10},
            })
        );
        let series = Spec::new("series", "time:day", vec![]);
        assert!(series
            .request("s", d("2026-11-07"), d("2026-12-06"))
            .get("pagination")
            .is_none());
    }

    #[test]
    fn sql_builds_visits_only_when_needed() {
        let page = Spec::new("breakdown", "event:page", vec![]);
        assert!(!postgres_sql(&page).contains("lag("));
        let t = Utc::now();
        assert!(!clickhouse_sql(&page, "s", t, t).contains("lagInFrame"));
        let contains = Spec::new(
            "contains",
            "event:page",
            vec![Filter::new("contains", "event:page", "/blog")],
        );
        assert!(postgres_sql(&contains).contains("strpos(path, '/blog') > 0"));
        let src = Spec::new(
            "2 filters",
            "visit:source",
            vec![Filter::new("is", "visit:source", "O'Reilly")],
        );
        let pg = postgres_sql(&src);
        assert!(pg.contains("lag(") && pg.contains("v_source = 'O''Reilly'"), "{pg}");
        let entry = Spec::new("breakdown", "visit:entry_page", vec![]);
        assert!(clickhouse_sql(&entry, "s", t, t).contains("v_pageviews > 0"));
    }

    #[test]
    fn ours_parses_rows() {
        let spec = Spec::new("breakdown", "visit:source", vec![]);
        let body = br#"{"results":[{"dimensions":["Google"],"metrics":[3,4,5,50,12]},{"dimensions":[""],"metrics":[1,1,1,100.0,0]}],"meta":{},"query":{}}"#;
        let rows = parse_ours(body, &spec).unwrap_or_default();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].dimension, "Google");
        assert_eq!(rows[1].metrics, vec![1.0, 1.0, 1.0, 100.0, 0.0]);
    }
}
