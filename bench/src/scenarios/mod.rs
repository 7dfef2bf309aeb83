//! The scenarios of `analytics-bench all`, their options and what they share.

pub mod catchup;
pub mod cold;
pub mod engine;
pub mod enrichment;
pub mod export;
pub mod freshness;
pub mod ingest;
pub mod queries;
pub mod query_v2;
pub mod soak;

use crate::services::{self, Env, Service};
use crate::workload::MixConfig;
use anyhow::Result;
use clap::ValueEnum;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Scenario {
    /// Ingest throughput and latency (and memory): ceiling, Kafka mode, embedded mode.
    Ingest,
    /// Processor catch-up on a full topic, beside a raw binary COPY.
    Catchup,
    /// Ingest with enrichment (browser-like /api/event requests) beside
    /// ingest without it, both modes, and enrichment's cost in-process.
    Enrichment,
    /// Time from an event's 202 to its appearance in /stats, under steady load.
    Freshness,
    /// /stats at scale, beside the seed's SQL on raw events.
    Queries,
    /// Stats API v2 queries (`POST /api/v2/query`) on the query dataset,
    /// beside ClickHouse (chdb) and the seed-style SQL (only with
    /// `--only v2`: it takes tens of minutes).
    V2,
    /// The v2 scenario's queries evaluated in-process over the largest
    /// site's columns, without HTTP or the cache (only with `--only
    /// engine`): the engine's own time, in a minute or two.
    Engine,
    /// The dashboard's first load of the largest site on a fresh api (its
    /// panels' questions at once) beside one question alone (only with
    /// `--only cold`).
    Cold,
    /// `GET /api/export/events` of one site's 5M events (NDJSON and CSV)
    /// with the api's RSS sampled, beside psql's COPY of the same rows
    /// (only with `--only export`: the first run builds a 5M-event database).
    Export,
    /// RSS and file descriptors of the services over a long steady load
    /// (only with `--only soak`: it takes `--soak-minutes`).
    Soak,
}

impl Scenario {
    pub fn key(self) -> &'static str {
        match self {
            Scenario::Ingest => "ingest",
            Scenario::Catchup => "catchup",
            Scenario::Enrichment => "enrichment",
            Scenario::Freshness => "freshness",
            Scenario::Queries => "queries",
            Scenario::V2 => "v2",
            Scenario::Engine => "engine",
            Scenario::Cold => "cold",
            Scenario::Export => "export",
            Scenario::Soak => "soak",
        }
    }
}

/// Options of `analytics-bench all`. Sizes left unset take the full value,
/// or the scaled-down one with `--quick`.
#[derive(Debug, Clone, clap::Args)]
pub struct AllArgs {
    /// Where results.json, results.md and results.png go.
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,
    /// Run only these scenarios (comma-separated); the others keep their
    /// previous results in results.json. `memory` comes with `ingest`.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<Scenario>,
    /// Scaled-down sizes for a smoke run (5 s loads, 100k catch-up, 1M query events).
    #[arg(long)]
    pub quick: bool,
    /// Rebuild the query dataset even if it is already there.
    #[arg(long)]
    pub rebuild: bool,
    /// Seconds of each measured ingest run [15; quick 5].
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds of warm-up before each measured ingest run [3; quick 1].
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Connections for batch requests.
    #[arg(long, default_value_t = 16)]
    pub batch_connections: usize,
    /// Connections for single-event requests. Each waits for its broker ack
    /// (the producer lingers 5 ms), so at 128 no server could pass
    /// 128 / 5 ms = 25.6k req/s; from 256 on the api's own capacity shows
    /// (bench/README.md).
    #[arg(long, default_value_t = 256)]
    pub single_connections: usize,
    /// Ingest targets to run (comma-separated: ceiling, kafka, embedded).
    #[arg(long, value_delimiter = ',', default_value = "ceiling,kafka,embedded")]
    pub targets: Vec<String>,
    /// Longest wait for the processor to store what the api acknowledged, per ingest run.
    #[arg(long, default_value_t = 900.0)]
    pub drain_timeout: f64,
    /// Events waiting in the topic for the catch-up [1,000,000; quick 100,000].
    #[arg(long)]
    pub catchup_events: Option<u64>,
    /// Background load of the freshness scenario, events/s (batches of 100).
    #[arg(long, default_value_t = 5000.0)]
    pub freshness_rate: f64,
    /// Seconds of the freshness scenario [60; quick 15].
    #[arg(long)]
    pub freshness_seconds: Option<f64>,
    /// Events in the query dataset [10,000,000; quick 1,000,000].
    #[arg(long)]
    pub query_events: Option<u64>,
    /// Events of the export scenario's one site [5,000,000; quick 500,000].
    #[arg(long)]
    pub export_events: Option<u64>,
    /// Days in the query dataset (and the export's).
    #[arg(long, default_value_t = 30)]
    pub query_days: u32,
    /// /stats requests per query set [500; quick 100].
    #[arg(long)]
    pub query_requests: Option<usize>,
    /// Seed-style SQL answers per query set (each may take seconds) [20; quick 5].
    #[arg(long)]
    pub seed_requests: Option<usize>,
    /// Longest time spent on one query set (a slow set stops early and reports what it measured).
    #[arg(long, default_value_t = 180.0)]
    pub query_budget: f64,
    /// Minutes of the soak.
    #[arg(long, default_value_t = 10.0)]
    pub soak_minutes: f64,
    /// Steady load of the soak, events/s (batches of 100). The default is
    /// a rate the test broker (tansu's in-memory engine, whose CPU per
    /// message grows with the topic) keeps up with for the whole soak:
    /// past it, the broker delivers in ever longer runs and the processor's
    /// batches, and the memory they hold, grow with them (bench/README.md).
    #[arg(long, default_value_t = 2000.0)]
    pub soak_rate: f64,
    /// The soak's processor `BATCH_MAX_EVENTS` (its default when absent):
    /// a small cap makes the batches reach it early, so that memory held
    /// by a batch stops growing with them.
    #[arg(long)]
    pub soak_batch_max_events: Option<usize>,
    /// Answers per (query, system) of the v2 scenario, at most.
    #[arg(long, default_value_t = 20)]
    pub v2_repetitions: usize,
    /// Seconds per (query, system) of the v2 scenario: past them, no new
    /// repetition once 3 answers are timed.
    #[arg(long, default_value_t = 15.0)]
    pub v2_budget: f64,
    /// Timed answers per (query, system) of the v2 scenario, at least
    /// (whatever the budget).
    #[arg(long, default_value_t = 3)]
    pub v2_min_samples: usize,
    /// Timed answers per query of the engine scenario.
    #[arg(long, default_value_t = 200)]
    pub engine_repetitions: usize,
    /// Only the engine scenario's queries whose label contains this.
    #[arg(long)]
    pub engine_only: Option<String>,
    /// Rounds of the cold scenario (each starts the api twice).
    #[arg(long, default_value_t = 3)]
    pub cold_rounds: usize,
    /// A Python with chdb (bench/chdb.sh installs one) [~/.cache/analytics/chdb-venv/bin/python].
    #[arg(long, env = "BENCH_CHDB_PYTHON")]
    pub chdb_python: Option<PathBuf>,
    /// Concurrent writers while building the query dataset (disjoint sites).
    #[arg(long, default_value_t = 2)]
    pub load_writers: usize,
    /// Administrative PostgreSQL URL, used to create and drop databases.
    #[arg(
        long,
        env = "BENCH_DATABASE_ADMIN_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub admin_url: String,
    /// Kafka-protocol brokers.
    #[arg(long, env = "BENCH_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Directory of the release binaries (default: this binary's).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl AllArgs {
    pub fn selected(&self, s: Scenario) -> bool {
        (self.only.is_empty()
            && !matches!(
                s,
                Scenario::Soak | Scenario::V2 | Scenario::Engine | Scenario::Cold | Scenario::Export
            ))
            || self.only.contains(&s)
    }

    fn pick<T>(&self, given: Option<T>, full: T, quick: T) -> T {
        given.unwrap_or(if self.quick { quick } else { full })
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.pick(self.duration, 15.0, 5.0))
    }

    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.pick(self.warmup, 3.0, 1.0))
    }

    pub fn catchup_events(&self) -> u64 {
        self.pick(self.catchup_events, 1_000_000, 100_000)
    }

    pub fn freshness_duration(&self) -> Duration {
        Duration::from_secs_f64(self.pick(self.freshness_seconds, 60.0, 15.0))
    }

    pub fn query_events(&self) -> u64 {
        self.pick(self.query_events, 10_000_000, 1_000_000)
    }

    pub fn export_events(&self) -> u64 {
        self.pick(self.export_events, 5_000_000, 500_000)
    }

    pub fn query_requests(&self) -> usize {
        self.pick(self.query_requests, 500, 100)
    }

    pub fn seed_requests(&self) -> usize {
        self.pick(self.seed_requests, 20, 5)
    }

    pub fn mix(&self) -> MixConfig {
        MixConfig {
            seed: self.seed,
            ..MixConfig::default()
        }
    }
}

/// What every scenario gets.
pub struct Ctx {
    pub args: AllArgs,
    pub env: Env,
}

/// api + processor in Kafka mode on a fresh database and topic.
pub struct KafkaStack {
    pub db_name: String,
    pub db_url: String,
    pub topic: String,
    pub api: Option<Service>,
    pub processor: Option<Service>,
    vars: Vec<(&'static str, String)>,
}

impl KafkaStack {
    /// Creates the database (migrated with the real `analytics-migrate`) and
    /// the topic; starts the api, and the processor when `with_processor`.
    pub async fn start(ctx: &Ctx, partitions: i32, with_processor: bool) -> Result<Self> {
        let env = &ctx.env;
        let db_name = env.unique("bench");
        let db_url = services::create_database(env, &db_name).await?;
        let topic = env.unique("bench_events");
        let group = env.unique("bench_group");
        let mut stack = Self {
            vars: services::kafka_vars(env, &db_url, &topic, &group),
            db_name,
            db_url,
            topic,
            api: None,
            processor: None,
        };
        services::migrate(env, &stack.db_url)?;
        services::create_topics(env, &stack.topic, partitions).await?;
        let mut api = Service::start(env, "analytics-api", &[], &stack.vars)?;
        api.wait_ready().await?;
        stack.api = Some(api);
        if with_processor {
            stack.start_processor(ctx).await?;
        }
        Ok(stack)
    }

    pub async fn start_processor(&mut self, ctx: &Ctx) -> Result<()> {
        self.start_processor_with(ctx, &[]).await
    }

    /// The processor with `extra` variables besides the stack's.
    pub async fn start_processor_with(&mut self, ctx: &Ctx, extra: &[(&'static str, String)]) -> Result<()> {
        let vars: Vec<(&str, String)> = self.vars.iter().chain(extra).cloned().collect();
        let mut p = Service::start(&ctx.env, "analytics-processor", &[], &vars)?;
        p.wait_ready().await?;
        self.processor = Some(p);
        Ok(())
    }

    /// Stops the services, drops the database and the topics.
    pub async fn teardown(mut self, ctx: &Ctx) {
        for s in [self.api.take(), self.processor.take()].into_iter().flatten() {
            let name = s.name.clone();
            if let Err(e) = s.stop(Duration::from_secs(30)).await {
                eprintln!("warning: {name}: {e}");
            }
        }
        if let Err(e) = services::drop_database(&ctx.env, &self.db_name).await {
            eprintln!("warning: dropping {}: {e}", self.db_name);
        }
        services::delete_topics(&ctx.env, &self.topic).await;
    }
}

/// Prints a progress line on stderr (the results go to files).
pub fn say(msg: impl AsRef<str>) {
    eprintln!("[{}] {}", chrono::Utc::now().format("%H:%M:%S"), msg.as_ref());
}
