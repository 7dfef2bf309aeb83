//! Scenario 4: queries at scale. A database of N events (10M) over the last
//! 30 UTC days and 20 sites, written with the real writer
//! (`analytics_core::store::Writer`), kept between runs (a marker table
//! records how it was generated). The events come in visits
//! (`Generator::visit`): a person's pageviews minutes apart, now and then a
//! custom event, with the enrichment context (source and channel, browser,
//! OS, device, country, hostname; a daily cookieless `visitor_id`, or a
//! `user_id` for logged-in people); scenario `v2` queries the same dataset. The api answers `/stats` for one day and
//! for the 30-day range; beside it, the seed's design: the same answers
//! computed with SQL over the raw `events` table (the seed's columns and
//! indexes): COUNT, COUNT DISTINCT, GROUP BY. A few answers are compared.

use super::{say, Ctx};
use crate::loadgen::{new_histogram, record, HttpConn, Latency};
use crate::services::{self, Service};
use crate::workload::{site_name, Generator, MixConfig, EVENTS_PER_VISIT, MAX_PAGES, VISITS_PER_PERSON};
use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Duration as Days, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::Connection;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WRITE_BATCH: usize = 10_000;
/// Bump when the generation changes, so that an old dataset is rebuilt.
const GENERATOR_VERSION: u32 = 3;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DatasetInfo {
    pub database: String,
    pub events: u64,
    pub sites: usize,
    pub days: u32,
    pub first_day: String,
    pub last_day: String,
    /// Found from an earlier run (not rebuilt).
    pub reused: bool,
    pub build_seconds: f64,
    /// Events/s of the real writer while building (2 writers, disjoint sites).
    pub build_events_per_s: f64,
    pub largest_site: String,
    pub largest_site_events: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct QuerySet {
    /// `/stats` (ours) or `seed SQL`.
    pub system: String,
    /// `day` or `30 days`.
    pub period: String,
    /// `all sites` (uniformly varied) or the largest site's name.
    pub sites: String,
    pub requests: u64,
    pub errors: u64,
    pub latency: Latency,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Answer {
    pub total_views: i64,
    pub unique_users: i64,
    pub top_paths: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Check {
    pub site: String,
    pub from: String,
    pub to: String,
    pub ours: Answer,
    pub seed: Answer,
    pub matches: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct QueriesResults {
    pub dataset: DatasetInfo,
    pub sets: Vec<QuerySet>,
    pub checks: Vec<Check>,
    pub mismatches: usize,
}

impl QueriesResults {
    pub fn set(&self, system: &str, period: &str, largest: bool) -> Option<&QuerySet> {
        self.sets
            .iter()
            .find(|s| s.system == system && s.period == period && (s.sites != "all sites") == largest)
    }
}

fn dataset_name(events: u64) -> String {
    if events.is_multiple_of(1_000_000) {
        format!("analytics_bench_{}m", events / 1_000_000)
    } else {
        format!("analytics_bench_{events}")
    }
}

#[derive(Debug, Serialize)]
struct Params {
    generator: u32,
    events: u64,
    days: u32,
    mix: MixConfig,
    migrations: Vec<String>,
}

pub async fn run(ctx: &Ctx) -> Result<QueriesResults> {
    let dataset = ensure_dataset(ctx).await?;
    let url = ctx.env.database_url(&dataset.database);
    // The scenarios before this one write millions of rows; without a
    // checkpoint first, flushing them lands in the middle of these timings.
    let db = analytics_core::store::connect::connect(&url, 1).await?;
    if let Err(e) = db.execute_unprepared("CHECKPOINT").await {
        say(format!(
            "queries: CHECKPOINT failed ({e}); timings may include earlier writes being flushed"
        ));
    }
    drop(db);
    let topic = ctx.env.unique("bench_query_events");
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
        let r = measure(ctx, &url, api.http_addr(), dataset).await;
        let _ = api.stop(Duration::from_secs(30)).await;
        r
    }
    .await;
    services::delete_topics(&ctx.env, &topic).await;
    result
}

// ------------------------------------------------------------------ dataset

pub(crate) async fn ensure_dataset(ctx: &Ctx) -> Result<DatasetInfo> {
    let events = ctx.args.query_events();
    let days = ctx.args.query_days;
    let mix = ctx.args.mix();
    let name = dataset_name(events);
    let params = Params {
        generator: GENERATOR_VERSION,
        events,
        days,
        mix: mix.clone(),
        migrations: migration::known_versions(),
    };
    let params_json = serde_json::to_string(&params)?;
    let url = ctx.env.database_url(&name);

    if !ctx.args.rebuild && services::database_exists(&ctx.env, &name).await? {
        if let Some(info) = existing(&url, &name, &params_json).await {
            // A newer build's tables (the events themselves are the same).
            services::migrate(&ctx.env, &url)?;
            say(format!(
                "queries: reusing {name} ({} events, {} to {})",
                info.events, info.first_day, info.last_day
            ));
            return Ok(info);
        }
        say(format!(
            "queries: {name} exists but was built differently (or not finished): rebuilding"
        ));
    }
    services::drop_database(&ctx.env, &name).await?;
    services::create_database(&ctx.env, &name).await?;
    services::migrate(&ctx.env, &url)?;

    let last_day = Utc::now().date_naive() - Days::days(1);
    let first_day = last_day - Days::days(i64::from(days) - 1);
    say(format!(
        "queries: building {name}: {events} events, {} sites, {first_day} to {last_day}, with the real writer",
        mix.sites
    ));
    let started = Instant::now();
    build(ctx, &url, events, days, last_day, &mix).await?;
    let build_seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let build_rate = events as f64 / build_seconds;
    say(format!(
        "  written in {build_seconds:.0} s ({build_rate:.0} events/s); packing path rows and weeks as the writer does each minute; VACUUM ANALYZE"
    ));
    let db = analytics_core::store::connect::connect(&url, 1).await?;
    // A live deployment packs within a minute of each write; the dataset is
    // measured in that steady state, not mid-minute.
    while analytics_core::maintenance::compaction::compact(&db).await? > 0 {}
    analytics_core::maintenance::weeks::refresh(&db).await?;
    // The seed's design is measured with all of the seed's indexes: migration
    // 7 dropped two that the platform does not need and migration 9 put the
    // third in time order first, and the seed's SQL reads a site's day
    // through its site-first order.
    db.execute_unprepared(
        "CREATE INDEX seed_events_site_timestamp ON events (site_id, timestamp); \
         CREATE INDEX seed_events_site_event_type ON events (site_id, event_type); \
         CREATE INDEX seed_events_user_id ON events (user_id)",
    )
    .await?;
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
    let mut info = existing(&url, &name, &params_json)
        .await
        .ok_or_else(|| anyhow!("the marker of {name} could not be read back"))?;
    info.reused = false;
    Ok(info)
}

/// A dataset's marker (first day, last day, build seconds) when it
/// matches `params`.
pub(crate) async fn existing_marker(url: &str, params: &str) -> Option<(NaiveDate, NaiveDate, f64)> {
    let db = analytics_core::store::connect::connect(url, 1).await.ok()?;
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT params, first_day, last_day, build_seconds FROM bench_dataset",
        ))
        .await
        .ok()??;
    let _ = db.close().await;
    let stored: String = row.try_get_by_index(0).ok()?;
    if stored != params {
        return None;
    }
    Some((
        row.try_get_by_index(1).ok()?,
        row.try_get_by_index(2).ok()?,
        row.try_get_by_index(3).ok()?,
    ))
}

/// The dataset's description when its marker matches `params`.
async fn existing(url: &str, name: &str, params: &str) -> Option<DatasetInfo> {
    let (first, last, build_seconds) = existing_marker(url, params).await?;
    let p: serde_json::Value = serde_json::from_str(params).ok()?;
    let db = analytics_core::store::connect::connect(url, 1).await.ok()?;
    let largest = site_name(0);
    let largest_events = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) FROM events WHERE site_id = $1",
            [largest.clone().into()],
        ))
        .await
        .ok()??
        .try_get_by_index::<i64>(0)
        .ok()?;
    let _ = db.close().await;
    let events = p.get("events")?.as_u64()?;
    #[allow(clippy::cast_precision_loss)]
    Some(DatasetInfo {
        database: name.to_string(),
        events,
        sites: usize::try_from(p.get("mix")?.get("sites")?.as_u64()?).ok()?,
        days: u32::try_from(p.get("days")?.as_u64()?).ok()?,
        first_day: first.to_string(),
        last_day: last.to_string(),
        reused: true,
        build_seconds,
        build_events_per_s: events as f64 / build_seconds.max(1e-9),
        largest_site: largest,
        largest_site_events: largest_events,
    })
}

/// Events per site (Zipf shares, summing to `events`), split between writers
/// so that each writer has about the same number of events.
fn plan(events: u64, mix: &MixConfig, writers: usize) -> Vec<Vec<(usize, u64)>> {
    let gen = Generator::new(mix.clone());
    let mut counts: Vec<(usize, u64)> = (0..mix.sites)
        .map(|s| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let n = (events as f64 * gen.site_share(s)).round() as u64;
            (s, n)
        })
        .collect();
    let assigned: u64 = counts.iter().map(|c| c.1).sum();
    if let Some(first) = counts.first_mut() {
        first.1 = (first.1 + events).saturating_sub(assigned);
    }
    let mut plan: Vec<Vec<(usize, u64)>> = vec![Vec::new(); writers.max(1)];
    let mut load = vec![0u64; writers.max(1)];
    for (site, n) in counts {
        let w = (0..load.len()).min_by_key(|&i| load[i]).unwrap_or(0);
        load[w] += n;
        plan[w].push((site, n));
    }
    plan
}

/// The people of a site with `events` events: about
/// [`VISITS_PER_PERSON`] visits each over the dataset.
pub(crate) fn people(events: u64) -> u64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let n = (events as f64 / EVENTS_PER_VISIT / VISITS_PER_PERSON).round() as u64;
    n.max(100)
}

async fn build(ctx: &Ctx, url: &str, events: u64, days: u32, last_day: NaiveDate, mix: &MixConfig) -> Result<()> {
    let plan = plan(events, mix, ctx.args.load_writers);
    let written = Arc::new(AtomicU64::new(0));
    let received_at = Utc::now();
    let mut tasks = Vec::new();
    for (w, sites) in plan.into_iter().enumerate() {
        let url = url.to_string();
        let written = written.clone();
        let mix = mix.clone();
        tasks.push(tokio::spawn(async move {
            let db = analytics_core::store::connect::connect(&url, 2).await?;
            let writer = analytics_core::store::Writer::open(&db)?;
            let mut gen = Generator::with_seed(mix.seed.wrapping_add(1000 + w as u64), mix);
            for (site, count) in sites {
                let people = people(count);
                let mut left = count;
                let mut batch = Vec::with_capacity(WRITE_BATCH + MAX_PAGES * 2);
                while left > 0 {
                    // Whole visits, the last one cut to the site's count.
                    while batch.len() < WRITE_BATCH && (batch.len() as u64) < left {
                        let start = gen.timestamp(last_day, days);
                        let who = gen.person_index(people);
                        batch.extend(gen.visit(site, who, start, received_at));
                    }
                    batch.truncate(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = batch.len();
                    writer
                        .write(&batch)
                        .await
                        .with_context(|| format!("writing a batch of {}", site_name(site)))?;
                    batch.clear();
                    left -= n as u64;
                    written.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            db.close().await?;
            anyhow::Ok(())
        }));
    }
    let progress = {
        let written = written.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let n = written.load(Ordering::Relaxed);
                #[allow(clippy::cast_precision_loss)]
                let rate = n as f64 / start.elapsed().as_secs_f64();
                #[allow(clippy::cast_precision_loss)]
                let eta = (events.saturating_sub(n)) as f64 / rate.max(1.0);
                say(format!(
                    "  {n} of {events} written ({rate:.0} events/s, ~{eta:.0} s left)"
                ));
            }
        })
    };
    let mut result = Ok(());
    for t in tasks {
        if let Err(e) = t.await? {
            result = Err(e);
        }
    }
    progress.abort();
    result
}

// -------------------------------------------------------------- measurement

struct Period {
    site: String,
    from: NaiveDate,
    to: NaiveDate,
}

impl Period {
    fn stats_path(&self) -> String {
        if self.from == self.to {
            format!("/stats?site_id={}&date={}", self.site, self.from)
        } else {
            format!("/stats?site_id={}&from={}&to={}", self.site, self.from, self.to)
        }
    }

    fn bounds(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        (start(self.from), start(self.to + Days::days(1)))
    }
}

fn periods(rng: &mut StdRng, ds: &DatasetInfo, largest: bool, range: bool, n: usize) -> Result<Vec<Period>> {
    let first: NaiveDate = ds.first_day.parse()?;
    let last: NaiveDate = ds.last_day.parse()?;
    Ok((0..n)
        .map(|_| {
            let site = if largest {
                ds.largest_site.clone()
            } else {
                site_name(rng.random_range(0..ds.sites))
            };
            if range {
                Period {
                    site,
                    from: first,
                    to: last,
                }
            } else {
                let d = first + Days::days(rng.random_range(0..i64::from(ds.days)));
                Period { site, from: d, to: d }
            }
        })
        .collect())
}

fn parse_answer(body: &[u8]) -> Option<Answer> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(Answer {
        total_views: v.get("total_views")?.as_i64()?,
        unique_users: v.get("unique_users")?.as_i64()?,
        top_paths: v
            .get("top_paths")?
            .as_array()?
            .iter()
            .filter_map(|p| Some((p.get("path")?.as_str()?.to_string(), p.get("views")?.as_i64()?)))
            .collect(),
    })
}

async fn ours(conn: &mut HttpConn, p: &Period) -> Result<Answer> {
    let (status, body) = conn.get(&p.stats_path()).await?;
    if status != hyper::StatusCode::OK {
        bail!("/stats answered {status}: {}", String::from_utf8_lossy(&body));
    }
    parse_answer(&body).ok_or_else(|| anyhow!("unreadable /stats answer"))
}

const SEED_VIEWS: &str = "SELECT COUNT(*) FROM events \
     WHERE site_id = $1 AND event_type = 'page_view' AND timestamp >= $2 AND timestamp < $3";
const SEED_USERS: &str = "SELECT COUNT(DISTINCT user_id) FROM events \
     WHERE site_id = $1 AND timestamp >= $2 AND timestamp < $3 AND user_id <> ''";
const SEED_PATHS: &str = "SELECT path, COUNT(*) FROM events \
     WHERE site_id = $1 AND event_type = 'page_view' AND timestamp >= $2 AND timestamp < $3 \
     GROUP BY path ORDER BY 2 DESC, path COLLATE \"C\" LIMIT 10";

/// The seed's answer: three statements over raw events, in sequence.
async fn seed(conn: &mut PgConnection, p: &Period) -> Result<Answer> {
    let (from, to) = p.bounds();
    let total_views: i64 = sea_orm::sqlx::query_scalar(SEED_VIEWS)
        .bind(&p.site)
        .bind(from)
        .bind(to)
        .fetch_one(&mut *conn)
        .await?;
    let unique_users: i64 = sea_orm::sqlx::query_scalar(SEED_USERS)
        .bind(&p.site)
        .bind(from)
        .bind(to)
        .fetch_one(&mut *conn)
        .await?;
    let top_paths: Vec<(String, i64)> = sea_orm::sqlx::query_as(SEED_PATHS)
        .bind(&p.site)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?;
    Ok(Answer {
        total_views,
        unique_users,
        top_paths,
    })
}

const SETS: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

fn set_labels(ds: &DatasetInfo, largest: bool, range: bool) -> (String, String) {
    let period = if range {
        format!("{} days", ds.days)
    } else {
        "day".into()
    };
    let sites = if largest {
        ds.largest_site.clone()
    } else {
        "all sites".into()
    };
    (period, sites)
}

async fn measure(ctx: &Ctx, url: &str, api: std::net::SocketAddr, dataset: DatasetInfo) -> Result<QueriesResults> {
    let mut rng = StdRng::seed_from_u64(ctx.args.seed);
    let mut http = HttpConn::connect(api).await?;
    let mut pg = PgConnection::connect(url).await?;
    let mut sets = Vec::new();
    let budget = Duration::from_secs_f64(ctx.args.query_budget);

    // Warm-up of ours: the api's pool and PostgreSQL's cache of the rollups.
    for p in periods(&mut rng, &dataset, false, false, 20)? {
        let _ = ours(&mut http, &p).await;
    }
    for (largest, range) in SETS {
        let (period, sites) = set_labels(&dataset, largest, range);
        let mut hist = new_histogram()?;
        let mut errors = 0;
        let started = Instant::now();
        for p in periods(&mut rng, &dataset, largest, range, ctx.args.query_requests())? {
            if started.elapsed() > budget {
                say(format!("  time budget of {budget:?} spent: stopping this set early"));
                break;
            }
            let t = Instant::now();
            match ours(&mut http, &p).await {
                Ok(_) => record(&mut hist, t.elapsed()),
                Err(e) => {
                    if errors == 0 {
                        say(format!("  /stats error: {e:#}"));
                    }
                    errors += 1;
                }
            }
        }
        let latency = Latency::from_histogram(&hist);
        say(format!(
            "  /stats {period}, {sites}: p50 {:.2} ms, p99 {:.2} ms ({} requests, {errors} errors)",
            latency.p50_ms, latency.p99_ms, latency.count
        ));
        sets.push(QuerySet {
            system: "/stats".into(),
            period,
            sites,
            requests: latency.count,
            errors,
            latency,
        });
    }

    for (largest, range) in SETS {
        let (period, sites) = set_labels(&dataset, largest, range);
        let mut hist = new_histogram()?;
        let mut errors = 0;
        let ps = periods(&mut rng, &dataset, largest, range, ctx.args.seed_requests() + 1)?;
        let started = Instant::now();
        for (i, p) in ps.iter().enumerate() {
            if i > 3 && started.elapsed() > budget {
                say(format!("  time budget of {budget:?} spent: stopping this set early"));
                break;
            }
            let t = Instant::now();
            let r = seed(&mut pg, p).await;
            // The first one only warms the cache.
            match r {
                Ok(_) if i > 0 => record(&mut hist, t.elapsed()),
                Ok(_) => {}
                Err(e) => {
                    if errors == 0 {
                        say(format!("  seed SQL error: {e:#}"));
                    }
                    errors += 1;
                }
            }
        }
        let latency = Latency::from_histogram(&hist);
        say(format!(
            "  seed SQL {period}, {sites}: p50 {:.1} ms, p99 {:.1} ms ({} answers)",
            latency.p50_ms, latency.p99_ms, latency.count
        ));
        sets.push(QuerySet {
            system: "seed SQL".into(),
            period,
            sites,
            requests: latency.count,
            errors,
            latency,
        });
    }

    // Same numbers from both? A connection per check: the seed's SQL takes
    // seconds to minutes, past the api's keep-alive timeout.
    drop(http);
    let mut checks = Vec::new();
    let first: NaiveDate = dataset.first_day.parse()?;
    let last: NaiveDate = dataset.last_day.parse()?;
    let mid = first + Days::days(i64::from(dataset.days) / 2);
    let mut to_check = vec![
        Period {
            site: dataset.largest_site.clone(),
            from: mid,
            to: mid,
        },
        Period {
            site: dataset.largest_site.clone(),
            from: first,
            to: last,
        },
        Period {
            site: site_name(dataset.sites / 2),
            from: first,
            to: last,
        },
    ];
    to_check.extend(periods(&mut rng, &dataset, false, false, 3)?);
    for p in &to_check {
        let o = ours(&mut HttpConn::connect(api).await?, p).await?;
        let s = seed(&mut pg, p).await?;
        let matches = o == s;
        if !matches {
            say(format!(
                "  MISMATCH for {} {}..{}: /stats {:?} vs seed SQL {:?}",
                p.site, p.from, p.to, o, s
            ));
        }
        checks.push(Check {
            site: p.site.clone(),
            from: p.from.to_string(),
            to: p.to.to_string(),
            ours: o,
            seed: s,
            matches,
        });
    }
    let _ = pg.close().await;
    let mismatches = checks.iter().filter(|c| !c.matches).count();
    say(format!(
        "  checks: {} answers compared, {mismatches} mismatches",
        checks.len()
    ));
    Ok(QueriesResults {
        dataset,
        sets,
        checks,
        mismatches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_splits_all_events_over_writers() {
        let mix = MixConfig::default();
        let p = plan(1_000_000, &mix, 2);
        let total: u64 = p.iter().flatten().map(|(_, n)| n).sum();
        assert_eq!(total, 1_000_000);
        assert_eq!(p.iter().flatten().count(), mix.sites);
        let loads: Vec<u64> = p.iter().map(|w| w.iter().map(|(_, n)| n).sum()).collect();
        assert!(loads[0].abs_diff(loads[1]) < 150_000, "{loads:?}");
    }

    #[test]
    fn dataset_names() {
        assert_eq!(dataset_name(10_000_000), "analytics_bench_10m");
        assert_eq!(dataset_name(1_500), "analytics_bench_1500");
    }
}
