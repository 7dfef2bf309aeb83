//! The soak: Kafka mode (api and processor) under a steady open-loop load
//! for `--soak-minutes` (10), sampling every process's RSS, CPU, open file
//! descriptors and threads every `SAMPLE_EVERY`, and the broker's when it
//! runs on this machine. Leaks show as a slope: the
//! summary compares the last minutes with the middle of the run, and
//! soak.png plots every sample. Not part of `all` unless asked for
//! (`--only soak`): it takes its whole duration.

use super::{say, Ctx, KafkaStack};
use crate::loadgen::{self, LoadResult, LoadSpec, Mode};
use crate::services::{self, metric_value, read_metrics_page, read_rss_kb};
use crate::workload::{body_pool, Generator, Shape};
use anyhow::{anyhow, Result};
use hyper::StatusCode;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const BATCH: usize = 100;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    pub process: String,
    pub t_s: f64,
    pub rss_mb: f64,
    pub fds: u64,
    pub threads: u64,
    /// The process's `analytics_writer_known_users` (0 where it has none):
    /// a bounded cache the processor's memory grows with.
    pub known_users: u64,
    /// The processor's mean batch (events) since the previous sample
    /// (0 where it has none, or wrote no batch since).
    pub batch_mean: f64,
    /// CPU time the process used since the previous sample, in cores.
    pub cpu_cores: f64,
    /// The processor's seconds in batch transactions per second since the
    /// previous sample, all lanes summed (0 elsewhere): whether the batches
    /// grow because the writer is slower or because messages arrive in
    /// larger runs.
    pub writer_busy: f64,
}

/// One process over the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Drift {
    pub process: String,
    /// Averages over the second quarter of the run (after warm-up) and over
    /// its last quarter.
    pub rss_mid_mb: f64,
    pub rss_end_mb: f64,
    pub rss_max_mb: f64,
    pub fds_mid: f64,
    pub fds_end: f64,
    pub fds_max: u64,
    pub threads_end: f64,
    pub known_users_mid: f64,
    pub known_users_end: f64,
    pub batch_mean_mid: f64,
    pub batch_mean_end: f64,
    pub cpu_mid: f64,
    pub cpu_end: f64,
    pub writer_busy_mid: f64,
    pub writer_busy_end: f64,
    /// Least-squares slope over the second half, per minute.
    pub rss_slope_mb_per_min: f64,
    pub fds_slope_per_min: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SoakResults {
    pub minutes: f64,
    pub target_events_per_s: f64,
    pub load: LoadResult,
    pub stored: i64,
    pub drift: Vec<Drift>,
    pub samples: Vec<Sample>,
}

fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

fn threads(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count() as u64)
}

/// The broker's process when it runs on this machine (tansu), so that the
/// soak shows whether the broker, not our services, sets the pace.
fn broker_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        (comm.trim() == "tansu").then_some(pid)
    })
}

/// What the soak reads of a process at each sample: its running totals at
/// the previous one, to turn them into rates.
#[derive(Default, Clone, Copy)]
struct Last {
    batch_sum: f64,
    batch_count: f64,
    busy_sum: f64,
    cpu_s: f64,
    at_s: f64,
}

pub async fn run(ctx: &Ctx) -> Result<SoakResults> {
    let mut stack = KafkaStack::start(ctx, 6, false).await?;
    let extra: Vec<(&'static str, String)> = ctx
        .args
        .soak_batch_max_events
        .map(|n| ("BATCH_MAX_EVENTS", n.to_string()))
        .into_iter()
        .collect();
    let result = match stack.start_processor_with(ctx, &extra).await {
        Ok(()) => measure(ctx, &stack).await,
        Err(e) => Err(e),
    };
    stack.teardown(ctx).await;
    result
}

async fn measure(ctx: &Ctx, stack: &KafkaStack) -> Result<SoakResults> {
    let api = stack.api.as_ref().ok_or_else(|| anyhow!("api not running"))?;
    let processor = stack
        .processor
        .as_ref()
        .ok_or_else(|| anyhow!("processor not running"))?;
    let mut procs = vec![
        ("api", api.pid(), Some(api.metrics_addr())),
        ("processor", processor.pid(), Some(processor.metrics_addr())),
    ];
    procs.extend(broker_pid().map(|pid| ("broker", pid, None)));
    let minutes = ctx.args.soak_minutes;
    let rate = ctx.args.soak_rate;
    let duration = Duration::from_secs_f64(minutes * 60.0);
    say(format!(
        "soak: {rate:.0} events/s in batches of {BATCH} for {minutes:.0} min, sampling every {} s",
        SAMPLE_EVERY.as_secs()
    ));
    let mut gen = Generator::new(ctx.args.mix());
    let shape = Shape::Batch(BATCH);
    let spec = LoadSpec {
        path: shape.path().to_string(),
        bodies: std::sync::Arc::new(body_pool(&mut gen, shape, 500)?),
        connections: 16,
        mode: Mode::Rate(rate / BATCH as f64),
        warmup: Duration::ZERO,
        duration,
        max_requests: None,
        ok_status: StatusCode::ACCEPTED,
    };
    let addr = api.http_addr();
    let load = tokio::spawn(async move { loadgen::run(addr, "soak", &spec).await });
    let started = tokio::time::Instant::now();
    let mut samples = Vec::new();
    let mut last = vec![Last::default(); procs.len()];
    while started.elapsed() < duration {
        let t_s = started.elapsed().as_secs_f64();
        for (&(name, pid, metrics), last) in procs.iter().zip(last.iter_mut()) {
            let (rss, _) = read_rss_kb(pid).unwrap_or((0, 0));
            // One read of the page: the values of one moment.
            let page = match metrics {
                Some(addr) => read_metrics_page(addr).await.unwrap_or_default(),
                None => String::new(),
            };
            let metric = |name: &str| metric_value(&page, name).unwrap_or(0.0);
            let known = metric("analytics_writer_known_users");
            let batch_sum = metric("analytics_processor_batch_size_sum");
            let batch_count = metric("analytics_processor_batch_size_count");
            let busy_sum = metric("analytics_writer_transaction_duration_seconds_sum");
            let cpu_s = services::cpu_seconds(pid);
            let now = Last {
                batch_sum,
                batch_count,
                busy_sum,
                cpu_s,
                at_s: t_s,
            };
            let batch_mean = if batch_count > last.batch_count {
                (batch_sum - last.batch_sum) / (batch_count - last.batch_count)
            } else {
                0.0
            };
            let elapsed = t_s - last.at_s;
            let (cpu_cores, writer_busy) = if last.at_s > 0.0 && elapsed > 0.0 {
                ((cpu_s - last.cpu_s) / elapsed, (busy_sum - last.busy_sum) / elapsed)
            } else {
                (0.0, 0.0)
            };
            *last = now;
            #[allow(clippy::cast_precision_loss)]
            samples.push(Sample {
                process: name.to_string(),
                t_s,
                rss_mb: rss as f64 / 1024.0,
                fds: fds(pid),
                threads: threads(pid),
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                known_users: known as u64,
                batch_mean,
                cpu_cores,
                writer_busy,
            });
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let load = load.await??;
    let stored = crate::services::count_rows(&stack.db_url, "events").await.unwrap_or(0);
    let drift: Vec<Drift> = procs
        .iter()
        .map(|(name, _, _)| drift(name, &samples, minutes))
        .collect();
    for d in &drift {
        say(format!(
            "  {}: RSS {:.1} → {:.1} MB (max {:.1}, {:+.2} MB/min over the second half); fds {:.0} → {:.0} (max {}, {:+.2}/min); threads {:.0}; CPU {:.2} → {:.2} cores; known users {:.0} → {:.0}; mean batch {:.0} → {:.0}; writer busy {:.2} → {:.2} s/s",
            d.process, d.rss_mid_mb, d.rss_end_mb, d.rss_max_mb, d.rss_slope_mb_per_min, d.fds_mid, d.fds_end, d.fds_max, d.fds_slope_per_min, d.threads_end, d.cpu_mid, d.cpu_end, d.known_users_mid, d.known_users_end, d.batch_mean_mid, d.batch_mean_end, d.writer_busy_mid, d.writer_busy_end
        ));
    }
    say(format!(
        "  load: {:.0} events/s sent, p99 {:.1} ms, errors {}; {stored} events stored",
        load.events_per_s, load.latency.p99_ms, load.error_total
    ));
    Ok(SoakResults {
        minutes,
        target_events_per_s: rate,
        load,
        stored,
        drift,
        samples,
    })
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Least-squares slope of (x, y).
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = (
        mean(&points.iter().map(|p| p.0).collect::<Vec<_>>()),
        mean(&points.iter().map(|p| p.1).collect::<Vec<_>>()),
    );
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

fn drift(process: &str, samples: &[Sample], minutes: f64) -> Drift {
    let total = minutes * 60.0;
    let of: Vec<&Sample> = samples.iter().filter(|s| s.process == process).collect();
    let window = |from: f64, to: f64| -> Vec<&Sample> {
        of.iter()
            .copied()
            .filter(|s| s.t_s >= from * total && s.t_s < to * total)
            .collect()
    };
    let (mid, end, half) = (window(0.25, 0.5), window(0.75, 1.01), window(0.5, 1.01));
    let rss = |w: &[&Sample]| mean(&w.iter().map(|s| s.rss_mb).collect::<Vec<_>>());
    #[allow(clippy::cast_precision_loss)]
    let fd = |w: &[&Sample]| mean(&w.iter().map(|s| s.fds as f64).collect::<Vec<_>>());
    #[allow(clippy::cast_precision_loss)]
    Drift {
        process: process.to_string(),
        rss_mid_mb: rss(&mid),
        rss_end_mb: rss(&end),
        rss_max_mb: of.iter().map(|s| s.rss_mb).fold(0.0, f64::max),
        fds_mid: fd(&mid),
        fds_end: fd(&end),
        fds_max: of.iter().map(|s| s.fds).max().unwrap_or(0),
        threads_end: mean(&end.iter().map(|s| s.threads as f64).collect::<Vec<_>>()),
        known_users_mid: mean(&mid.iter().map(|s| s.known_users as f64).collect::<Vec<_>>()),
        known_users_end: mean(&end.iter().map(|s| s.known_users as f64).collect::<Vec<_>>()),
        batch_mean_mid: mean(&mid.iter().map(|s| s.batch_mean).collect::<Vec<_>>()),
        batch_mean_end: mean(&end.iter().map(|s| s.batch_mean).collect::<Vec<_>>()),
        cpu_mid: mean(&mid.iter().map(|s| s.cpu_cores).collect::<Vec<_>>()),
        cpu_end: mean(&end.iter().map(|s| s.cpu_cores).collect::<Vec<_>>()),
        writer_busy_mid: mean(&mid.iter().map(|s| s.writer_busy).collect::<Vec<_>>()),
        writer_busy_end: mean(&end.iter().map(|s| s.writer_busy).collect::<Vec<_>>()),
        rss_slope_mb_per_min: slope(&half.iter().map(|s| (s.t_s / 60.0, s.rss_mb)).collect::<Vec<_>>()),
        fds_slope_per_min: slope(&half.iter().map(|s| (s.t_s / 60.0, s.fds as f64)).collect::<Vec<_>>()),
    }
}

/// What a panel plots of a sample.
type Measure = fn(&Sample) -> f64;

/// soak.png: each process's RSS, CPU, descriptors, writer cache, batch size and
/// writer busy time over the run, the broker's beside ours where it runs here.
pub fn plot(r: &SoakResults, dir: &Path) -> Result<std::path::PathBuf> {
    if !crate::plot::register_font() {
        return Err(anyhow!("no DejaVu Sans font to draw soak.png with"));
    }
    let path = dir.join("soak.png");
    {
        let root = BitMapBackend::new(&path, (1400, 2400)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((6, 1));
        let total = r.minutes.max(0.1);
        #[allow(clippy::cast_precision_loss)]
        let series: [(&str, Measure); 6] = [
            ("RSS (MB)", |s| s.rss_mb),
            ("CPU (cores)", |s| s.cpu_cores),
            ("open file descriptors", |s| s.fds as f64),
            ("known users (writer cache)", |s| s.known_users as f64),
            ("mean batch (events)", |s| s.batch_mean),
            ("writer busy (transaction s per s)", |s| s.writer_busy),
        ];
        for (area, (label, value)) in panels.iter().zip(series) {
            let max = r.samples.iter().map(value).fold(1.0, f64::max) * 1.2;
            let mut chart = ChartBuilder::on(area)
                .caption(
                    format!(
                        "soak: {label}, {:.0} events/s for {:.0} min",
                        r.target_events_per_s, r.minutes
                    ),
                    ("sans-serif", 22),
                )
                .margin(15)
                .x_label_area_size(35)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..total, 0.0..max)?;
            chart.configure_mesh().x_desc("minutes").y_desc(label).draw()?;
            for (i, process) in ["api", "processor", "broker"].iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                let points: Vec<(f64, f64)> = r
                    .samples
                    .iter()
                    .filter(|s| s.process == *process)
                    .map(|s| (s.t_s / 60.0, value(s)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                    .label(*process)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()?;
        }
        root.present()?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_series_has_no_slope_and_a_leak_has_one() {
        assert!(slope(&[(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)]).abs() < 1e-9);
        assert!((slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) - 2.0).abs() < 1e-9);
        assert!(slope(&[(1.0, 1.0)]).abs() < 1e-9);
    }
}
