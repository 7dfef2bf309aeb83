//! Scenario 1 (and 5): ingest throughput and latency at the maximum rate, for
//! the ceiling, the api in Kafka mode and the api in embedded mode, each with
//! batches of 1,000, batches of 100 and single events; peak RSS of every
//! process under that load.
//!
//! In Kafka mode the processor is stopped while the load runs, so the api is
//! measured alone, like the ceiling beside it (in a deployment they run in
//! separate pods; on these 2 cores a running processor and its PostgreSQL
//! writes would take the api's CPU). It is started afterwards and must store
//! every acknowledged event: its rate then is reported, and its capacity is
//! scenario 2's.

use super::{say, Ctx, KafkaStack};
use crate::loadgen::{self, LoadResult, LoadSpec, Mode};
use crate::services::{self, MemoryUse, RssSampler, Service};
use crate::workload::{body_pool, pool_size, Generator, Shape};
use anyhow::{anyhow, Result};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SHAPES: [Shape; 3] = [Shape::Batch(1000), Shape::Batch(100), Shape::Single];

/// How long the processor took to store what the api had acknowledged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Drain {
    /// Events acknowledged so far on this target, warm-ups included.
    pub acked_total: u64,
    /// `analytics_events_written_total` of the processor at the end of the wait.
    pub written_total: u64,
    /// Seconds from the end of the load until everything acknowledged was written.
    pub seconds_after_load: f64,
    /// Events written per second during that wait (the processor with no ingest load).
    pub rows_per_s: f64,
    pub complete: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IngestRun {
    pub shape: String,
    pub load: LoadResult,
    /// Per process (`api`, `processor`, `ceiling`).
    pub memory: BTreeMap<String, MemoryUse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<Drain>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IngestTarget {
    /// `ceiling`, `api (kafka)` or `api (embedded)`.
    pub target: String,
    pub runs: Vec<IngestRun>,
    /// Events acknowledged over every run (warm-ups included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked_total: Option<u64>,
    /// Rows in `events` at the end (after the processor drained, in Kafka mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_stored: Option<i64>,
    /// Kafka mode: the processor, started after the load, storing everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<Drain>,
    /// Peak RSS since start (VmHWM) of each process at the end.
    pub hwm_mb: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IngestResults {
    pub duration_s: f64,
    pub warmup_s: f64,
    pub batch_connections: usize,
    pub single_connections: usize,
    pub targets: Vec<IngestTarget>,
}

struct Pools {
    by_shape: Vec<(Shape, Arc<Vec<crate::workload::Body>>)>,
}

impl Pools {
    fn new(ctx: &Ctx) -> Result<Self> {
        let mut gen = Generator::new(ctx.args.mix());
        let mut by_shape = Vec::new();
        for shape in SHAPES {
            by_shape.push((shape, Arc::new(body_pool(&mut gen, shape, pool_size(shape))?)));
        }
        Ok(Self { by_shape })
    }
}

fn spec(ctx: &Ctx, shape: Shape, bodies: Arc<Vec<crate::workload::Body>>) -> LoadSpec {
    LoadSpec {
        path: shape.path().to_string(),
        bodies,
        connections: match shape {
            Shape::Single => ctx.args.single_connections,
            Shape::Batch(_) => ctx.args.batch_connections,
        },
        mode: Mode::Max,
        warmup: ctx.args.warmup(),
        duration: ctx.args.duration(),
        max_requests: None,
        ok_status: StatusCode::ACCEPTED,
    }
}

fn print_run(target: &str, r: &LoadResult) {
    say(format!(
        "  {target} {}: {:.0} req/s, {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms, errors {}",
        r.label, r.req_per_s, r.events_per_s, r.latency.p50_ms, r.latency.p99_ms, r.error_total
    ));
}

pub async fn run(ctx: &Ctx) -> Result<IngestResults> {
    let pools = Pools::new(ctx)?;
    let mut out = IngestResults {
        duration_s: ctx.args.duration().as_secs_f64(),
        warmup_s: ctx.args.warmup().as_secs_f64(),
        batch_connections: ctx.args.batch_connections,
        single_connections: ctx.args.single_connections,
        targets: Vec::new(),
    };
    for target in &ctx.args.targets {
        let result = match target.as_str() {
            "ceiling" => ceiling(ctx, &pools).await,
            "kafka" => kafka(ctx, &pools).await,
            "embedded" => embedded(ctx, &pools).await,
            other => Err(anyhow!("unknown ingest target `{other}` (ceiling, kafka, embedded)")),
        };
        match result {
            Ok(t) => out.targets.push(t),
            Err(e) => {
                say(format!("ingest {target} failed: {e:#}"));
                out.targets.push(IngestTarget {
                    target: target.clone(),
                    error: Some(format!("{e:#}")),
                    ..IngestTarget::default()
                });
            }
        }
    }
    Ok(out)
}

async fn load_runs(
    ctx: &Ctx,
    target: &str,
    pools: &Pools,
    addr: std::net::SocketAddr,
    procs: &[(&str, u32)],
    mut after_each: impl AsyncFnMut(u64) -> Result<Option<Drain>>,
) -> Result<(Vec<IngestRun>, u64)> {
    let mut runs = Vec::new();
    let mut acked = 0u64;
    for (shape, bodies) in &pools.by_shape {
        let sampler = RssSampler::start(procs);
        let load = loadgen::run(addr, &shape.label(), &spec(ctx, *shape, bodies.clone())).await?;
        let memory = sampler.finish().await;
        print_run(target, &load);
        acked += load.events_acked_total;
        let drain = after_each(acked).await?;
        runs.push(IngestRun {
            shape: shape.label(),
            load,
            memory,
            drain,
        });
    }
    Ok((runs, acked))
}

/// Peak RSS of each process since it started: VmHWM, or the largest VmRSS
/// sampled if that is higher (the kernel updates VmHWM lazily).
fn hwm(procs: &[(&str, u32)], runs: &[IngestRun]) -> BTreeMap<String, f64> {
    #[allow(clippy::cast_precision_loss)]
    procs
        .iter()
        .filter_map(|(n, pid)| {
            let sampled = runs
                .iter()
                .filter_map(|r| r.memory.get(*n).map(|m| m.peak_rss_mb))
                .fold(0.0, f64::max);
            services::read_rss_kb(*pid).map(|(_, h)| ((*n).to_string(), (h as f64 / 1024.0).max(sampled)))
        })
        .collect()
}

async fn ceiling(ctx: &Ctx, pools: &Pools) -> Result<IngestTarget> {
    say("ingest: ceiling (minimal axum server)");
    let mut svc = Service::start(&ctx.env, "analytics-bench", &["ceiling"], &[])?;
    let addr = svc.http_addr();
    svc.wait_ok(addr, "/readyz", Duration::from_secs(30)).await?;
    let procs = [("ceiling", svc.pid())];
    let (runs, acked) = load_runs(ctx, "ceiling", pools, addr, &procs, async |_| Ok(None)).await?;
    let hwm_mb = hwm(&procs, &runs);
    let _ = svc.stop(Duration::from_secs(10)).await;
    Ok(IngestTarget {
        target: "ceiling".into(),
        runs,
        acked_total: Some(acked),
        rows_stored: None,
        drain: None,
        hwm_mb,
        error: None,
    })
}

/// Waits until the processor has written `acked` events (or stops making
/// progress, or the timeout passes).
async fn drain(processor: std::net::SocketAddr, acked: u64, timeout: Duration) -> Drain {
    let start = Instant::now();
    let mut last = (0u64, Instant::now());
    let mut first: Option<u64> = None;
    loop {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let written = services::read_metric(processor, "analytics_events_written_total")
            .await
            .map_or(0, |v| v as u64);
        let first = *first.get_or_insert(written);
        if written > last.0 {
            last = (written, Instant::now());
        }
        let done = written >= acked;
        if done || start.elapsed() > timeout || last.1.elapsed() > Duration::from_secs(60) {
            let seconds = start.elapsed().as_secs_f64();
            #[allow(clippy::cast_precision_loss)]
            return Drain {
                acked_total: acked,
                written_total: written,
                seconds_after_load: seconds,
                rows_per_s: (written - first.min(written)) as f64 / seconds.max(1e-9),
                complete: done,
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn kafka(ctx: &Ctx, pools: &Pools) -> Result<IngestTarget> {
    say("ingest: api in Kafka mode (6 partitions; the processor starts after the load)");
    let mut stack = KafkaStack::start(ctx, 6, false).await?;
    let result = kafka_runs(ctx, pools, &mut stack).await;
    stack.teardown(ctx).await;
    result
}

async fn kafka_runs(ctx: &Ctx, pools: &Pools, stack: &mut KafkaStack) -> Result<IngestTarget> {
    let Some(api) = &stack.api else {
        return Err(anyhow!("the api is not running"));
    };
    let api_proc = ("api", api.pid());
    let (runs, acked) = load_runs(ctx, "api (kafka)", pools, api.http_addr(), &[api_proc], async |_| {
        Ok(None)
    })
    .await?;

    stack.start_processor(ctx).await?;
    let Some(processor) = &stack.processor else {
        return Err(anyhow!("the processor is not running"));
    };
    let procs = [api_proc, ("processor", processor.pid())];
    let d = drain(
        processor.metrics_addr(),
        acked,
        Duration::from_secs_f64(ctx.args.drain_timeout),
    )
    .await;
    say(format!(
        "  processor started after the load: {} of {} acknowledged events written in {:.1} s ({:.0} events/s)",
        d.written_total, d.acked_total, d.seconds_after_load, d.rows_per_s
    ));
    let hwm_mb = hwm(&procs, &runs);
    let rows = services::count_rows(&stack.db_url, "events").await?;
    if u64::try_from(rows).unwrap_or(0) != acked {
        say(format!("  MISMATCH: {acked} events acknowledged, {rows} rows stored"));
    }
    Ok(IngestTarget {
        target: "api (kafka)".into(),
        runs,
        acked_total: Some(acked),
        rows_stored: Some(rows),
        drain: Some(d),
        hwm_mb,
        error: None,
    })
}

async fn embedded(ctx: &Ctx, pools: &Pools) -> Result<IngestTarget> {
    say("ingest: api in embedded mode (SQLite)");
    let dir = ctx.env.log_dir.join(ctx.env.unique("embedded"));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("analytics.db").display());
    let result = async {
        let mut api = Service::start(&ctx.env, "analytics-api", &[], &[("DATABASE_URL", url.clone())])?;
        api.wait_ready().await?;
        let procs = [("api", api.pid())];
        let (runs, acked) = load_runs(ctx, "api (embedded)", pools, api.http_addr(), &procs, async |_| {
            Ok(None)
        })
        .await?;
        let hwm_mb = hwm(&procs, &runs);
        let _ = api.stop(Duration::from_secs(30)).await;
        let rows = services::count_rows(&url, "events").await?;
        if u64::try_from(rows).unwrap_or(0) != acked {
            say(format!("  MISMATCH: {acked} events acknowledged, {rows} rows stored"));
        }
        Ok(IngestTarget {
            target: "api (embedded)".into(),
            runs,
            acked_total: Some(acked),
            rows_stored: Some(rows),
            drain: None,
            hwm_mb,
            error: None,
        })
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}
