//! Enrichment's cost. In each mode (embedded; Kafka with the api alone, as
//! in the ingest scenario) three closed-loop loads of single events:
//!
//! - `unenriched /events`: the api with `ENRICH=false`, the ingest
//!   scenario's bodies: the reference;
//! - `enriched /events`: the same requests with enrichment on (a server's
//!   own User-Agent, no URL: the cheapest enrichment);
//! - `enriched /api/event`: browser-like requests (`browsers`): thousands of
//!   User-Agents, 50,000 visitors' addresses through the trusted-proxy
//!   header, referrers, campaign URLs, a country database.
//!
//! The ratio is the browser-like load's events/s over the reference's. The
//! api's CPU per event is read from /proc for each load, and enrichment
//! alone is timed in-process on the same browser-like requests, once with
//! a cold agent cache and once warm.

use super::{say, Ctx};
use crate::browsers::{browser_pool, DISTINCT_AGENTS};
use crate::loadgen::{self, LoadResult, LoadSpec, Mode};
use crate::services::{self, Service};
use crate::workload::{body_pool, pool_size, Body, Generator, Shape};
use analytics_core::event::{plausible, EventNames, Policy};
use analytics_enrich::{BotRule, Client, Enricher, Geo};
use anyhow::{anyhow, Context, Result};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sites the browser-like requests go to.
const SITES: usize = 20;
/// Browser-like requests in the pool (reused round-robin).
const BROWSER_POOL: usize = 50_000;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EnrichRun {
    pub label: String,
    pub load: LoadResult,
    /// The api's user + system CPU over the load, per acknowledged event.
    pub api_cpu_us_per_event: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EnrichTarget {
    pub target: String,
    pub runs: Vec<EnrichRun>,
    /// `enriched /api/event` events/s over `unenriched /events`.
    pub ratio: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Enrichment alone, in this process, on the browser-like requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct InProcess {
    pub events: usize,
    pub distinct_agents: usize,
    /// A fresh enricher: every agent parsed once, then from the cache.
    pub cold_us_per_event: f64,
    /// The same events again: every agent from the cache.
    pub warm_us_per_event: f64,
    pub country_database: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EnrichmentResults {
    pub duration_s: f64,
    pub connections: usize,
    pub in_process: InProcess,
    pub targets: Vec<EnrichTarget>,
}

/// The country database: `GEOIP_DATABASE`, else where
/// `scripts/prerequisites.sh` puts the test one.
fn geoip_database() -> Option<PathBuf> {
    std::env::var_os("GEOIP_DATABASE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/analytics/geoip/iptoasn-country.mmdb"))
        })
        .filter(|p| p.exists())
}

pub async fn run(ctx: &Ctx) -> Result<EnrichmentResults> {
    let geoip = geoip_database();
    if geoip.is_none() {
        say("enrichment: no country database (GEOIP_DATABASE): countries are not looked up");
    }
    let browser = Arc::new(browser_pool(ctx.args.seed, BROWSER_POOL, SITES)?);
    let mut gen = Generator::new(ctx.args.mix());
    let server = Arc::new(body_pool(&mut gen, Shape::Single, pool_size(Shape::Single))?);
    let in_process = in_process(&browser, geoip.as_deref())?;
    say(format!(
        "  enrichment in-process: {:.2} µs/event cold, {:.2} µs/event warm ({} events, {} agents)",
        in_process.cold_us_per_event, in_process.warm_us_per_event, in_process.events, in_process.distinct_agents
    ));
    let mut out = EnrichmentResults {
        duration_s: ctx.args.duration().as_secs_f64(),
        connections: ctx.args.single_connections,
        in_process,
        targets: Vec::new(),
    };
    for mode in ["embedded", "kafka"] {
        let target = match target(ctx, mode, &server, &browser, geoip.as_deref()).await {
            Ok(t) => t,
            Err(e) => {
                say(format!("enrichment {mode} failed: {e:#}"));
                EnrichTarget {
                    target: format!("api ({mode})"),
                    error: Some(format!("{e:#}")),
                    ..EnrichTarget::default()
                }
            }
        };
        out.targets.push(target);
    }
    Ok(out)
}

/// Enrichment alone: parse each browser-like body as the api does, then
/// time `Enricher::enrich` over all of them, twice.
fn in_process(bodies: &[Body], geoip: Option<&std::path::Path>) -> Result<InProcess> {
    let policy = Policy {
        names: EventNames::Free,
        ..Policy::default()
    };
    let now = chrono::Utc::now();
    let mut inputs = Vec::with_capacity(bodies.len());
    for b in bodies {
        let header = |name: &str| {
            b.headers
                .iter()
                .find(|(k, _)| k.as_str() == name)
                .and_then(|(_, v)| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let mapped = plausible::parse(&b.bytes).map_err(|e| anyhow!("{}: {}", e.field, e.message))?;
        let addr: IpAddr = header("x-forwarded-for").parse()?;
        for incoming in mapped.events {
            let (event, hints) = incoming
                .validate_parts(now, policy)
                .map_err(|e| anyhow!("invalid bench event: {e:?}"))?;
            inputs.push((event, hints, header("user-agent"), addr));
        }
    }
    let geo = Geo::open(geoip, false)?;
    let enricher = Enricher::new(geo).context("the User-Agent patterns")?;
    let salt = [7u8; 16];
    let pass = || {
        let started = Instant::now();
        for (event, hints, agent, addr) in &inputs {
            let mut e = event.clone();
            // One event a request, as a tracker sends them: the request's
            // part is prepared for each.
            let prepared = enricher.prepare(Client {
                user_agent: agent,
                addr: *addr,
                cdn_country: None,
                salt: &salt,
            });
            let _ = std::hint::black_box(enricher.enrich(&mut e, hints, &prepared, false, BotRule::RequestAgent));
        }
        started.elapsed().as_secs_f64() * 1e6 / inputs.len().max(1) as f64
    };
    // The clone of each event is timed too; measured alone it is a small
    // part of a warm pass.
    let cold = pass();
    let warm = pass();
    Ok(InProcess {
        events: inputs.len(),
        distinct_agents: DISTINCT_AGENTS,
        cold_us_per_event: cold,
        warm_us_per_event: warm,
        country_database: geoip.is_some(),
    })
}

/// The api in `mode` with `vars` besides the mode's own, started, ready.
async fn start_api(ctx: &Ctx, mode: &str, vars: &[(&str, String)], topic: Option<&str>, db: &str) -> Result<Service> {
    let mut all: Vec<(&str, String)> = vars.to_vec();
    if let Some(topic) = topic {
        all.extend(services::kafka_vars(
            &ctx.env,
            db,
            topic,
            &ctx.env.unique("enrich_group"),
        ));
    } else {
        all.push(("DATABASE_URL", db.to_string()));
    }
    let mut api = Service::start(&ctx.env, "analytics-api", &[], &all)?;
    api.wait_ready().await.with_context(|| format!("the api ({mode})"))?;
    Ok(api)
}

async fn load(ctx: &Ctx, api: &Service, label: &str, path: &str, bodies: &Arc<Vec<Body>>) -> Result<EnrichRun> {
    let spec = LoadSpec {
        path: path.to_string(),
        bodies: bodies.clone(),
        connections: ctx.args.single_connections,
        mode: Mode::Max,
        warmup: ctx.args.warmup(),
        duration: ctx.args.duration(),
        max_requests: None,
        ok_status: StatusCode::ACCEPTED,
    };
    let cpu_before = services::cpu_seconds(api.pid());
    let load = loadgen::run(api.http_addr(), label, &spec).await?;
    let cpu = services::cpu_seconds(api.pid()) - cpu_before;
    #[allow(clippy::cast_precision_loss)]
    let api_cpu_us_per_event = cpu * 1e6 / (load.events_acked_total.max(1) as f64);
    say(format!(
        "  {label}: {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms, errors {}, api CPU {:.1} µs/event",
        load.events_per_s, load.latency.p50_ms, load.latency.p99_ms, load.error_total, api_cpu_us_per_event
    ));
    Ok(EnrichRun {
        label: label.to_string(),
        load,
        api_cpu_us_per_event,
    })
}

async fn target(
    ctx: &Ctx,
    mode: &str,
    server: &Arc<Vec<Body>>,
    browser: &Arc<Vec<Body>>,
    geoip: Option<&std::path::Path>,
) -> Result<EnrichTarget> {
    say(format!("enrichment: api ({mode})"));
    let dir = ctx.env.log_dir.join(ctx.env.unique("enrich"));
    std::fs::create_dir_all(&dir)?;
    let (db, db_name, topic) = if mode == "kafka" {
        let name = ctx.env.unique("bench_enrich");
        let url = services::create_database(&ctx.env, &name).await?;
        services::migrate(&ctx.env, &url)?;
        let topic = ctx.env.unique("bench_enrich_events");
        services::create_topics(&ctx.env, &topic, 6).await?;
        (url, Some(name), Some(topic))
    } else {
        (
            format!("sqlite://{}?mode=rwc", dir.join("analytics.db").display()),
            None,
            None,
        )
    };
    let result = async {
        let mut runs = Vec::new();
        let api = start_api(ctx, mode, &[("ENRICH", "false".into())], topic.as_deref(), &db).await?;
        runs.push(load(ctx, &api, "unenriched /events", "/events", server).await?);
        api.stop(Duration::from_secs(30)).await?;
        let mut vars = vec![("TRUSTED_PROXIES", "127.0.0.1/32".to_string())];
        if let Some(g) = geoip {
            vars.push(("GEOIP_DATABASE", g.display().to_string()));
        }
        let api = start_api(ctx, mode, &vars, topic.as_deref(), &db).await?;
        runs.push(load(ctx, &api, "enriched /events", "/events", server).await?);
        runs.push(load(ctx, &api, "enriched /api/event", "/api/event", browser).await?);
        api.stop(Duration::from_secs(30)).await?;
        let ratio = runs[2].load.events_per_s / runs[0].load.events_per_s.max(1e-9);
        say(format!("  ratio, browser-like enriched to unenriched: {ratio:.2}"));
        Ok(EnrichTarget {
            target: format!("api ({mode})"),
            runs,
            ratio,
            error: None,
        })
    }
    .await;
    if let Some(name) = db_name {
        let _ = services::drop_database(&ctx.env, &name).await;
    }
    if let Some(topic) = &topic {
        services::delete_topics(&ctx.env, topic).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}
