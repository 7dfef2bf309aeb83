//! The api and the processor in the test's own process, on port 0, built
//! from the same configuration parsing and `build` as the binaries: what
//! contract tests run against.

use crate::db::{temp_sqlite, unique_name, TestDb};
use crate::kafka::{create_topics, kafka_brokers};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A service running on the test's runtime; stopped when dropped.
pub struct Running {
    pub base: String,
    pub ops: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

fn args<'a>(binary: &'a str, flags: &[(&'a str, &'a str)]) -> Vec<String> {
    let mut out = vec![binary.to_string()];
    for (k, v) in flags {
        out.push(format!("--{k}"));
        out.push((*v).to_string());
    }
    out
}

const LOCAL: [(&str, &str); 2] = [("http-addr", "127.0.0.1:0"), ("metrics-addr", "127.0.0.1:0")];

/// Reads and ingest open (Kafka mode needs keys and registered sites
/// otherwise).
pub const OPEN_ACCESS: [(&str, &str); 2] = [("read-auth", "open"), ("ingest-auth", "open")];

/// Rate limits are off unless a test sets them: workloads send thousands
/// of requests from one address, and the limits have tests of their own.
pub const NO_RATE_LIMITS: [(&str, &str); 2] = [
    ("rate-limit-address-per-second", "0"),
    ("rate-limit-site-events-per-second", "0"),
];

impl Running {
    /// The api with these `--flag value` settings (listening on port 0).
    pub async fn api(flags: &[(&str, &str)]) -> Self {
        let mut all: Vec<(&str, &str)> = LOCAL
            .into_iter()
            .filter(|(k, _)| !flags.iter().any(|(f, _)| f == k))
            .collect();
        for default in NO_RATE_LIMITS {
            if !flags.iter().any(|(k, _)| *k == default.0) {
                all.push(default);
            }
        }
        all.extend_from_slice(flags);
        let cfg = <analytics_api::ApiConfig as clap::Parser>::try_parse_from(args("analytics-api", &all)).unwrap();
        let app = analytics_api::Application::build(cfg).await.unwrap();
        let base = format!("http://{}", app.http_addr().unwrap());
        let ops = format!("http://{}", app.ops_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let running = Self {
            base,
            ops,
            stop: Some(stop),
            task: Some(task),
        };
        running.wait_ready().await;
        running
    }

    /// The processor with these settings (metrics on port 0).
    pub async fn processor(flags: &[(&str, &str)]) -> Self {
        let mut all = vec![("metrics-addr", "127.0.0.1:0")];
        all.extend_from_slice(flags);
        let cfg =
            <analytics_processor::ProcessorConfig as clap::Parser>::try_parse_from(args("analytics-processor", &all))
                .unwrap();
        let p = analytics_processor::Processor::build(cfg).await.unwrap();
        let ops = format!("http://{}", p.ops_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(p.run_until(async move {
            let _ = stopped.await;
        }));
        let running = Self {
            base: ops.clone(),
            ops,
            stop: Some(stop),
            task: Some(task),
        };
        running.wait_ready().await;
        running
    }

    /// The api in embedded mode on a fresh SQLite file.
    pub async fn embedded() -> Self {
        let url = format!("sqlite://{}?mode=rwc", temp_sqlite().display());
        Self::api(&[("database-url", &url)]).await
    }

    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let url = format!("{}/readyz", self.ops);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(&url).timeout(Duration::from_secs(2)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{url} not ready within 60 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops it as SIGTERM would, and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// api + processor in Kafka mode, in-process, on a fresh database and topic.
pub struct Stack {
    pub db: TestDb,
    pub topic: String,
    pub dlq: String,
    pub group: String,
    pub api: Running,
    pub processor: Running,
}

impl Stack {
    pub async fn start(partitions: i32) -> Self {
        Self::start_with(partitions, &[], &[]).await
    }

    /// With extra `--flag value` settings for the api and the processor.
    pub async fn start_with(partitions: i32, api_flags: &[(&str, &str)], processor_flags: &[(&str, &str)]) -> Self {
        let db = TestDb::migrated().await;
        let (topic, dlq) = create_topics(partitions).await;
        let group = unique_name("group");
        let brokers = kafka_brokers();
        let common = [
            ("database-url", db.url.as_str()),
            ("broker-urls", brokers.as_str()),
            ("kafka-topic", topic.as_str()),
            ("kafka-dlq-topic", dlq.as_str()),
        ];
        let mut a = common.to_vec();
        // Open unless a test of access sets them: most tests are about
        // something else, and send to sites nobody registered.
        for (flag, value) in OPEN_ACCESS {
            if !api_flags.iter().any(|(k, _)| *k == flag) {
                a.push((flag, value));
            }
        }
        a.extend_from_slice(api_flags);
        let api = Running::api(&a).await;
        let mut p = common.to_vec();
        p.push(("group-id", group.as_str()));
        p.extend_from_slice(processor_flags);
        let processor = Running::processor(&p).await;
        Self {
            db,
            topic,
            dlq,
            group,
            api,
            processor,
        }
    }
}
