//! The services a scenario runs against: the real release binaries started
//! with their environment variables, a fresh PostgreSQL database and Kafka
//! topic each, and a sampler of their resident memory.

use crate::loadgen::get_once;
use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where things are and which shared services to use.
#[derive(Debug, Clone)]
pub struct Env {
    /// Directory holding analytics-api, analytics-processor, analytics-migrate.
    pub bin_dir: PathBuf,
    pub log_dir: PathBuf,
    /// postgres://…/postgres: used to create and drop databases.
    pub admin_url: String,
    pub brokers: String,
    /// Tag shared by every name this run creates.
    pub run_id: String,
}

impl Env {
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    pub fn database_url(&self, name: &str) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(b, _)| b);
        format!("{base}/{name}")
    }

    pub fn unique(&self, prefix: &str) -> String {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{prefix}_{}_{n}", self.run_id)
    }
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A running binary; SIGTERM then SIGKILL on `stop`, SIGKILL when dropped.
pub struct Service {
    pub name: String,
    pub child: Child,
    pub http: u16,
    pub metrics: u16,
    pub log: PathBuf,
    pub started: Instant,
}

impl Service {
    pub fn start(env: &Env, binary: &str, args: &[&str], vars: &[(&str, String)]) -> Result<Self> {
        let (http, metrics) = (free_port()?, free_port()?);
        std::fs::create_dir_all(&env.log_dir)?;
        let log = env.log_dir.join(format!("{}.log", env.unique(binary)));
        let file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let path = env.bin(binary);
        if !path.exists() {
            bail!(
                "{} is missing: build it with `cargo build --release -p api -p processor -p migration -p analytics-bench`",
                path.display()
            );
        }
        let mut cmd = Command::new(&path);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("LOG_FORMAT", "json")
            // As the Dockerfile and scripts/run.sh run them.
            .env("MALLOC_ARENA_MAX", "2")
            .env("HTTP_ADDR", format!("127.0.0.1:{http}"))
            .env("METRICS_ADDR", format!("127.0.0.1:{metrics}"))
            // The benchmarks measure throughput from one address and a few
            // sites: the rate limits (their own tests) are off.
            .env("RATE_LIMIT_ADDRESS_PER_SECOND", "0")
            .env("RATE_LIMIT_SITE_EVENTS_PER_SECOND", "0")
            // Reads and ingest open: the bench reads /stats without a key
            // and sends to sites nobody registered.
            .env("READ_AUTH", "open")
            .env("INGEST_AUTH", "open")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().with_context(|| format!("starting {}", path.display()))?;
        Ok(Self {
            name: binary.to_string(),
            child,
            http,
            metrics,
            log,
            started: Instant::now(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn http_addr(&self) -> SocketAddr {
        local(self.http)
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        local(self.metrics)
    }

    fn tail_log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Polls `addr` `path` until it answers 200.
    pub async fn wait_ok(&mut self, addr: SocketAddr, path: &str, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited with {status} before it was ready:\n{}",
                    self.name,
                    self.tail_log()
                );
            }
            if let Ok((s, _)) = get_once(addr, path, Duration::from_secs(2)).await {
                if s.is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("{} not ready within {within:?}:\n{}", self.name, self.tail_log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `/readyz` on the metrics address (both binaries serve it there).
    pub async fn wait_ready(&mut self) -> Result<()> {
        let addr = self.metrics_addr();
        self.wait_ok(addr, "/readyz", Duration::from_secs(90)).await
    }

    /// SIGTERM, then up to `grace` for a clean exit, then SIGKILL.
    pub async fn stop(mut self, grace: Duration) -> Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(anyhow!("{} did not exit within {grace:?} of SIGTERM", self.name))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------- PostgreSQL

pub async fn admin(env: &Env) -> Result<DatabaseConnection> {
    Database::connect(env.admin_url.as_str())
        .await
        .with_context(|| format!("PostgreSQL is required at {}", env.admin_url))
}

/// A fresh database; its URL.
pub async fn create_database(env: &Env, name: &str) -> Result<String> {
    let conn = admin(env).await?;
    conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
    conn.close().await?;
    Ok(env.database_url(name))
}

pub async fn drop_database(env: &Env, name: &str) -> Result<()> {
    let conn = admin(env).await?;
    conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    conn.close().await?;
    Ok(())
}

pub async fn database_exists(env: &Env, name: &str) -> Result<bool> {
    let conn = admin(env).await?;
    let row = conn
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await?;
    conn.close().await?;
    Ok(row.and_then(|r| r.try_get_by_index::<i64>(0).ok()).unwrap_or(0) > 0)
}

/// The real `analytics-migrate up`.
pub fn migrate(env: &Env, database_url: &str) -> Result<()> {
    let out = Command::new(env.bin("analytics-migrate"))
        .arg("up")
        .env("DATABASE_URL", database_url)
        .env("MIGRATE_WAIT_SECONDS", "10")
        .env("RUST_LOG", "warn")
        .output()
        .context("running analytics-migrate")?;
    if !out.status.success() {
        bail!("analytics-migrate up failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

pub async fn count_rows(url: &str, table: &str) -> Result<i64> {
    let db = Database::connect(url).await?;
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            backend,
            format!("SELECT count(*) FROM {table}"),
        ))
        .await?;
    db.close().await?;
    row.and_then(|r| r.try_get_by_index::<i64>(0).ok())
        .ok_or_else(|| anyhow!("count(*) of {table} gave no row"))
}

// --------------------------------------------------------------------- Kafka

fn kafka_admin(env: &Env) -> Result<AdminClient<DefaultClientContext>> {
    Ok(ClientConfig::new().set("bootstrap.servers", &env.brokers).create()?)
}

/// A fresh topic and its dead-letter topic (`<topic>.dlq`), created through
/// the Kafka admin API as the integration tests do.
pub async fn create_topics(env: &Env, topic: &str, partitions: i32) -> Result<()> {
    let admin = kafka_admin(env)?;
    let dlq = format!("{topic}.dlq");
    let specs = [
        NewTopic::new(topic, partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&dlq, 1, TopicReplication::Fixed(1)),
    ];
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = tokio::time::timeout(Duration::from_secs(20), admin.create_topics(&specs, &opts))
        .await
        .map_err(|_| anyhow!("a Kafka-protocol broker is required at {}", env.brokers))??;
    for r in results {
        r.map_err(|(t, e)| anyhow!("creating topic {t}: {e}"))?;
    }
    Ok(())
}

/// Best effort: frees the broker's memory after a scenario.
pub async fn delete_topics(env: &Env, topic: &str) {
    if let Ok(admin) = kafka_admin(env) {
        let dlq = format!("{topic}.dlq");
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let _ = tokio::time::timeout(Duration::from_secs(20), admin.delete_topics(&[topic, &dlq], &opts)).await;
    }
}

/// The environment of a Kafka-mode service.
pub fn kafka_vars(env: &Env, database_url: &str, topic: &str, group: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_string()),
        ("KAFKA_BROKER_URLS", env.brokers.clone()),
        ("KAFKA_TOPIC", topic.to_string()),
        ("KAFKA_DLQ_TOPIC", format!("{topic}.dlq")),
        ("KAFKA_GROUP_ID", group.to_string()),
    ]
}

/// Reads a counter (summing every label set) from a Prometheus text page.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

pub async fn read_metric(addr: SocketAddr, name: &str) -> Option<f64> {
    metric_value(&read_metrics_page(addr).await?, name)
}

/// A service's whole `/metrics` page, to read several values of one moment
/// with `metric_value`.
pub async fn read_metrics_page(addr: SocketAddr) -> Option<String> {
    let (status, body) = get_once(addr, "/metrics", Duration::from_secs(2)).await.ok()?;
    status.is_success().then(|| String::from_utf8_lossy(&body).into_owned())
}

// -------------------------------------------------------------------- memory

/// VmRSS and VmHWM (peak RSS since start) of a process, in kB.
pub fn read_rss_kb(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Memory of one process over a sampling window.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
#[serde(default)]
pub struct MemoryUse {
    /// Largest VmRSS sampled in the window (every 50 ms).
    pub peak_rss_mb: f64,
    /// VmHWM at the end of the window: peak RSS since the process started.
    pub hwm_mb: f64,
    /// VmRSS at the end of the window.
    pub end_rss_mb: f64,
}

/// Samples VmRSS of some processes every 50 ms until stopped.
pub struct RssSampler {
    peaks: Arc<Mutex<BTreeMap<String, (u32, u64)>>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(procs: &[(&str, u32)]) -> Self {
        let peaks: BTreeMap<String, (u32, u64)> = procs.iter().map(|(n, p)| ((*n).to_string(), (*p, 0))).collect();
        let peaks = Arc::new(Mutex::new(peaks));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let shared = peaks.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(mut map) = shared.lock() {
                    for (pid, peak) in map.values_mut() {
                        if let Some((rss, _)) = read_rss_kb(*pid) {
                            *peak = (*peak).max(rss);
                        }
                    }
                }
                tokio::select! {
                    _ = stopped.changed() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        });
        Self { peaks, stop, task }
    }

    pub async fn finish(self) -> BTreeMap<String, MemoryUse> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let map = self.peaks.lock().map(|m| m.clone()).unwrap_or_default();
        #[allow(clippy::cast_precision_loss)]
        let mb = |kb: u64| kb as f64 / 1024.0;
        map.into_iter()
            .map(|(name, (pid, peak))| {
                let (rss, hwm) = read_rss_kb(pid).unwrap_or((0, 0));
                (
                    name,
                    MemoryUse {
                        peak_rss_mb: mb(peak.max(rss)),
                        hwm_mb: mb(hwm),
                        end_rss_mb: mb(rss),
                    },
                )
            })
            .collect()
    }
}

/// The bench binary's own directory (target/release), where the service
/// binaries are built too.
pub fn default_bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("no directory for {}", exe.display()))
}

/// User plus system CPU seconds the process has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which may hold spaces: utime and
    // stime are the 14th and 15th of the line, in clock ticks.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<f64>().ok())
        .sum();
    ticks / CLOCK_TICKS_PER_SECOND
}

/// Linux's `USER_HZ`, the unit of `/proc/<pid>/stat`'s CPU times.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_value_sums_label_sets_and_skips_prefixes() {
        let text = "# HELP analytics_events_written_total x\n\
                    analytics_events_written_total 41\n\
                    analytics_events_written_total_extra 5\n\
                    analytics_http_requests_total{route=\"/a\"} 2\n\
                    analytics_http_requests_total{route=\"/b\"} 3\n";
        assert_eq!(metric_value(text, "analytics_events_written_total"), Some(41.0));
        assert_eq!(metric_value(text, "analytics_http_requests_total"), Some(5.0));
        assert_eq!(metric_value(text, "analytics_nothing"), None);
    }

    #[test]
    fn reads_own_rss() {
        let (rss, hwm) = read_rss_kb(std::process::id()).unwrap_or_default();
        assert!(rss > 0 && hwm >= rss);
    }
}
