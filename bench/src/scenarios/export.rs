//! Scenario `export` (issue 24): `GET /api/export/events` streaming a whole
//! 30-day range of one site with 5,000,000 events, in NDJSON and in CSV,
//! while the api's resident memory is sampled.
//!
//! - The dataset (`analytics_bench_export_5m`, kept between runs like the
//!   query dataset, a marker table records how it was made): one site
//!   (`site-00`), visits of the query dataset's generator (every context
//!   field filled), over the last 30 full UTC days, written with the real
//!   writer (`analytics_core::store::Writer`), then the writer's path-row
//!   packing and weekly rollups and `VACUUM ANALYZE`.
//! - The release api (the Kafka-mode configuration of the other scenarios,
//!   no processor). Its VmRSS is read from `/proc/<pid>/status` every 20 ms
//!   by a thread of its own, from before each request is sent until its
//!   body has been read to the end.
//! - First a few ordinary small requests (`/stats` for one day); the last
//!   one's samples give the baseline. Then the export in NDJSON, then in
//!   CSV, each read by a client that discards the body and counts bytes and
//!   lines: the lines must be exactly the dataset's events (CSV: plus the
//!   header), else the scenario fails.
//! - The reference on the same rows in the same run: `psql` running
//!   `COPY (SELECT <the export's columns> FROM events WHERE <the export's
//!   range> ORDER BY timestamp) TO STDOUT`, as CSV and, beside NDJSON, as
//!   one `row_to_json` per row; its output is read and counted the same
//!   way. One untimed COPY first warms the caches for everybody.

use super::queries::{existing_marker, people};
use super::{say, Ctx};
use crate::loadgen::HttpConn;
use crate::services::{self, read_rss_kb, Service};
use crate::workload::{site_name, Generator, MAX_PAGES};
use anyhow::{anyhow, bail, Context as _, Result};
use bytes::Bytes;
use chrono::{Duration as Days, NaiveDate, Utc};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// Bump when the generation changes, so that an old dataset is rebuilt.
const GENERATOR_VERSION: u32 = 2;
const WRITE_BATCH: usize = 10_000;
/// The site of the dataset (index 0 of the mix: `site-00`).
const SITE: usize = 0;
/// How often the api's VmRSS is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// The bound on the api's resident memory while it exports.
pub const RSS_LIMIT_MB: f64 = 100.0;
/// The export's columns, in the CSV's order (`core/src/query/export.rs`).
const COLUMNS: &str = "event_id, site_id, event_type, path, user_id, timestamp, received_at, referrer, props, \
    visitor_id, hostname, source, channel, utm_source, utm_medium, utm_campaign, utm_content, utm_term, \
    browser, browser_version, os, os_version, device, country";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ExportDataset {
    pub database: String,
    pub site: String,
    pub events: u64,
    pub days: u32,
    pub first_day: String,
    pub last_day: String,
    /// Found from an earlier run (not rebuilt).
    pub reused: bool,
    pub build_seconds: f64,
    /// Events/s of the real writer while building (one writer).
    pub build_events_per_s: f64,
    /// `pg_total_relation_size` of `events` (all its partitions), MB.
    pub events_table_mb: f64,
}

/// VmRSS of the api over one request, in MB.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RssWindow {
    /// The sample taken just before the request was sent.
    pub baseline_mb: f64,
    pub peak_mb: f64,
    pub peak_minus_baseline_mb: f64,
    /// The last sample, after the body was read to its end.
    pub end_mb: f64,
    /// VmHWM (peak since the process started) after the request.
    pub hwm_mb: f64,
    pub samples: usize,
    /// Largest time between two samples, ms (the sampler's resolution).
    pub max_gap_ms: f64,
    /// One sample a second: (seconds from the request, MB).
    pub timeline: Vec<(f64, f64)>,
}

/// One export request, read to its end.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ExportRun {
    /// `ndjson` or `csv`.
    pub format: String,
    pub path: String,
    pub status: u16,
    pub content_type: String,
    /// Lines of the body, the CSV header excluded: the events.
    pub events: u64,
    pub bytes: u64,
    /// From the request sent to the last byte read.
    pub seconds: f64,
    /// Time to the response's headers, ms.
    pub first_byte_ms: f64,
    pub events_per_s: f64,
    pub mb_per_s: f64,
    pub rss: RssWindow,
    /// The api's CPU seconds (user + system) during the request.
    pub api_cpu_seconds: f64,
    /// The COPY beside it (CSV for CSV, `row_to_json` for NDJSON):
    /// our seconds ÷ its seconds.
    pub time_ratio_to_copy: f64,
}

/// `psql`'s COPY of the same rows, read and counted like the export.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CopyRun {
    /// `csv`, `json` (`row_to_json`, one object a line) or `warm-up`.
    pub format: String,
    pub statement: String,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub events_per_s: f64,
    pub mb_per_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ExportResults {
    pub dataset: ExportDataset,
    /// The ordinary small request (`/stats` for one day) and the api's RSS
    /// while it answered.
    pub small_request_path: String,
    pub small_request_ms: f64,
    pub small_request_rss: RssWindow,
    pub runs: Vec<ExportRun>,
    pub copy: Vec<CopyRun>,
    pub rss_limit_mb: f64,
    /// Every export's peak VmRSS under `rss_limit_mb`.
    pub under_limit: bool,
}

fn dataset_name(events: u64) -> String {
    if events.is_multiple_of(1_000_000) {
        format!("analytics_bench_export_{}m", events / 1_000_000)
    } else {
        format!("analytics_bench_export_{events}")
    }
}

pub async fn run(ctx: &Ctx) -> Result<ExportResults> {
    let dataset = ensure_dataset(ctx).await?;
    let url = ctx.env.database_url(&dataset.database);
    let db = analytics_core::store::connect::connect(&url, 1).await?;
    if let Err(e) = db.execute_unprepared("CHECKPOINT").await {
        say(format!("export: CHECKPOINT failed ({e})"));
    }
    drop(db);
    let topic = ctx.env.unique("bench_export_events");
    services::create_topics(&ctx.env, &topic, 1).await?;
    let group = ctx.env.unique("bench_group");
    let result = async {
        let mut api = Service::start(
            &ctx.env,
            "analytics-api",
            &[],
            &services::kafka_vars(&ctx.env, &url, &topic, &group),
        )?;
        api.wait_ready().await?;
        let r = measure(&url, &api, dataset).await;
        let _ = api.stop(Duration::from_secs(30)).await;
        r
    }
    .await;
    services::delete_topics(&ctx.env, &topic).await;
    result
}

// ------------------------------------------------------------------ dataset

#[derive(Debug, Serialize)]
struct Params {
    generator: u32,
    scenario: &'static str,
    site: String,
    events: u64,
    days: u32,
    seed: u64,
    migrations: Vec<String>,
}

async fn ensure_dataset(ctx: &Ctx) -> Result<ExportDataset> {
    let events = ctx.args.export_events();
    let days = ctx.args.query_days;
    let mix = ctx.args.mix();
    let name = dataset_name(events);
    let params = Params {
        generator: GENERATOR_VERSION,
        scenario: "export",
        site: site_name(SITE),
        events,
        days,
        seed: mix.seed,
        migrations: migration::known_versions(),
    };
    let params_json = serde_json::to_string(&params)?;
    let url = ctx.env.database_url(&name);
    if !ctx.args.rebuild && services::database_exists(&ctx.env, &name).await? {
        if let Some(info) = describe(&url, &name, &params_json).await {
            say(format!(
                "export: reusing {name} ({} events of {}, {} to {})",
                info.events, info.site, info.first_day, info.last_day
            ));
            return Ok(info);
        }
        say(format!(
            "export: {name} exists but was built differently (or not finished): rebuilding"
        ));
    }
    services::drop_database(&ctx.env, &name).await?;
    services::create_database(&ctx.env, &name).await?;
    services::migrate(&ctx.env, &url)?;
    let last_day = Utc::now().date_naive() - Days::days(1);
    let first_day = last_day - Days::days(i64::from(days) - 1);
    say(format!(
        "export: building {name}: {events} events of {}, {first_day} to {last_day}, with the real writer",
        site_name(SITE)
    ));
    let started = Instant::now();
    build(&url, events, days, last_day, mix).await?;
    let build_seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = events as f64 / build_seconds;
    say(format!(
        "  written in {build_seconds:.0} s ({rate:.0} events/s); packing path rows and weeks; VACUUM ANALYZE"
    ));
    let db = analytics_core::store::connect::connect(&url, 1).await?;
    while analytics_core::maintenance::compaction::compact(&db).await? > 0 {}
    analytics_core::maintenance::weeks::refresh(&db).await?;
    db.execute_unprepared("VACUUM ANALYZE").await?;
    db.execute_unprepared(
        "CREATE TABLE bench_dataset (params text NOT NULL, first_day date NOT NULL, last_day date NOT NULL, \
         build_seconds double precision NOT NULL, built_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO bench_dataset (params, first_day, last_day, build_seconds) VALUES ($1, $2, $3, $4)",
        [
            params_json.clone().into(),
            first_day.into(),
            last_day.into(),
            build_seconds.into(),
        ],
    ))
    .await?;
    db.close().await?;
    let mut info = describe(&url, &name, &params_json)
        .await
        .ok_or_else(|| anyhow!("the marker of {name} could not be read back"))?;
    info.reused = false;
    Ok(info)
}

async fn describe(url: &str, name: &str, params: &str) -> Option<ExportDataset> {
    let (first, last, build_seconds) = existing_marker(url, params).await?;
    let db = analytics_core::store::connect::connect(url, 1).await.ok()?;
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*), pg_total_relation_size('events') + coalesce((SELECT sum(pg_total_relation_size(inhrelid)) \
             FROM pg_inherits WHERE inhparent = 'events'::regclass), 0)::bigint FROM events WHERE site_id = $1",
            [site_name(SITE).into()],
        ))
        .await
        .ok()??;
    let count: i64 = row.try_get_by_index(0).ok()?;
    let size: i64 = row.try_get_by_index(1).ok()?;
    let _ = db.close().await;
    let p: serde_json::Value = serde_json::from_str(params).ok()?;
    let events = p.get("events")?.as_u64()?;
    if u64::try_from(count).ok()? != events {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    Some(ExportDataset {
        database: name.to_string(),
        site: site_name(SITE),
        events,
        days: u32::try_from(p.get("days")?.as_u64()?).ok()?,
        first_day: first.to_string(),
        last_day: last.to_string(),
        reused: true,
        build_seconds,
        build_events_per_s: events as f64 / build_seconds.max(1e-9),
        events_table_mb: size as f64 / 1024.0 / 1024.0,
    })
}

/// One writer; the visits are generated in a task of their own, a batch
/// ahead, so that the writer never waits for them.
async fn build(url: &str, events: u64, days: u32, last_day: NaiveDate, mix: crate::workload::MixConfig) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<analytics_core::event::Event>>(2);
    let generator = tokio::task::spawn_blocking(move || {
        let received_at = Utc::now();
        let end = (last_day + Days::days(1))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc();
        let people = people(events);
        let mut gen = Generator::with_seed(mix.seed.wrapping_add(2000), mix);
        let mut left = events;
        while left > 0 {
            let mut batch = Vec::with_capacity(WRITE_BATCH + MAX_PAGES * 2);
            // Whole visits, the last one cut to the count; the events of a
            // visit that runs past midnight after the last day are left
            // out, so that the export of the 30 days has every event.
            while batch.len() < WRITE_BATCH && (batch.len() as u64) < left {
                let start = gen.timestamp(last_day, days);
                let who = gen.person_index(people);
                batch.extend(
                    gen.visit(SITE, who, start, received_at)
                        .into_iter()
                        .filter(|e| e.timestamp < end),
                );
            }
            batch.truncate(usize::try_from(left).unwrap_or(usize::MAX));
            left -= batch.len() as u64;
            if tx.blocking_send(batch).is_err() {
                return;
            }
        }
    });
    let db = analytics_core::store::connect::connect(url, 2).await?;
    let writer = analytics_core::store::Writer::open(&db)?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut written = 0u64;
    while let Some(batch) = rx.recv().await {
        writer.write(&batch).await.context("writing a batch")?;
        written += batch.len() as u64;
        if last_report.elapsed() > Duration::from_secs(30) {
            last_report = Instant::now();
            #[allow(clippy::cast_precision_loss)]
            let rate = written as f64 / started.elapsed().as_secs_f64();
            #[allow(clippy::cast_precision_loss)]
            let eta = events.saturating_sub(written) as f64 / rate.max(1.0);
            say(format!(
                "  {written} of {events} written ({rate:.0} events/s, ~{eta:.0} s left)"
            ));
        }
    }
    generator.await?;
    db.close().await?;
    if written != events {
        bail!("wrote {written} events, not {events}");
    }
    Ok(())
}

// -------------------------------------------------------------- measurement

/// Reads a process's VmRSS every [`SAMPLE_EVERY`] on a thread of its own
/// (not a task: a busy runtime must not delay the samples).
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(Duration, u64)>>,
    pid: u32,
}

impl Sampler {
    /// Takes the first sample before returning: the baseline.
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut samples = Vec::with_capacity(1 << 14);
            if let Some((rss, _)) = read_rss_kb(pid) {
                samples.push((t0.elapsed(), rss));
            }
            let _ = ready_tx.send(());
            loop {
                std::thread::sleep(SAMPLE_EVERY);
                if let Some((rss, _)) = read_rss_kb(pid) {
                    samples.push((t0.elapsed(), rss));
                }
                if flag.load(Ordering::Relaxed) {
                    return samples;
                }
            }
        });
        let _ = ready_rx.recv();
        Self { stop, thread, pid }
    }

    fn finish(self) -> RssWindow {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.join().unwrap_or_default();
        #[allow(clippy::cast_precision_loss)]
        let mb = |kb: u64| kb as f64 / 1024.0;
        let baseline = samples.first().map_or(0, |s| s.1);
        let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
        let max_gap = samples
            .windows(2)
            .map(|w| w[1].0.saturating_sub(w[0].0))
            .max()
            .unwrap_or_default();
        let mut timeline = Vec::new();
        let mut next = Duration::ZERO;
        for (t, rss) in &samples {
            if *t >= next {
                timeline.push((
                    (t.as_secs_f64() * 100.0).round() / 100.0,
                    (mb(*rss) * 10.0).round() / 10.0,
                ));
                next = *t + Duration::from_secs(1);
            }
        }
        RssWindow {
            baseline_mb: mb(baseline),
            peak_mb: mb(peak),
            peak_minus_baseline_mb: mb(peak) - mb(baseline),
            end_mb: mb(samples.last().map_or(0, |s| s.1)),
            hwm_mb: mb(read_rss_kb(self.pid).map_or(0, |r| r.1)),
            samples: samples.len(),
            max_gap_ms: max_gap.as_secs_f64() * 1000.0,
            timeline,
        }
    }
}

/// GET `path` on a new connection and read the body to its end, counting
/// bytes and newlines; the body is dropped as it comes.
struct Streamed {
    status: u16,
    content_type: String,
    bytes: u64,
    newlines: u64,
    first_line: Vec<u8>,
    first_byte: Duration,
    total: Duration,
}

async fn stream_get(addr: SocketAddr, path: &str) -> Result<Streamed> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(hyper::Method::GET)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let started = Instant::now();
    let resp = sender.send_request(req).await?;
    let first_byte = started.elapsed();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut body = resp.into_body();
    let (mut bytes, mut newlines) = (0u64, 0u64);
    let mut first_line = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the body")?;
        if let Some(data) = frame.data_ref() {
            bytes += data.len() as u64;
            newlines += count_newlines(data);
            if first_line.last() != Some(&b'\n') && first_line.len() < 64 * 1024 {
                let end = data.iter().position(|&b| b == b'\n').map_or(data.len(), |i| i + 1);
                first_line.extend_from_slice(&data[..end]);
            }
        }
    }
    let total = started.elapsed();
    drop(sender);
    let _ = conn.await;
    Ok(Streamed {
        status,
        content_type,
        bytes,
        newlines,
        first_line,
        first_byte,
        total,
    })
}

fn count_newlines(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

#[allow(clippy::cast_precision_loss)]
fn per_s(n: u64, seconds: f64) -> f64 {
    n as f64 / seconds.max(1e-9)
}

#[allow(clippy::cast_precision_loss)]
fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0 / seconds.max(1e-9)
}

/// `psql -c <COPY …>`, its standard output counted as it comes.
async fn psql_copy(url: &str, format: &str, statement: &str) -> Result<CopyRun> {
    let started = Instant::now();
    let mut child = tokio::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", statement])
        .env("PGTZ", "UTC")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting psql")?;
    let mut out = child.stdout.take().ok_or_else(|| anyhow!("no stdout of psql"))?;
    let mut buf = vec![0u8; 256 * 1024];
    let (mut bytes, mut rows) = (0u64, 0u64);
    loop {
        let n = out.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        rows += count_newlines(&buf[..n]);
    }
    let output = child.wait_with_output().await?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!("psql failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(CopyRun {
        format: format.to_string(),
        statement: statement.to_string(),
        rows,
        bytes,
        seconds,
        events_per_s: per_s(rows, seconds),
        mb_per_s: mb_per_s(bytes, seconds),
    })
}

async fn measure(url: &str, api: &Service, dataset: ExportDataset) -> Result<ExportResults> {
    let addr = api.http_addr();
    let pid = api.pid();
    let first: NaiveDate = dataset.first_day.parse()?;
    let last: NaiveDate = dataset.last_day.parse()?;
    // The export's range in UTC (the site is not registered: its days are UTC).
    let (start, end) = (
        first.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
        (last + Days::days(1))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc(),
    );
    let rows = format!(
        "SELECT {COLUMNS} FROM events WHERE site_id = '{}' AND timestamp >= '{}' AND timestamp < '{}' ORDER BY timestamp",
        dataset.site,
        start.to_rfc3339(),
        end.to_rfc3339()
    );
    let copy_csv = format!("COPY ({rows}) TO STDOUT (FORMAT csv)");
    let copy_json = format!("COPY (SELECT row_to_json(r) FROM ({rows}) r) TO STDOUT");

    // A warm-up for everybody: the rows in PostgreSQL's and the kernel's caches.
    say("export: warm-up COPY (untimed for the ratios)");
    let mut copies = vec![psql_copy(url, "warm-up", &copy_csv).await?];
    say(format!("  {:.1} s", copies[0].seconds));

    // Ordinary small requests; the last one's RSS is the small-request baseline.
    let small = format!("/stats?site_id={}&date={last}", dataset.site);
    let mut conn = HttpConn::connect(addr).await?;
    for _ in 0..5 {
        let (status, body) = conn.get(&small).await?;
        if status != hyper::StatusCode::OK {
            bail!("{small} answered {status}: {}", String::from_utf8_lossy(&body));
        }
    }
    drop(conn);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sampler = Sampler::start(pid);
    let t = Instant::now();
    let s = stream_get(addr, &small).await?;
    let small_ms = t.elapsed().as_secs_f64() * 1000.0;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let small_rss = sampler.finish();
    if s.status != 200 {
        bail!("{small} answered {}", s.status);
    }
    say(format!(
        "  small request {small}: {small_ms:.1} ms, RSS {:.1} MB before, peak {:.1} MB",
        small_rss.baseline_mb, small_rss.peak_mb
    ));

    let mut runs = Vec::new();
    for format in ["ndjson", "csv"] {
        let path = format!(
            "/api/export/events?site_id={}&from={first}&to={last}&format={format}",
            dataset.site
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let cpu_before = services::cpu_seconds(pid);
        let sampler = Sampler::start(pid);
        let streamed = stream_get(addr, &path).await;
        // A little after the end: memory freed late shows too.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rss = sampler.finish();
        let api_cpu_seconds = services::cpu_seconds(pid) - cpu_before;
        let s = streamed.with_context(|| format!("GET {path}"))?;
        if s.status != 200 {
            bail!("{path} answered {}", s.status);
        }
        let header = u64::from(format == "csv");
        let events = s.newlines.saturating_sub(header);
        let seconds = s.total.as_secs_f64();
        let run = ExportRun {
            format: format.to_string(),
            path: path.clone(),
            status: s.status,
            content_type: s.content_type,
            events,
            bytes: s.bytes,
            seconds,
            first_byte_ms: s.first_byte.as_secs_f64() * 1000.0,
            events_per_s: per_s(events, seconds),
            mb_per_s: mb_per_s(s.bytes, seconds),
            rss,
            api_cpu_seconds,
            time_ratio_to_copy: 0.0,
        };
        say(format!(
            "  {format}: {} events, {} bytes in {:.1} s ({:.0} events/s, {:.1} MB/s); RSS {:.1} MB before, peak {:.1} MB (+{:.1}), {} samples, max gap {:.0} ms; api CPU {:.1} s",
            run.events,
            run.bytes,
            run.seconds,
            run.events_per_s,
            run.mb_per_s,
            run.rss.baseline_mb,
            run.rss.peak_mb,
            run.rss.peak_minus_baseline_mb,
            run.rss.samples,
            run.rss.max_gap_ms,
            run.api_cpu_seconds
        ));
        if format == "ndjson" {
            let line = String::from_utf8_lossy(&s.first_line);
            let v: serde_json::Value = serde_json::from_str(line.trim_end())
                .with_context(|| format!("the first NDJSON line is not JSON: {line:.200}"))?;
            if v.get("site_id").and_then(|s| s.as_str()) != Some(dataset.site.as_str()) {
                bail!("the first NDJSON line is not an event of {}: {line:.200}", dataset.site);
            }
        }
        runs.push(run);
    }

    say("export: the reference, psql COPY of the same rows");
    for (format, statement) in [("csv", &copy_csv), ("json", &copy_json)] {
        let c = psql_copy(url, format, statement).await?;
        say(format!(
            "  COPY {format}: {} rows, {} bytes in {:.1} s ({:.0} rows/s, {:.1} MB/s)",
            c.rows, c.bytes, c.seconds, c.events_per_s, c.mb_per_s
        ));
        copies.push(c);
    }
    for run in &mut runs {
        let beside = if run.format == "csv" { "csv" } else { "json" };
        if let Some(c) = copies.iter().find(|c| c.format == beside) {
            run.time_ratio_to_copy = run.seconds / c.seconds.max(1e-9);
        }
    }

    let mut wrong = Vec::new();
    for r in &runs {
        if r.events != dataset.events {
            wrong.push(format!("{}: {} events, not {}", r.format, r.events, dataset.events));
        }
    }
    for c in copies.iter().filter(|c| c.format != "warm-up") {
        if c.rows != dataset.events {
            wrong.push(format!("COPY {}: {} rows, not {}", c.format, c.rows, dataset.events));
        }
    }
    let under_limit = runs.iter().all(|r| r.rss.peak_mb < RSS_LIMIT_MB);
    say(format!(
        "  peak RSS {} {RSS_LIMIT_MB:.0} MB",
        if under_limit { "stayed under" } else { "went OVER" }
    ));
    let results = ExportResults {
        dataset,
        small_request_path: small,
        small_request_ms: small_ms,
        small_request_rss: small_rss,
        runs,
        copy: copies,
        rss_limit_mb: RSS_LIMIT_MB,
        under_limit,
    };
    if !wrong.is_empty() {
        // The figures are kept in the log; the scenario fails.
        say(format!("export results: {}", serde_json::to_string(&results)?));
        bail!("the export's lines are not the dataset's events: {}", wrong.join("; "));
    }
    Ok(results)
}

/// The scenario's table in results.md.
pub fn markdown(r: &ExportResults) -> String {
    use crate::report::{int, ratio};
    use std::fmt::Write;
    let mut s = String::new();
    let d = &r.dataset;
    let _ = writeln!(
        s,
        "\n## Export (`--only export`)\n\n`{}`: {} events of `{}`, {} to {} ({} days; `events` {:.0} MB{}). \
         The api's VmRSS every 20 ms from before each request to after its body; the small request is `{}` \
         ({:.1} ms). Peak RSS under {:.0} MB in every export: **{}**.\n",
        d.database,
        int(d.events as f64),
        d.site,
        d.first_day,
        d.last_day,
        d.days,
        d.events_table_mb,
        if d.reused {
            String::new()
        } else {
            format!(", built in {:.0} s", d.build_seconds)
        },
        r.small_request_path,
        r.small_request_ms,
        r.rss_limit_mb,
        if r.under_limit { "yes" } else { "no" }
    );
    let _ = writeln!(
        s,
        "| request | events (rows) | bytes | seconds | events/s | MB/s | RSS before | peak RSS | peak − before | time ÷ COPY's |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let w = &r.small_request_rss;
    let _ = writeln!(
        s,
        "| small request (`/stats`, one day) | – | – | {:.3} | – | – | {:.1} MB | {:.1} MB | {:.1} MB | – |",
        r.small_request_ms / 1000.0,
        w.baseline_mb,
        w.peak_mb,
        w.peak_minus_baseline_mb
    );
    for x in &r.runs {
        let beside = if x.format == "csv" { "csv" } else { "json" };
        let _ = writeln!(
            s,
            "| export {} | {} | {} | {:.1} | {} | {:.1} | {:.1} MB | {:.1} MB | {:.1} MB | {} (COPY {beside}) |",
            x.format,
            int(x.events as f64),
            int(x.bytes as f64),
            x.seconds,
            int(x.events_per_s),
            x.mb_per_s,
            x.rss.baseline_mb,
            x.rss.peak_mb,
            x.rss.peak_minus_baseline_mb,
            ratio(x.time_ratio_to_copy)
        );
    }
    for c in &r.copy {
        let what = if c.format == "warm-up" {
            "psql COPY csv, warm-up (first read)".to_string()
        } else if c.format == "json" {
            "psql COPY `row_to_json`".to_string()
        } else {
            format!("psql COPY {}", c.format)
        };
        let _ = writeln!(
            s,
            "| {what} | {} | {} | {:.1} | {} | {:.1} | – | – | – | – |",
            int(c.rows as f64),
            int(c.bytes as f64),
            c.seconds,
            int(c.events_per_s),
            c.mb_per_s
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names() {
        assert_eq!(dataset_name(5_000_000), "analytics_bench_export_5m");
        assert_eq!(dataset_name(20_000), "analytics_bench_export_20000");
    }

    #[test]
    fn counts_newlines() {
        assert_eq!(count_newlines(b"a\nb\n\nc"), 3);
        assert_eq!(count_newlines(b""), 0);
    }

    #[test]
    fn empty_results_render() {
        let md = markdown(&ExportResults::default());
        assert!(md.contains("## Export"));
    }
}
