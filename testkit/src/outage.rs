//! Outages on demand: a Kafka-protocol broker of a test's own (tansu, from
//! `TANSU_BIN`), and a TCP proxy whose `cut` partitions a service from its
//! clients while the service keeps its state.

use crate::db::{log_dir, unique_name};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tansu_bin() -> String {
    std::env::var("TANSU_BIN").unwrap_or_else(|_| "tansu".into())
}

/// A broker of this test's own, listening on `port` but advertising
/// `advertised`: clients reach it only through the proxy there.
pub struct Broker {
    child: Child,
}

impl Broker {
    pub async fn start(port: u16, advertised: u16, topics: &[&str]) -> Self {
        let url = format!("tcp://127.0.0.1:{port}");
        let adv = format!("tcp://127.0.0.1:{advertised}");
        let log = std::fs::File::create(log_dir().join(format!("{}.log", unique_name("tansu")))).unwrap();
        let child = Command::new(tansu_bin())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &adv])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("the tansu broker binary is required (TANSU_BIN or PATH): {e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{port}"))
            .create()
            .unwrap();
        let specs: Vec<NewTopic> = topics
            .iter()
            .map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1)))
            .collect();
        for r in admin.create_topics(&specs, &AdminOptions::new()).await.unwrap() {
            r.unwrap();
        }
        Self { child }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Forwards 127.0.0.1:`port` to 127.0.0.1:`target`; `cut` closes the
/// listener and every open connection, as a network partition would, while
/// the service behind keeps its state.
pub struct Proxy {
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(port: u16, target: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { task }
    }

    pub fn cut(self) {
        self.task.abort(); // drops the listener and, with the JoinSet, every connection
    }
}
