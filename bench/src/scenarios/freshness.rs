//! Scenario 3: freshness. Under a steady open-loop background load (batches
//! of 100 at the target event rate) in Kafka mode, a probe posts one event
//! every 100 ms to its own site, and a poller reads that site's /stats every
//! 5 ms. Freshness of probe k = the first time /stats counts k events − the
//! time probe k was answered 202.

use super::{say, Ctx, KafkaStack};
use crate::loadgen::{self, new_histogram, record, HttpConn, Latency, LoadResult, LoadSpec, Mode};
use crate::workload::{body_pool, Generator, Shape};
use anyhow::{anyhow, Result};
use bytes::Bytes;
use chrono::{Duration as Days, Utc};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub const PROBE_SITE: &str = "freshness-probe";
const PROBE_EVERY: Duration = Duration::from_millis(100);
const POLL_EVERY: Duration = Duration::from_millis(5);
const WARMUP: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FreshnessResults {
    pub target_events_per_s: f64,
    pub duration_s: f64,
    /// The background load as measured (latency from the intended send time).
    pub background: LoadResult,
    pub probes_sent: u64,
    pub probes_acked: u64,
    /// Probes not answered 202: if any, later probes may be matched to the wrong count.
    pub probes_failed: u64,
    pub probes_seen: u64,
    /// 202 of a probe → first /stats answer that counts it.
    pub freshness: Latency,
    pub polls: u64,
    pub poll_errors: u64,
}

pub async fn run(ctx: &Ctx) -> Result<FreshnessResults> {
    let stack = KafkaStack::start(ctx, 6, true).await?;
    let result = measure(ctx, &stack).await;
    stack.teardown(ctx).await;
    result
}

async fn measure(ctx: &Ctx, stack: &KafkaStack) -> Result<FreshnessResults> {
    let api = stack
        .api
        .as_ref()
        .ok_or_else(|| anyhow!("api not running"))?
        .http_addr();
    let rate = ctx.args.freshness_rate;
    let duration = ctx.args.freshness_duration();
    let shape = Shape::Batch(100);
    let mut gen = Generator::new(ctx.args.mix());
    let bodies = Arc::new(body_pool(&mut gen, shape, 500)?);
    say(format!(
        "freshness: {rate:.0} events/s in the background for {:.0} s, a probe every 100 ms",
        duration.as_secs_f64()
    ));
    let spec = LoadSpec {
        path: shape.path().to_string(),
        bodies,
        connections: 16,
        mode: Mode::Rate(rate / 100.0),
        warmup: WARMUP,
        duration,
        max_requests: None,
        ok_status: StatusCode::ACCEPTED,
    };
    let background = tokio::spawn(async move { loadgen::run(api, "background", &spec).await });

    let today = Utc::now().date_naive();
    // Two days, so that a run across midnight (UTC) still counts every probe.
    let stats_path = format!(
        "/stats?site_id={PROBE_SITE}&from={}&to={}",
        today,
        today + Days::days(1)
    );
    let acks: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let probing_done = Arc::new(tokio::sync::Notify::new());

    tokio::time::sleep(WARMUP).await;
    let probe = {
        let acks = acks.clone();
        let done = probing_done.clone();
        tokio::spawn(async move {
            let r = probe(api, duration, &acks).await;
            done.notify_one();
            r
        })
    };
    let (seen, polls, poll_errors) = poll(api, &stats_path, &acks, &probing_done).await;
    let (sent, failed) = probe.await??;
    let background = background.await??;

    let acks = acks.lock().map(|a| a.clone()).unwrap_or_default();
    let mut hist = new_histogram()?;
    for (k, seen_at) in seen.iter().enumerate() {
        if let Some(acked_at) = acks.get(k) {
            record(&mut hist, seen_at.saturating_duration_since(*acked_at));
        }
    }
    let freshness = Latency::from_histogram(&hist);
    say(format!(
        "  background {:.0} events/s (p99 {:.1} ms); freshness of {} probes: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        background.events_per_s,
        background.latency.p99_ms,
        freshness.count,
        freshness.p50_ms,
        freshness.p99_ms,
        freshness.max_ms
    ));
    Ok(FreshnessResults {
        target_events_per_s: rate,
        duration_s: duration.as_secs_f64(),
        background,
        probes_sent: sent,
        probes_acked: acks.len() as u64,
        probes_failed: failed,
        probes_seen: seen.len() as u64,
        freshness,
        polls,
        poll_errors,
    })
}

/// One event every 100 ms for `duration`, sequentially on one connection.
async fn probe(api: std::net::SocketAddr, duration: Duration, acks: &Mutex<Vec<Instant>>) -> Result<(u64, u64)> {
    let mut conn = HttpConn::connect(api).await?;
    let end = Instant::now() + duration;
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut sent, mut failed) = (0u64, 0u64);
    let body = Bytes::from(format!(
        r#"{{"site_id":"{PROBE_SITE}","event_type":"page_view","path":"/probe","user_id":"probe"}}"#
    ));
    while Instant::now() < end {
        tick.tick().await;
        sent += 1;
        match conn.post("/events", body.clone()).await {
            Ok((s, _)) if s == StatusCode::ACCEPTED => {
                let now = Instant::now();
                if let Ok(mut a) = acks.lock() {
                    a.push(now);
                }
            }
            Ok(_) => failed += 1,
            Err(_) => {
                failed += 1;
                conn = HttpConn::connect(api).await?;
            }
        }
    }
    Ok((sent, failed))
}

/// Reads the probe site's `total_events` every 5 ms; the instant each count
/// was first seen. Ends when probing is over and every probe is counted (or
/// 30 s later).
async fn poll(
    api: std::net::SocketAddr,
    path: &str,
    acks: &Mutex<Vec<Instant>>,
    probing_done: &tokio::sync::Notify,
) -> (Vec<Instant>, u64, u64) {
    let mut seen: Vec<Instant> = Vec::new();
    let (mut polls, mut errors) = (0u64, 0u64);
    let mut conn: Option<HttpConn> = None;
    let mut done_at: Option<Instant> = None;
    let done = probing_done.notified();
    tokio::pin!(done);
    loop {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match HttpConn::connect(api).await {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    errors += 1;
                    tokio::time::sleep(POLL_EVERY).await;
                    continue;
                }
            },
        };
        polls += 1;
        match c.get(path).await {
            Ok((s, body)) if s == StatusCode::OK => {
                let now = Instant::now();
                let total = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("total_events").and_then(serde_json::Value::as_u64))
                    .unwrap_or(0);
                while (seen.len() as u64) < total {
                    seen.push(now);
                }
            }
            Ok(_) => errors += 1,
            Err(_) => {
                errors += 1;
                conn = None;
            }
        }
        if done_at.is_none() && futures::FutureExt::now_or_never(done.as_mut()).is_some() {
            done_at = Some(Instant::now());
        }
        if let Some(d) = done_at {
            let acked = acks.lock().map(|a| a.len()).unwrap_or(0);
            if seen.len() >= acked || d.elapsed() > Duration::from_secs(30) {
                break;
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    (seen, polls, errors)
}
