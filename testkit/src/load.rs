//! A steady load for fault tests: batches of events with client-assigned
//! ids posted in a loop, remembering which ids got 202. A batch that fails
//! (503, a reset connection, a timeout) is resent with the same ids until
//! it is acknowledged or the load stops, as a well-behaved client would;
//! afterwards every acknowledged id must be stored exactly once.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    acked: Arc<Mutex<Vec<String>>>,
    /// Requests that did not get 202 (each was resent).
    pub failures: Arc<AtomicUsize>,
}

/// `batch` events a request, from `clients` concurrent clients, each
/// pausing `pause` between requests, to `base` (read anew each request, so
/// a restarted service on the same port is found again).
pub fn start(base: String, site: &str, clients: usize, batch: usize, pause: Duration) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(AtomicUsize::new(0));
    let tasks = (0..clients)
        .map(|_| {
            let (stop, acked, failures, base, site) = (
                stop.clone(),
                acked.clone(),
                failures.clone(),
                base.clone(),
                site.to_string(),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let ids: Vec<String> = (0..batch).map(|_| uuid::Uuid::now_v7().to_string()).collect();
                    let body: Vec<Value> = ids
                        .iter()
                        .map(|id| {
                            json!({"site_id": site, "event_type": "page_view", "path": "/load", "event_id": id,
                                   "user_id": format!("u{}", &id[30..]), "timestamp": "2025-11-15T12:00:00Z"})
                        })
                        .collect();
                    // Resent until acknowledged, or the load stops.
                    loop {
                        let sent = client.post(format!("{base}/events/batch")).json(&body).send().await;
                        if sent.is_ok_and(|r| r.status() == 202) {
                            acked.lock().unwrap().extend(ids);
                            break;
                        }
                        failures.fetch_add(1, Ordering::Relaxed);
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    tokio::time::sleep(pause).await;
                }
            })
        })
        .collect();
    Load {
        stop,
        tasks,
        acked,
        failures,
    }
}

impl Load {
    /// Stops the clients and returns every acknowledged id.
    pub async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let acked = self.acked.lock().unwrap();
        acked.clone()
    }

    pub fn acknowledged(&self) -> usize {
        self.acked.lock().unwrap().len()
    }
}
