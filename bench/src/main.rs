//! `analytics-bench`: the benchmark runner (`all`), the load generator on its
//! own (`loadgen`), the ceiling server (`ceiling`) and the report renderer
//! (`report`). See bench/README.md.

use analytics_bench::loadgen::{self, LoadSpec, Mode};
use analytics_bench::report::{Entry, Machine, Results};
use analytics_bench::scenarios::{self, say, AllArgs, Ctx, Scenario};
use analytics_bench::services::{self, Env};
use analytics_bench::workload::{body_pool, pool_size, Generator, MixConfig, Shape};
use analytics_bench::{ceiling, plot};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use sea_orm::ConnectionTrait;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "analytics-bench", version, about = "Load generator and benchmark runner")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the scenarios against the release binaries and writes results.{json,md,png}.
    All(Box<AllArgs>),
    /// Sends the realistic event mix to any URL and prints what it measured (JSON).
    Loadgen(LoadgenArgs),
    /// The ceiling: a minimal axum server that parses the events and answers 202.
    Ceiling {
        #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8088")]
        addr: SocketAddr,
    },
    /// The batch writer alone (no HTTP, no broker): events/s for a transaction size.
    Writer(analytics_bench::writer_alone::WriterArgs),
    /// Renders results.md and the plot again from results.json.
    Report {
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct LoadgenArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8080
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Events per request: 0 sends single events to /events, N > 0 batches to /events/batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Open loop at this many requests/s (latency from the intended send time); without it, closed loop at the maximum rate.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up, not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Stop after this many requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Sites in the mix.
    #[arg(long, default_value_t = 20)]
    sites: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::All(args) => all(*args).await,
            Command::Loadgen(args) => loadgen_cmd(args).await,
            Command::Ceiling { addr } => ceiling::serve(addr).await,
            Command::Writer(args) => writer_cmd(&args).await,
            Command::Report { out } => report(&out),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn resolve(url: &str) -> Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// URLs are supported (got {url})"))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let mut addrs = tokio::net::lookup_host(&hostport).await?;
    addrs.next().ok_or_else(|| anyhow!("{hostport} does not resolve"))
}

async fn loadgen_cmd(a: LoadgenArgs) -> Result<()> {
    let addr = resolve(&a.url).await?;
    let shape = if a.batch == 0 {
        Shape::Single
    } else {
        Shape::Batch(a.batch)
    };
    let mut gen = Generator::new(MixConfig {
        sites: a.sites,
        seed: a.seed,
        ..MixConfig::default()
    });
    let bodies = Arc::new(body_pool(&mut gen, shape, pool_size(shape))?);
    let spec = LoadSpec {
        path: shape.path().to_string(),
        bodies,
        connections: a.connections,
        mode: a.rate.map_or(Mode::Max, Mode::Rate),
        warmup: Duration::from_secs_f64(a.warmup),
        duration: Duration::from_secs_f64(a.duration),
        max_requests: a.requests,
        ok_status: hyper::StatusCode::ACCEPTED,
    };
    let r = loadgen::run(addr, &shape.label(), &spec).await?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    eprintln!(
        "{}: {:.0} req/s, {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, errors {}",
        r.label, r.req_per_s, r.events_per_s, r.latency.p50_ms, r.latency.p99_ms, r.latency.p999_ms, r.error_total
    );
    Ok(())
}

async fn writer_cmd(a: &analytics_bench::writer_alone::WriterArgs) -> Result<()> {
    let r = analytics_bench::writer_alone::run(a).await?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    eprintln!(
        "writer: {} events in transactions of {}: {:.0} events/s ({:.2} µs an event), transaction p50 {:.2} ms, p99 {:.2} ms",
        r.events, r.transaction, r.events_per_s, r.us_per_event, r.transaction_p50_ms, r.transaction_p99_ms
    );
    Ok(())
}

fn report(out: &std::path::Path) -> Result<()> {
    let path = out.join("results.json");
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    let results = Results::load(&path);
    results.save(out)?;
    let img = plot::plot(&results, out)?;
    eprintln!("wrote {} and {}", out.join("results.md").display(), img.display());
    Ok(())
}

async fn postgres_version(env: &Env) -> String {
    let Ok(db) = services::admin(env).await else {
        return "PostgreSQL (unreachable)".into();
    };
    let v = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SHOW server_version",
        ))
        .await
        .ok()
        .flatten()
        .and_then(|r| r.try_get_by_index::<String>(0).ok())
        .unwrap_or_default();
    let _ = db.close().await;
    format!("PostgreSQL {}", v.split_whitespace().next().unwrap_or(""))
}

async fn all(args: AllArgs) -> Result<()> {
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => services::default_bin_dir()?,
    };
    for b in ["analytics-api", "analytics-processor", "analytics-migrate"] {
        if !bin_dir.join(b).exists() {
            bail!(
                "{} is missing: run bench/run.sh, or `cargo build --release -p api -p processor -p migration -p analytics-bench`",
                bin_dir.join(b).display()
            );
        }
    }
    let log_dir = bin_dir
        .parent()
        .map_or_else(|| bin_dir.join("bench-logs"), |p| p.join("bench-logs"));
    let env = Env {
        bin_dir,
        log_dir: log_dir.clone(),
        admin_url: args.admin_url.clone(),
        brokers: args.brokers.clone(),
        run_id: format!("r{}", chrono::Utc::now().format("%m%d%H%M%S")),
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let json_path = args.out.join("results.json");
    let mut results = Results::load(&json_path);
    results.machine = Machine::collect(postgres_version(&env).await);
    say(format!(
        "analytics-bench: {} cores, {}; logs in {}{}",
        results.machine.nproc,
        results.machine.postgres,
        log_dir.display(),
        if args.quick { "; QUICK (scaled-down sizes)" } else { "" }
    ));
    let ctx = Ctx { args, env };
    let mut failed = Vec::new();
    for s in [
        Scenario::Ingest,
        Scenario::Catchup,
        Scenario::Enrichment,
        Scenario::Freshness,
        Scenario::Queries,
        Scenario::V2,
        Scenario::Engine,
        Scenario::Cold,
        Scenario::Export,
        Scenario::Soak,
    ] {
        if !ctx.args.selected(s) {
            continue;
        }
        say(format!("== {}", s.key()));
        let outcome: Result<serde_json::Value> = match s {
            Scenario::Ingest => scenarios::ingest::run(&ctx).await.and_then(to_json),
            Scenario::Catchup => scenarios::catchup::run(&ctx).await.and_then(to_json),
            Scenario::Enrichment => scenarios::enrichment::run(&ctx).await.and_then(to_json),
            Scenario::Freshness => scenarios::freshness::run(&ctx).await.and_then(to_json),
            Scenario::Queries => scenarios::queries::run(&ctx).await.and_then(to_json),
            Scenario::V2 => scenarios::query_v2::run(&ctx).await.and_then(to_json),
            Scenario::Engine => scenarios::engine::run(&ctx).await.and_then(to_json),
            Scenario::Cold => scenarios::cold::run(&ctx).await.and_then(to_json),
            Scenario::Export => scenarios::export::run(&ctx).await.and_then(to_json),
            Scenario::Soak => match scenarios::soak::run(&ctx).await {
                Ok(r) => {
                    // A plot that fails must not lose ten minutes of samples.
                    match scenarios::soak::plot(&r, &ctx.args.out) {
                        Ok(img) => say(format!("wrote {}", img.display())),
                        Err(e) => say(format!("soak.png not written: {e:#}")),
                    }
                    to_json(r)
                }
                Err(e) => Err(e),
            },
        };
        let mut entry = Entry {
            run_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            quick: ctx.args.quick,
            git_commit: results.machine.git_commit.clone(),
            ..Entry::default()
        };
        match outcome {
            Ok(v) => entry.result = v,
            Err(e) => {
                say(format!("{} failed: {e:#}", s.key()));
                entry.error = Some(format!("{e:#}"));
                failed.push(s.key());
            }
        }
        results.scenarios.insert(s.key().to_string(), entry);
        results.save(&ctx.args.out)?;
    }
    let img = plot::plot(&results, &ctx.args.out)?;
    say(format!(
        "wrote {}, {} and {}",
        json_path.display(),
        ctx.args.out.join("results.md").display(),
        img.display()
    ));
    for t in analytics_bench::report::targets(&results) {
        say(format!(
            "  {} {}: {} (beside: {}, ratio {})",
            if t.met { "MET " } else { "MISS" },
            t.target,
            t.measured,
            t.beside,
            t.ratio
        ));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("scenarios failed: {}", failed.join(", ")))
    }
}

fn to_json<T: serde::Serialize>(v: T) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(v)?)
}
