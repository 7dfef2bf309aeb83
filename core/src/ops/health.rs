//! Liveness and readiness, kept apart. Liveness: every long-running loop
//! reports in; one that has not for longer than its allowance makes the
//! process unhealthy (so Kubernetes restarts it). Readiness: every dependency
//! check passes right now; it recovers by itself when they do.

use axum::{http::StatusCode, response::IntoResponse, routing::get, Json, Router};
use futures::future::BoxFuture;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Liveness {
    loops: Mutex<BTreeMap<&'static str, (Instant, Duration)>>,
}

impl Liveness {
    pub fn register(&self, name: &'static str, allowance: Duration) {
        if let Ok(mut l) = self.loops.lock() {
            l.insert(name, (Instant::now(), allowance));
        }
    }

    pub fn report(&self, name: &'static str) {
        if let Ok(mut l) = self.loops.lock() {
            if let Some(entry) = l.get_mut(name) {
                entry.0 = Instant::now();
            }
        }
    }

    /// Names of loops that have stalled.
    pub fn stalled(&self) -> Vec<String> {
        let Ok(l) = self.loops.lock() else {
            return vec!["liveness registry poisoned".into()];
        };
        l.iter()
            .filter(|(_, (last, allowance))| last.elapsed() > *allowance)
            .map(|(name, (last, _))| format!("{name}: no report for {}s", last.elapsed().as_secs()))
            .collect()
    }
}

pub type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Wraps an async closure as a readiness check.
pub fn check<F, Fut>(f: F) -> Check
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

#[derive(Default, Clone)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

impl Readiness {
    pub fn with(mut self, name: &'static str, check: Check) -> Self {
        self.checks.push((name, check));
        self
    }

    /// Runs every check concurrently, each bounded in time.
    pub async fn run(&self) -> (bool, BTreeMap<&'static str, String>) {
        let results = futures::future::join_all(self.checks.iter().map(|(name, check)| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
            };
            (*name, outcome)
        }))
        .await;
        let ok = results.iter().all(|(_, r)| r.is_ok());
        let detail = results
            .into_iter()
            .map(|(n, r)| (n, r.err().unwrap_or_else(|| "ok".into())))
            .collect();
        (ok, detail)
    }
}

/// `/healthz` and `/readyz` answering 200, or 503 with the reason in JSON.
pub fn router(liveness: Arc<Liveness>, readiness: Readiness) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(move || {
                let l = liveness.clone();
                async move {
                    let stalled = l.stalled();
                    if stalled.is_empty() {
                        (StatusCode::OK, Json(json!({"status": "alive"}))).into_response()
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            Json(json!({"status": "stalled", "loops": stalled})),
                        )
                            .into_response()
                    }
                }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let r = readiness.clone();
                async move {
                    let (ok, checks) = r.run().await;
                    let status = if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    let word = if ok { "ready" } else { "not_ready" };
                    (status, Json(json!({"status": word, "checks": checks}))).into_response()
                }
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalled_loop_is_reported() {
        let l = Liveness::default();
        l.register("consumer", Duration::from_millis(0));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(l.stalled().len(), 1);
        l.register("consumer", Duration::from_secs(60));
        l.report("consumer");
        assert!(l.stalled().is_empty());
    }

    #[tokio::test]
    async fn readiness_reports_each_check() {
        let r = Readiness::default()
            .with("good", Arc::new(|| Box::pin(async { Ok(()) })))
            .with("bad", Arc::new(|| Box::pin(async { Err("down".to_string()) })));
        let (ok, detail) = r.run().await;
        assert!(!ok);
        assert_eq!(detail.get("good").map(String::as_str), Some("ok"));
        assert_eq!(detail.get("bad").map(String::as_str), Some("down"));
    }
}
