//! The real binaries as processes, for the tests that need one (kill -9,
//! SIGTERM, exit codes, OTLP from a process): process guards, and the api
//! and processor started as `target/<profile>/analytics-*`.

use crate::db::{log_dir, unique_name, TestDb};
use crate::kafka::{create_topics, kafka_brokers};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// target/<profile>/<name>: the binaries built beside this test executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

pub use crate::ports::free_port;

/// Runs `binary` with `args` and only `envs` (besides PATH) and returns its
/// standard output; fails the test with its standard error unless it exits 0.
pub fn run_ok(binary: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new(bin(binary))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(envs.iter().copied())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{binary} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn migrate(database_url: &str, args: &str) -> String {
    let args: Vec<&str> = args.split_whitespace().collect();
    run_ok(
        "analytics-migrate",
        &args,
        &[("DATABASE_URL", database_url), ("MIGRATE_WAIT_SECONDS", "5")],
    )
}

/// A running binary, killed when dropped. Output goes to target/test-logs.
pub struct Service {
    pub child: Child,
    pub http: u16,
    pub metrics: u16,
    pub log: PathBuf,
    name: String,
    envs: Vec<(String, String)>,
}

impl Service {
    pub fn start(binary: &str, envs: &[(&str, &str)]) -> Self {
        let envs: Vec<(String, String)> = envs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        Self::spawn(binary, envs, free_port(), free_port())
    }

    fn spawn(binary: &str, envs: Vec<(String, String)>, http: u16, metrics: u16) -> Self {
        let (child, log) = Self::spawn_child(binary, &envs, http, metrics);
        Self {
            child,
            http,
            metrics,
            log,
            name: binary.to_string(),
            envs,
        }
    }

    fn spawn_child(binary: &str, envs: &[(String, String)], http: u16, metrics: u16) -> (Child, PathBuf) {
        let log = log_dir().join(format!("{}.log", unique_name(binary)));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(bin(binary));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("HTTP_ADDR", format!("127.0.0.1:{http}"))
            .env("METRICS_ADDR", format!("127.0.0.1:{metrics}"))
            // Off unless a test sets them (its envs come after).
            .env("RATE_LIMIT_ADDRESS_PER_SECOND", "0")
            .env("RATE_LIMIT_SITE_EVENTS_PER_SECOND", "0")
            // Open unless a test of access sets them.
            .env("READ_AUTH", "open")
            .env("INGEST_AUTH", "open")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        (cmd.spawn().unwrap(), log)
    }

    /// Same binary, same settings, same ports: the process started again
    /// (after `kill9` or `sigterm`, or killing it now).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, log) = Self::spawn_child(&self.name, &self.envs, self.http, self.metrics);
        self.child = child;
        self.log = log;
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    pub fn ops(&self) -> String {
        format!("http://127.0.0.1:{}", self.metrics)
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `url` until it answers 200, or fails the test with the logs.
    pub async fn wait_ok(&mut self, url: &str, within: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before {url} was ready:\n{}",
                    self.name,
                    self.logs()
                );
            }
            if let Ok(r) = client.get(url).timeout(Duration::from_secs(2)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{url} not ready within {within:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_ready(&mut self) {
        let url = format!("{}/readyz", self.ops());
        self.wait_ok(&url, Duration::from_secs(60)).await;
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An api in embedded mode on its own SQLite file.
pub async fn embedded_api(db_file: &std::path::Path) -> Service {
    let url = format!("sqlite://{}?mode=rwc", db_file.display());
    let mut api = Service::start("analytics-api", &[("DATABASE_URL", &url)]);
    api.wait_ready().await;
    api
}

/// api + processor in Kafka mode on a fresh database and topic.
pub struct KafkaStack {
    pub db: TestDb,
    pub topic: String,
    pub dlq: String,
    pub api: Service,
    pub processor: Service,
}

impl KafkaStack {
    pub async fn start(partitions: i32) -> Self {
        Self::start_with(partitions, &[]).await
    }

    /// With extra settings for both services.
    pub async fn start_with(partitions: i32, extra: &[(&str, &str)]) -> Self {
        let db = TestDb::migrated().await;
        let (topic, dlq) = create_topics(partitions).await;
        let group = unique_name("group");
        let brokers = kafka_brokers();
        let mut env = vec![
            ("DATABASE_URL", db.url.as_str()),
            ("KAFKA_BROKER_URLS", brokers.as_str()),
            ("KAFKA_TOPIC", topic.as_str()),
            ("KAFKA_DLQ_TOPIC", dlq.as_str()),
            ("KAFKA_GROUP_ID", group.as_str()),
        ];
        env.extend_from_slice(extra);
        let mut api = Service::start("analytics-api", &env);
        let mut processor = Service::start("analytics-processor", &env);
        api.wait_ready().await;
        processor.wait_ready().await;
        Self {
            db,
            topic,
            dlq,
            api,
            processor,
        }
    }
}
