//! Results: results.json (every raw figure, per scenario, merged with the
//! previous file so that `--only` runs update their own part), results.md
//! (a table per scenario and the targets table) and results.png.

use crate::scenarios::catchup::CatchupResults;
use crate::scenarios::enrichment::EnrichmentResults;
use crate::scenarios::freshness::FreshnessResults;
use crate::scenarios::ingest::{IngestResults, IngestTarget};
use crate::scenarios::queries::QueriesResults;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub memory_gb: f64,
    pub kernel: String,
    pub postgres: String,
    pub git_commit: String,
    pub date: String,
}

impl Machine {
    pub fn collect(postgres: String) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        #[allow(clippy::cast_precision_loss)]
        let memory_gb = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0.0, |kb| kb as f64 / 1024.0 / 1024.0);
        Self {
            nproc: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            cpu,
            memory_gb,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            postgres,
            git_commit: git_commit(),
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

fn git_commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) => match run(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if !s.is_empty() => format!("{c}-dirty"),
            _ => c,
        },
        None => "unknown".into(),
    }
}

/// One scenario's entry in results.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Entry {
    pub run_at: String,
    pub quick: bool,
    pub git_commit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub result: Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Results {
    pub machine: Machine,
    pub scenarios: BTreeMap<String, Entry>,
}

impl Results {
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn typed<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Option<T> {
        self.scenarios
            .get(key)
            .filter(|e| !e.result.is_null())
            .and_then(|e| serde_json::from_value(e.result.clone()).ok())
    }

    pub fn ingest(&self) -> Option<IngestResults> {
        self.typed("ingest")
    }

    pub fn catchup(&self) -> Option<CatchupResults> {
        self.typed("catchup")
    }

    pub fn enrichment(&self) -> Option<EnrichmentResults> {
        self.typed("enrichment")
    }

    pub fn freshness(&self) -> Option<FreshnessResults> {
        self.typed("freshness")
    }

    pub fn queries(&self) -> Option<QueriesResults> {
        self.typed("queries")
    }

    pub fn v2(&self) -> Option<crate::scenarios::query_v2::V2Results> {
        self.typed("v2")
    }

    pub fn engine(&self) -> Option<crate::scenarios::engine::EngineResults> {
        self.typed("engine")
    }

    pub fn cold(&self) -> Option<crate::scenarios::cold::ColdResults> {
        self.typed("cold")
    }

    pub fn export(&self) -> Option<crate::scenarios::export::ExportResults> {
        self.typed("export")
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(self)? + "\n")?;
        std::fs::write(dir.join("results.md"), markdown(self))?;
        Ok(())
    }
}

// ------------------------------------------------------------ formatting

pub fn int(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    #[allow(clippy::cast_possible_truncation)]
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

pub fn ms(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v < 10.0 {
        format!("{v:.2} ms")
    } else if v < 100.0 {
        format!("{v:.1} ms")
    } else {
        format!("{} ms", int(v))
    }
}

pub fn ratio(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        "–".into()
    } else if v >= 10.0 {
        format!("{}×", int(v))
    } else if v >= 0.1 {
        format!("{v:.2}×")
    } else {
        format!("{v:.3}×")
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "**no**"
    }
}

/// One row of the targets table.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRow {
    pub target: String,
    pub measured: String,
    pub beside: String,
    pub ratio: String,
    pub met: bool,
}

fn run_of<'a>(t: &'a IngestTarget, shape: &str) -> Option<&'a crate::loadgen::LoadResult> {
    t.runs.iter().find(|r| r.shape == shape).map(|r| &r.load)
}

fn target_of<'a>(i: &'a IngestResults, name: &str) -> Option<&'a IngestTarget> {
    i.targets.iter().find(|t| t.target == name && t.error.is_none())
}

pub fn targets(r: &Results) -> Vec<TargetRow> {
    let mut rows = Vec::new();
    if let Some(i) = r.ingest() {
        let ceiling = target_of(&i, "ceiling");
        for (shape, per_event) in [("batch 1000", true), ("batch 100", true), ("single", false)] {
            let beside = ceiling.and_then(|c| run_of(c, shape));
            for name in ["api (kafka)", "api (embedded)"] {
                let Some(m) = target_of(&i, name).and_then(|t| run_of(t, shape)) else {
                    continue;
                };
                let (value, base, goal, unit) = if per_event {
                    (m.events_per_s, beside.map(|b| b.events_per_s), 150_000.0, "events/s")
                } else {
                    (m.req_per_s, beside.map(|b| b.req_per_s), 25_000.0, "req/s")
                };
                rows.push(TargetRow {
                    target: format!("{name}, {shape}: ≥ {} {unit}", int(goal)),
                    measured: format!("{} {unit}", int(value)),
                    beside: base.map_or("–".into(), |b| format!("ceiling {} {unit}", int(b))),
                    ratio: base.map_or("–".into(), |b| ratio(value / b)),
                    met: value >= goal,
                });
            }
        }
    }
    if let Some(c) = r.catchup() {
        rows.push(TargetRow {
            target: "processor catch-up: ≥ 50% of raw COPY".into(),
            measured: format!("{} rows/s", int(c.rows_per_s_from_first_row)),
            beside: format!("COPY {} rows/s", int(c.copy_indexed.rows_per_s)),
            ratio: format!("{:.0}%", c.ratio_to_copy * 100.0),
            met: c.ratio_to_copy >= 0.5 && c.complete,
        });
    }
    if let Some(e) = r.enrichment() {
        for t in e.targets.iter().filter(|t| t.error.is_none() && t.runs.len() == 3) {
            let (reference, enriched) = (&t.runs[0].load, &t.runs[2].load);
            rows.push(TargetRow {
                target: format!("{}, enriched browser-like ingest: ≥ 50% of unenriched", t.target),
                measured: format!("{} events/s", int(enriched.events_per_s)),
                beside: format!("unenriched {} events/s", int(reference.events_per_s)),
                ratio: format!("{:.0}%", t.ratio * 100.0),
                met: t.ratio >= 0.5 && enriched.error_total == 0,
            });
        }
    }
    if let Some(f) = r.freshness() {
        rows.push(TargetRow {
            target: format!("freshness p99 < 1 s at {} events/s", int(f.target_events_per_s)),
            measured: format!(
                "p99 {} (p50 {}) at {} events/s",
                ms(f.freshness.p99_ms),
                ms(f.freshness.p50_ms),
                int(f.background.events_per_s)
            ),
            beside: "target 1,000 ms".into(),
            ratio: ratio(f.freshness.p99_ms / 1000.0),
            met: f.freshness.count > 0 && f.freshness.p99_ms < 1000.0 && f.probes_failed == 0,
        });
    }
    if let Some(q) = r.queries() {
        let n = int(q.dataset.events as f64);
        let range = format!("{} days", q.dataset.days);
        for (period, largest) in [
            ("day", false),
            (range.as_str(), false),
            ("day", true),
            (range.as_str(), true),
        ] {
            let (Some(ours), Some(seed)) = (q.set("/stats", period, largest), q.set("seed SQL", period, largest))
            else {
                continue;
            };
            let who = if largest { ours.sites.as_str() } else { "all sites" };
            rows.push(TargetRow {
                target: format!("/stats p99 < 5 ms, {period}, {who} ({n} events)"),
                measured: format!("p99 {}", ms(ours.latency.p99_ms)),
                beside: format!("seed SQL p99 {}", ms(seed.latency.p99_ms)),
                ratio: ratio(seed.latency.p99_ms / ours.latency.p99_ms),
                met: ours.latency.count > 0 && ours.latency.p99_ms < 5.0 && ours.errors == 0,
            });
            let speedup = seed.latency.p50_ms / ours.latency.p50_ms;
            rows.push(TargetRow {
                target: format!("/stats ≥ 100× faster than seed SQL, {period}, {who}"),
                measured: format!("p50 {}", ms(ours.latency.p50_ms)),
                beside: format!("seed SQL p50 {}", ms(seed.latency.p50_ms)),
                ratio: ratio(speedup),
                met: speedup >= 100.0,
            });
        }
        if q.mismatches > 0 {
            rows.push(TargetRow {
                target: "/stats and seed SQL give the same answers".into(),
                measured: format!("{} of {} differ", q.mismatches, q.checks.len()),
                beside: "–".into(),
                ratio: "–".into(),
                met: false,
            });
        }
    }
    if let Some(e) = r.export() {
        let small = e.small_request_rss.peak_mb;
        for x in &e.runs {
            rows.push(TargetRow {
                target: format!(
                    "export of {} events ({}): api peak RSS < {:.0} MB",
                    int(e.dataset.events as f64),
                    x.format,
                    e.rss_limit_mb
                ),
                measured: format!("{:.1} MB", x.rss.peak_mb),
                beside: format!("small request {small:.1} MB"),
                ratio: ratio(x.rss.peak_mb / small),
                met: x.rss.peak_mb < e.rss_limit_mb && x.events == e.dataset.events,
            });
        }
    }
    if let Some(i) = r.ingest() {
        let ceiling = target_of(&i, "ceiling").and_then(|c| c.hwm_mb.get("ceiling").copied());
        for name in ["api (kafka)", "api (embedded)"] {
            if let Some(peak) = target_of(&i, name).and_then(|t| t.hwm_mb.get("api").copied()) {
                rows.push(TargetRow {
                    target: format!("{name} peak RSS < 100 MB under load"),
                    measured: format!("{peak:.1} MB"),
                    beside: ceiling.map_or("–".into(), |c| format!("ceiling {c:.1} MB")),
                    ratio: ceiling.map_or("–".into(), |c| ratio(peak / c)),
                    met: peak < 100.0,
                });
            }
        }
    }
    rows
}

pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(s, "# Benchmark results\n");
    let _ = writeln!(
        s,
        "Machine: {} cores ({}), {:.0} GB, Linux {}, {}; commit `{}`; written {}.\n",
        m.nproc, m.cpu, m.memory_gb, m.kernel, m.postgres, m.git_commit, m.date
    );
    let _ = writeln!(s, "| scenario | run at | commit | sizes |\n| --- | --- | --- | --- |");
    for (k, e) in &r.scenarios {
        let _ = writeln!(
            s,
            "| {k} | {} | `{}` | {} |",
            e.run_at,
            e.git_commit,
            if e.quick { "quick (scaled down)" } else { "full" }
        );
    }
    let _ = writeln!(s, "\n## Targets\n");
    let _ = writeln!(
        s,
        "| target | measured | beside it | ratio | met |\n| --- | --- | --- | --- | --- |"
    );
    for t in targets(r) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            t.target,
            t.measured,
            t.beside,
            t.ratio,
            yes(t.met)
        );
    }
    for (k, e) in &r.scenarios {
        if let Some(err) = &e.error {
            let _ = writeln!(s, "\n**{k} failed:** `{}`", err.replace('\n', " "));
        }
    }
    if let Some(i) = r.ingest() {
        ingest_md(&mut s, &i);
    }
    if let Some(c) = r.catchup() {
        catchup_md(&mut s, &c);
    }
    if let Some(e) = r.enrichment() {
        enrichment_md(&mut s, &e);
    }
    if let Some(f) = r.freshness() {
        freshness_md(&mut s, &f);
    }
    if let Some(q) = r.queries() {
        queries_md(&mut s, &q);
    }
    if let Some(v) = r.v2() {
        v2_md(&mut s, &v);
    }
    if let Some(e) = r.engine() {
        s.push_str("\n## Engine alone (v2 queries in-process)\n\n");
        s.push_str(&crate::scenarios::engine::markdown(&e));
    }
    if let Some(c) = r.cold() {
        s.push_str("\n## A dashboard's first load on a fresh api\n\n");
        s.push_str(&crate::scenarios::cold::markdown(&c));
    }
    if let Some(e) = r.export() {
        s.push_str(&crate::scenarios::export::markdown(&e));
    }
    if let Some(i) = r.ingest() {
        memory_md(&mut s, &i);
    }
    s
}

fn v2_md(s: &mut String, v: &crate::scenarios::query_v2::V2Results) {
    let _ = writeln!(
        s,
        "\n## Stats API v2 queries (`--only v2`)\n\n`{}` ({} to {}); sites {}; up to {} answers per (query, system), {:.0} s each at most; ClickHouse {} (chdb){}. {} of {} answers equal in all three.\n",
        v.dataset.database,
        v.dataset.first_day,
        v.dataset.last_day,
        v.sites
            .iter()
            .map(|(site, n)| format!("`{site}` ({} events)", int(*n as f64)))
            .collect::<Vec<_>>()
            .join(", "),
        v.repetitions,
        v.budget_seconds,
        v.clickhouse_version,
        if v.clickhouse_load_seconds > 0.0 {
            format!(", loaded in {:.0} s", v.clickhouse_load_seconds)
        } else {
            String::new()
        },
        v.queries.len() - v.mismatches,
        v.queries.len()
    );
    s.push_str(&crate::scenarios::query_v2::markdown(v));
}

fn errors_cell(l: &crate::loadgen::LoadResult) -> String {
    if l.errors.is_empty() {
        "0".into()
    } else {
        l.errors
            .iter()
            .map(|(k, v)| format!("{v} × {k}"))
            .collect::<Vec<_>>()
            .join("; ")
            .replace('|', "/")
    }
}

fn ingest_md(s: &mut String, i: &IngestResults) {
    let _ = writeln!(
        s,
        "\n## 1. Ingest (closed loop, maximum rate)\n\n{} s measured after {} s of warm-up; {} connections for batches, {} for single events.\n",
        i.duration_s, i.warmup_s, i.batch_connections, i.single_connections
    );
    let _ = writeln!(
        s,
        "| target | request | conns | req/s | events/s | p50 | p90 | p99 | p99.9 | max | errors |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for t in &i.targets {
        if let Some(e) = &t.error {
            let _ = writeln!(
                s,
                "| {} | failed: {} | | | | | | | | | |",
                t.target,
                e.replace('\n', " ")
            );
        }
        for run in &t.runs {
            let l = &run.load;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                t.target,
                run.shape,
                l.connections,
                int(l.req_per_s),
                int(l.events_per_s),
                ms(l.latency.p50_ms),
                ms(l.latency.p90_ms),
                ms(l.latency.p99_ms),
                ms(l.latency.p999_ms),
                ms(l.latency.max_ms),
                errors_cell(l)
            );
        }
    }
    for t in &i.targets {
        if let (Some(acked), Some(rows)) = (t.acked_total, t.rows_stored) {
            let ok = i64::try_from(acked).unwrap_or(-1) == rows;
            let _ = writeln!(
                s,
                "\n{}: {} events acknowledged (warm-ups included), {} rows stored{}.",
                t.target,
                int(acked as f64),
                int(rows as f64),
                if ok { " — equal" } else { " — **MISMATCH**" }
            );
            let drains: Vec<String> = t
                .runs
                .iter()
                .filter_map(|r| {
                    r.drain.as_ref().map(|d| {
                        format!(
                            "{}: {:.1} s at {} events/s{}",
                            r.shape,
                            d.seconds_after_load,
                            int(d.rows_per_s),
                            if d.complete { "" } else { " (incomplete)" }
                        )
                    })
                })
                .collect();
            if let Some(d) = &t.drain {
                let _ = writeln!(
                    s,
                    "The processor was stopped during the load (the api measured alone, as the ceiling is); started \
                     afterwards, it stored {} of {} acknowledged events in {:.1} s ({} events/s){}.",
                    int(d.written_total as f64),
                    int(d.acked_total as f64),
                    d.seconds_after_load,
                    int(d.rows_per_s),
                    if d.complete { "" } else { " (incomplete)" }
                );
            }
            if !drains.is_empty() {
                let _ = writeln!(
                    s,
                    "Time for the processor to store everything acknowledged, after each load: {}.",
                    drains.join(", ")
                );
            }
        }
    }
}

fn catchup_md(s: &mut String, c: &CatchupResults) {
    let _ = writeln!(
        s,
        "\n## 2. Processor catch-up\n\n{} events acknowledged by the api (batches of 1,000, processor stopped) at {} events/s; then the processor started.\n",
        int(c.events_acked as f64),
        int(c.push.events_per_s)
    );
    let _ = writeln!(s, "| what | rows | seconds | rows/s |\n| --- | ---: | ---: | ---: |");
    let _ = writeln!(
        s,
        "| processor, from its first written row (with rollups) | {} | {:.2} | {} |",
        int(c.rows_stored as f64),
        c.seconds_from_first_row,
        int(c.rows_per_s_from_first_row)
    );
    let _ = writeln!(
        s,
        "| processor, from spawn (start-up {:.2} s included) | {} | {:.2} | {} |",
        c.seconds_to_first_row,
        int(c.rows_stored as f64),
        c.seconds_from_start,
        int(c.rows_per_s_from_start)
    );
    for copy in [&c.copy_indexed, &c.copy_bare] {
        let _ = writeln!(
            s,
            "| binary COPY into `{}` ({:.0} MB) | {} | {:.2} | {} |",
            copy.table,
            copy.bytes as f64 / 1e6,
            int(copy.rows as f64),
            copy.seconds,
            int(copy.rows_per_s)
        );
    }
    let _ = writeln!(
        s,
        "\nProcessor ÷ COPY with the same indexes: {:.0}%.{}",
        c.ratio_to_copy * 100.0,
        if c.complete {
            ""
        } else {
            " **The processor did not write every acknowledged event.**"
        }
    );
}

fn enrichment_md(s: &mut String, e: &EnrichmentResults) {
    let p = &e.in_process;
    let _ = writeln!(
        s,
        "\n## Enrichment\n\nSingle events, closed loop, {} connections, {:.0} s each. Enrichment alone, in-process on {} browser-like requests ({} distinct agents, country database: {}): {:.2} µs an event with a cold agent cache, {:.2} µs warm.\n",
        e.connections,
        e.duration_s,
        int(p.events as f64),
        int(p.distinct_agents as f64),
        yes(p.country_database),
        p.cold_us_per_event,
        p.warm_us_per_event
    );
    let _ = writeln!(
        s,
        "| target | load | events/s | p50 | p99 | errors | api CPU µs/event |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for t in &e.targets {
        if let Some(err) = &t.error {
            let _ = writeln!(s, "| {} | failed: `{}` | | | | | |", t.target, err.replace('\n', " "));
            continue;
        }
        for r in &t.runs {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {:.1} |",
                t.target,
                r.label,
                int(r.load.events_per_s),
                ms(r.load.latency.p50_ms),
                ms(r.load.latency.p99_ms),
                errors_cell(&r.load),
                r.api_cpu_us_per_event
            );
        }
    }
}

fn freshness_md(s: &mut String, f: &FreshnessResults) {
    let _ = writeln!(
        s,
        "\n## 3. Freshness\n\nBackground: open loop, batches of 100, target {} events/s for {:.0} s; achieved {} events/s, latency p50 {} / p99 {} (from the intended send time), errors {}. A probe event every 100 ms; /stats polled every 5 ms.\n",
        int(f.target_events_per_s),
        f.duration_s,
        int(f.background.events_per_s),
        ms(f.background.latency.p50_ms),
        ms(f.background.latency.p99_ms),
        errors_cell(&f.background)
    );
    let _ = writeln!(
        s,
        "| probes sent | acknowledged | failed | seen in /stats | p50 | p90 | p99 | max |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let l = &f.freshness;
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {} | {} | {} |",
        f.probes_sent,
        f.probes_acked,
        f.probes_failed,
        f.probes_seen,
        ms(l.p50_ms),
        ms(l.p90_ms),
        ms(l.p99_ms),
        ms(l.max_ms)
    );
}

fn queries_md(s: &mut String, q: &QueriesResults) {
    let d = &q.dataset;
    let _ = writeln!(
        s,
        "\n## 4. Queries at scale\n\n`{}`: {} events, {} sites, {} days ({} to {}); largest site `{}` with {} events. {}. Sequential requests on one connection.\n",
        d.database,
        int(d.events as f64),
        d.sites,
        d.days,
        d.first_day,
        d.last_day,
        d.largest_site,
        int(d.largest_site_events as f64),
        if d.reused {
            format!(
                "Reused from an earlier run (built in {:.0} s with the real writer, {} events/s)",
                d.build_seconds,
                int(d.build_events_per_s)
            )
        } else {
            format!(
                "Built in this run in {:.0} s with the real writer ({} events/s)",
                d.build_seconds,
                int(d.build_events_per_s)
            )
        }
    );
    let _ = writeln!(
        s,
        "| period | sites | /stats n | /stats p50 | /stats p99 | seed SQL n | seed p50 | seed p99 | seed ÷ ours (p50) | seed ÷ ours (p99) |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for ours in q.sets.iter().filter(|x| x.system == "/stats") {
        let seed = q
            .sets
            .iter()
            .find(|x| x.system == "seed SQL" && x.period == ours.period && x.sites == ours.sites);
        let (sn, s50, s99, r50, r99) = match seed {
            Some(x) => (
                x.latency.count.to_string(),
                ms(x.latency.p50_ms),
                ms(x.latency.p99_ms),
                ratio(x.latency.p50_ms / ours.latency.p50_ms),
                ratio(x.latency.p99_ms / ours.latency.p99_ms),
            ),
            None => ("–".into(), "–".into(), "–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {sn} | {s50} | {s99} | {r50} | {r99} |",
            ours.period,
            ours.sites,
            ours.latency.count,
            ms(ours.latency.p50_ms),
            ms(ours.latency.p99_ms)
        );
    }
    let _ = writeln!(
        s,
        "\nSame answers: {} of {} compared (site, period) pairs agree.",
        q.checks.len() - q.mismatches,
        q.checks.len()
    );
    for c in q.checks.iter().filter(|c| !c.matches) {
        let _ = writeln!(
            s,
            "\n**MISMATCH** `{}` {}..{}: /stats views {} users {} top {:?}; seed SQL views {} users {} top {:?}",
            c.site,
            c.from,
            c.to,
            c.ours.total_views,
            c.ours.unique_users,
            c.ours.top_paths.iter().take(3).collect::<Vec<_>>(),
            c.seed.total_views,
            c.seed.unique_users,
            c.seed.top_paths.iter().take(3).collect::<Vec<_>>()
        );
    }
}

fn memory_md(s: &mut String, i: &IngestResults) {
    let _ = writeln!(
        s,
        "\n## 5. Memory under the ingest load\n\nPeak VmRSS sampled every 50 ms during each measured run; VmHWM is the peak since the process started (for the Kafka-mode processor: while it stored the whole load, after it).\n"
    );
    let _ = writeln!(
        s,
        "| target | process | batch 1000 | batch 100 | single | VmHWM at the end |\n| --- | --- | ---: | ---: | ---: | ---: |"
    );
    for t in &i.targets {
        for (proc_name, hwm) in &t.hwm_mb {
            let cell = |shape: &str| {
                t.runs
                    .iter()
                    .find(|r| r.shape == shape)
                    .and_then(|r| r.memory.get(proc_name))
                    .map_or("–".into(), |m| format!("{:.1} MB", m.peak_rss_mb))
            };
            let _ = writeln!(
                s,
                "| {} | {proc_name} | {} | {} | {} | {hwm:.1} MB |",
                t.target,
                cell("batch 1000"),
                cell("batch 100"),
                cell("single")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formatting() {
        assert_eq!(int(1_234_567.4), "1,234,567");
        assert_eq!(int(999.0), "999");
        assert_eq!(int(-1000.0), "-1,000");
        assert_eq!(ms(1.234), "1.23 ms");
        assert_eq!(ms(12.34), "12.3 ms");
        assert_eq!(ms(1234.0), "1,234 ms");
        assert_eq!(ratio(250.4), "250×");
        assert_eq!(ratio(0.456), "0.46×");
        assert_eq!(ratio(f64::NAN), "–");
    }

    #[test]
    fn empty_results_render() {
        let md = markdown(&Results::default());
        assert!(md.contains("## Targets"));
        assert!(targets(&Results::default()).is_empty());
    }
}
