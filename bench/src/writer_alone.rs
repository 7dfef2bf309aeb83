//! `analytics-bench writer`: the batch writer on its own, with no HTTP and
//! no broker in front of it, so its own bound can be read apart from the
//! api's (embedded mode) or the consumer's (processor).
//!
//! The events are those the api would hand over: the realistic mix, grouped
//! in requests whose events share a `received_at` and a `timestamp` (the
//! api's clock), and requests grouped in transactions as group commit
//! gathers them. Everything is generated before the clock starts.

use crate::workload::{Generator, MixConfig};
use analytics_core::event::{ClientHints, Event};
use analytics_core::store::Writer;
use analytics_enrich::{BotRule, Client, Enricher, Geo};
use anyhow::{Context, Result};
use chrono::Utc;
use migration::{Migrator, MigratorTrait};
use serde::Serialize;
use std::net::IpAddr;
use std::time::Instant;

#[derive(clap::Args)]
pub struct WriterArgs {
    /// The database to write into (migrated first), e.g.
    /// `sqlite:///tmp/bench.db?mode=rwc` or a PostgreSQL URL.
    #[arg(long)]
    pub database_url: String,
    /// Events written before the measured ones (a database that is not empty).
    #[arg(long, default_value_t = 1_000_000)]
    pub prefill: usize,
    /// Events measured.
    #[arg(long, default_value_t = 500_000)]
    pub events: usize,
    /// Events per transaction.
    #[arg(long, default_value_t = 1600)]
    pub transaction: usize,
    /// Events per request (they share their timestamps).
    #[arg(long, default_value_t = 100)]
    pub request: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Give each event the context the api adds to the benchmark's own
    /// requests (a server's agent, one address a user): its source and
    /// channel, and a cookieless visitor for the anonymous ones.
    #[arg(long)]
    pub enriched: bool,
}

#[derive(Debug, Serialize)]
pub struct WriterResult {
    pub events: usize,
    pub transaction: usize,
    pub request: usize,
    pub seconds: f64,
    pub events_per_s: f64,
    pub us_per_event: f64,
    pub transaction_p50_ms: f64,
    pub transaction_p99_ms: f64,
}

/// What `--enriched` runs every event through: the api's own enrichment.
struct Enrich {
    enricher: Enricher,
    salt: [u8; 16],
}

impl Enrich {
    fn new() -> Result<Self> {
        let geo = Geo::open(None, false).context("no country database")?;
        Ok(Self {
            enricher: Enricher::new(geo).context("the User-Agent patterns")?,
            salt: [7; 16],
        })
    }

    fn apply(&self, e: &mut Event) {
        // An address per user (or per path for the anonymous), so that
        // visitors vary as a site's would.
        let key = if e.user_id.is_empty() { &e.path } else { &e.user_id };
        let h = key
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let addr = IpAddr::from(h.to_be_bytes());
        let prepared = self.enricher.prepare(Client {
            user_agent: "analytics-bench",
            addr,
            cdn_country: None,
            salt: &self.salt,
        });
        let hints = ClientHints::default();
        let _ = self
            .enricher
            .enrich(e, &hints, &prepared, false, BotRule::ForwardedAgentOnly);
    }
}

fn transactions(
    gen: &mut Generator,
    events: usize,
    per_txn: usize,
    per_request: usize,
    enrich: Option<&Enrich>,
) -> Vec<Vec<Event>> {
    let per_request = per_request.max(1);
    let mut out = Vec::with_capacity(events.div_ceil(per_txn.max(1)));
    let mut left = events;
    while left > 0 {
        let n = left.min(per_txn.max(1));
        let mut txn = Vec::with_capacity(n);
        while txn.len() < n {
            let now = Utc::now();
            for _ in 0..per_request.min(n - txn.len()) {
                let site = gen.sample_site();
                let mut e = gen.stored_event(site, now, now);
                if let Some(enrich) = enrich {
                    enrich.apply(&mut e);
                }
                txn.push(e);
            }
        }
        left -= n;
        out.push(txn);
    }
    out
}

async fn write_all(writer: &Writer, batches: Vec<Vec<Event>>) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(batches.len());
    for batch in batches {
        let started = Instant::now();
        writer
            .write_owned(batch)
            .await
            .map_err(|(e, _)| e)
            .context("writing a transaction")?;
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(times)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub async fn run(a: &WriterArgs) -> Result<WriterResult> {
    let db = analytics_core::store::connect::connect(&a.database_url, 4)
        .await
        .with_context(|| format!("opening {}", a.database_url))?;
    Migrator::up(&db, None).await.context("migrating")?;
    let writer = Writer::open(&db)?;
    let mut gen = Generator::new(MixConfig {
        seed: a.seed,
        ..MixConfig::default()
    });
    let enrich = a.enriched.then(Enrich::new).transpose()?;
    let prefill = transactions(&mut gen, a.prefill, 10_000, a.request, enrich.as_ref());
    write_all(&writer, prefill).await?;
    let measured = transactions(&mut gen, a.events, a.transaction, a.request, enrich.as_ref());
    let started = Instant::now();
    let mut times = write_all(&writer, measured).await?;
    let seconds = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    db.close().await?;
    #[allow(clippy::cast_precision_loss)]
    let events = a.events as f64;
    Ok(WriterResult {
        events: a.events,
        transaction: a.transaction,
        request: a.request,
        seconds,
        events_per_s: events / seconds,
        us_per_event: seconds * 1e6 / events,
        transaction_p50_ms: percentile(&times, 0.5) * 1e3,
        transaction_p99_ms: percentile(&times, 0.99) * 1e3,
    })
}
