//! Scenario `cold`: the dashboard's first load of the largest site on a
//! freshly started api. The dashboard asks its panels' questions at once
//! (the 9 unfiltered breakdowns of [`query_v2::specs`]); none is kept yet,
//! so the first read of the range decides how long they all take.
//!
//! Each round, on a fresh api each time: the site's stored day blocks
//! dropped, one of those questions alone (every day read from its rows,
//! as the first read ever: the reference); the same question alone again
//! (its days from the blocks that read stored); then all the questions at
//! once. The api's peak RSS is taken from its VmHWM.

use super::queries::{ensure_dataset, DatasetInfo};
use super::query_v2::specs;
use super::{say, Ctx};
use crate::loadgen::HttpConn;
use crate::services::{self, read_rss_kb, Service};
use crate::workload::site_name;
use anyhow::Result;
use bytes::Bytes;
use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, Statement};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ColdRound {
    /// One question alone, every day from its rows: seconds to its answer,
    /// the api's peak RSS, the days read from rows.
    pub alone_seconds: f64,
    pub alone_peak_mb: f64,
    pub alone_days_from_rows: f64,
    /// The same question alone with the days' blocks stored: seconds, peak
    /// RSS, the days read from blocks.
    pub blocks_alone_seconds: f64,
    pub blocks_alone_peak_mb: f64,
    pub blocks_alone_days: f64,
    /// Every panel's question at once: seconds to the last answer, the
    /// first, and the api's peak RSS.
    pub together_seconds: f64,
    pub together_first_seconds: f64,
    pub together_peak_mb: f64,
    /// Reads of the range the api made for them (its cache's misses).
    pub together_reads: f64,
    /// Answers other than 200 (a 408 past `HTTP_REQUEST_TIMEOUT_SECONDS`),
    /// alone and at once.
    pub alone_failed: usize,
    pub together_failed: usize,
}

/// What one load of a fresh api measured.
struct Load {
    /// Seconds to the last and to the first answer.
    last: f64,
    first: f64,
    peak_mb: f64,
    reads: f64,
    /// Closed days read from stored blocks, and from rows.
    from_blocks: f64,
    from_rows: f64,
    failed: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ColdResults {
    pub dataset: DatasetInfo,
    pub site: String,
    pub questions: Vec<String>,
    pub rounds: Vec<ColdRound>,
}

pub async fn run(ctx: &Ctx) -> Result<ColdResults> {
    let dataset = ensure_dataset(ctx).await?;
    let url = ctx.env.database_url(&dataset.database);
    let first: NaiveDate = dataset.first_day.parse()?;
    let last: NaiveDate = dataset.last_day.parse()?;
    let site = site_name(0);
    let panels: Vec<_> = specs().into_iter().filter(|s| s.filters.is_empty()).collect();
    let bodies: Vec<Bytes> = panels
        .iter()
        .map(|s| serde_json::to_vec(&s.request(&site, first, last)).map(Bytes::from))
        .collect::<Result<_, _>>()?;
    let topic = ctx.env.unique("bench_cold_events");
    services::create_topics(&ctx.env, &topic, 1).await?;
    let group = ctx.env.unique("bench_group");
    let vars = services::kafka_vars(&ctx.env, &url, &topic, &group);
    let mut rounds = Vec::new();
    let db = analytics_core::store::connect::connect(&url, 1).await?;
    for round in 0..ctx.args.cold_rounds.max(1) {
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "DELETE FROM event_blocks WHERE site_id = $1",
            [site.as_str().into()],
        ))
        .await?;
        let alone = load(ctx, &vars, &bodies[..1]).await?;
        let blocks = load(ctx, &vars, &bodies[..1]).await?;
        let together = load(ctx, &vars, &bodies).await?;
        say(format!(
            "  round {}: one question {:.2} s from rows ({} days, peak RSS {:.0} MB, {} failed), {:.2} s from blocks \
             ({} days, peak RSS {:.0} MB, {} failed); {} at once: last answer {:.2} s, \
             first {:.2} s, {} reads, {} failed (peak RSS {:.0} MB)",
            round + 1,
            alone.last,
            alone.from_rows,
            alone.peak_mb,
            alone.failed,
            blocks.last,
            blocks.from_blocks,
            blocks.peak_mb,
            blocks.failed,
            bodies.len(),
            together.last,
            together.first,
            together.reads,
            together.failed,
            together.peak_mb
        ));
        rounds.push(ColdRound {
            alone_seconds: alone.last,
            alone_peak_mb: alone.peak_mb,
            alone_days_from_rows: alone.from_rows,
            blocks_alone_seconds: blocks.last,
            blocks_alone_peak_mb: blocks.peak_mb,
            blocks_alone_days: blocks.from_blocks,
            together_seconds: together.last,
            together_first_seconds: together.first,
            together_peak_mb: together.peak_mb,
            together_reads: together.reads,
            alone_failed: alone.failed + blocks.failed,
            together_failed: together.failed,
        });
    }
    services::delete_topics(&ctx.env, &topic).await;
    Ok(ColdResults {
        dataset,
        site,
        questions: panels.iter().map(super::query_v2::Spec::label).collect(),
        rounds,
    })
}

/// A fresh api asked `bodies` at once, each on its own connection.
async fn load(ctx: &Ctx, vars: &[(&str, String)], bodies: &[Bytes]) -> Result<Load> {
    let mut api = Service::start(&ctx.env, "analytics-api", &[], vars)?;
    api.wait_ready().await?;
    let addr = api.http_addr();
    let mut conns = Vec::new();
    for _ in bodies {
        conns.push(HttpConn::connect(addr).await?);
    }
    let started = Instant::now();
    let asked = bodies.iter().cloned().zip(conns).map(|(body, mut conn)| async move {
        let (status, answer) = conn.post("/api/v2/query", body).await?;
        let ok = status == hyper::StatusCode::OK;
        if !ok {
            say(format!(
                "    /api/v2/query answered {status}: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(200)])
            ));
        }
        anyhow::Ok((started.elapsed(), ok))
    });
    let answered: Vec<(Duration, bool)> = futures::future::try_join_all(asked).await?;
    let last = answered.iter().map(|a| a.0).max().unwrap_or_default();
    let first = answered.iter().map(|a| a.0).min().unwrap_or_default();
    let failed = answered.iter().filter(|a| !a.1).count();
    #[allow(clippy::cast_precision_loss)]
    let peak_mb = read_rss_kb(api.pid()).map_or(0.0, |(_, hwm)| hwm as f64 / 1024.0);
    let page = services::read_metrics_page(api.metrics_addr())
        .await
        .unwrap_or_default();
    let metric = |name: &str| services::metric_value(&page, name).unwrap_or(f64::NAN);
    let reads = metric(r#"analytics_query_cache_reads_total{reason="miss"}"#);
    let from_blocks = metric(r#"analytics_query_day_blocks_total{reason="block"}"#);
    let from_rows = metric(r#"analytics_query_day_blocks_total{reason="rows"}"#);
    api.stop(Duration::from_secs(30)).await?;
    Ok(Load {
        last: last.as_secs_f64(),
        first: first.as_secs_f64(),
        peak_mb,
        reads,
        from_blocks,
        from_rows,
        failed,
    })
}

/// The results as a Markdown section.
pub fn markdown(r: &ColdResults) -> String {
    let mut s = format!(
        "`{}` of `{}`, the whole range, a freshly started api each time: one question alone \
         (`{}`) with the site's day blocks dropped (every day from its rows), the same again (the days \
         from the blocks that read stored), then the dashboard's {} unfiltered breakdowns at once, \
         each on its own connection.\n\n\
         | round | one alone, rows | one alone, blocks | blocks ÷ rows | days from blocks | all at once: last answer | first answer | last ÷ alone on blocks | reads of the range | failed (not 200) | peak RSS rows / blocks / at once |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        r.site,
        r.dataset.database,
        r.questions.first().map_or("", String::as_str),
        r.questions.len()
    );
    for (i, x) in r.rounds.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {:.2} s | {:.2} s | {:.2}× | {} of {} | {:.2} s | {:.2} s | {:.2}× | {} | {} of {} | {:.0} / {:.0} / {:.0} MB |\n",
            i + 1,
            x.alone_seconds,
            x.blocks_alone_seconds,
            x.blocks_alone_seconds / x.alone_seconds.max(1e-9),
            x.blocks_alone_days,
            x.alone_days_from_rows,
            x.together_seconds,
            x.together_first_seconds,
            x.together_seconds / x.blocks_alone_seconds.max(1e-9),
            x.together_reads,
            x.together_failed,
            r.questions.len(),
            x.alone_peak_mb,
            x.blocks_alone_peak_mb,
            x.together_peak_mb
        ));
    }
    s
}
