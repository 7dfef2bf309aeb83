//! The load generator: HTTP/1.1 keep-alive connections (hyper's low-level
//! `client::conn::http1`, one tokio TcpStream each), driven closed-loop
//! (each connection sends back-to-back: the maximum rate) or open-loop (a
//! target request rate; latency is measured from the *intended* send time, so
//! a server that stalls is charged for the requests it delayed — no
//! coordinated omission). Latencies go into HDR histograms (microseconds).

use crate::workload::Body;
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// One keep-alive HTTP/1.1 connection.
pub struct HttpConn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl HttpConn {
    pub async fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self {
            sender,
            host: addr.to_string(),
        })
    }

    /// Sends one request and reads the whole answer.
    pub async fn request(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<(StatusCode, Bytes)> {
        self.request_with(method, path, body, &[]).await
    }

    /// `request` with extra headers (a `Content-Type` among them replaces
    /// the JSON one).
    pub async fn request_with(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<(StatusCode, Bytes)> {
        self.sender.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.host.as_str());
        let typed = headers.iter().any(|(k, _)| k == hyper::header::CONTENT_TYPE);
        if body.is_some() && !typed {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    pub async fn get(&mut self, path: &str) -> Result<(StatusCode, Bytes)> {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&mut self, path: &str, body: Bytes) -> Result<(StatusCode, Bytes)> {
        self.request(Method::POST, path, Some(body)).await
    }
}

/// One GET on a fresh connection (for readiness probes and one-off reads).
pub async fn get_once(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(StatusCode, Bytes)> {
    tokio::time::timeout(timeout, async {
        let mut c = HttpConn::connect(addr).await?;
        c.get(path).await
    })
    .await
    .map_err(|_| anyhow!("GET {path} on {addr} timed out"))?
}

/// Closed loop (`Max`) or open loop at a target request rate (`Rate`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Mode {
    Max,
    Rate(f64),
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub path: String,
    pub bodies: Arc<Vec<Body>>,
    pub connections: usize,
    pub mode: Mode,
    /// Sent but not recorded, before the measured window.
    pub warmup: Duration,
    pub duration: Duration,
    /// Stop after this many requests in all (closed loop), whatever the time.
    pub max_requests: Option<u64>,
    /// Statuses counted as success.
    pub ok_status: StatusCode,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
#[serde(default)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// 1 µs to 10 minutes, 3 significant digits.
pub fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 600_000_000, 3).map_err(|e| anyhow!("creating a histogram: {e}"))
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
    h.saturating_record(us);
}

/// What one load run measured.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
#[serde(default)]
pub struct LoadResult {
    pub label: String,
    pub path: String,
    pub connections: usize,
    /// `max` or the target request rate.
    pub mode: String,
    pub duration_s: f64,
    /// Successful requests in the measured window.
    pub requests: u64,
    /// Events in those requests.
    pub events: u64,
    pub req_per_s: f64,
    pub events_per_s: f64,
    pub latency: Latency,
    /// Failed requests by cause (`status 503`, `connection: …`).
    pub errors: BTreeMap<String, u64>,
    pub error_total: u64,
    /// Everything the server acknowledged, warm-up included (for sanity checks
    /// against rows stored).
    pub events_acked_total: u64,
}

struct WorkerOut {
    hist: Histogram<u64>,
    requests: u64,
    events: u64,
    acked_total: u64,
    errors: BTreeMap<String, u64>,
    last_done: Option<Instant>,
}

fn error_key(e: &anyhow::Error) -> String {
    let mut s = format!("connection: {e}");
    if let Some(src) = e.source() {
        s = format!("connection: {e}: {src}");
    }
    s.chars().take(120).collect()
}

/// Runs `spec` against `addr` and reports the measured window.
pub async fn run(addr: SocketAddr, label: &str, spec: &LoadSpec) -> Result<LoadResult> {
    if spec.bodies.is_empty() {
        return Err(anyhow!("no request bodies"));
    }
    let start = Instant::now();
    let measure_start = start + spec.warmup;
    let end = measure_start + spec.duration;
    let slots = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(spec.connections);
    for w in 0..spec.connections {
        let spec = spec.clone();
        let slots = slots.clone();
        let hist = new_histogram()?;
        tasks.push(tokio::spawn(async move {
            worker(addr, w, &spec, &slots, hist, (start, measure_start, end)).await
        }));
    }
    let mut hist = new_histogram()?;
    let (mut requests, mut events, mut acked) = (0u64, 0u64, 0u64);
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_done = measure_start;
    for t in tasks {
        let out = t.await?;
        hist.add(&out.hist).map_err(|e| anyhow!("merging histograms: {e}"))?;
        requests += out.requests;
        events += out.events;
        acked += out.acked_total;
        for (k, v) in out.errors {
            *errors.entry(k).or_default() += v;
        }
        if let Some(t) = out.last_done {
            last_done = last_done.max(t);
        }
    }
    let duration_s = last_done
        .saturating_duration_since(measure_start)
        .as_secs_f64()
        .max(1e-9);
    #[allow(clippy::cast_precision_loss)]
    Ok(LoadResult {
        label: label.to_string(),
        path: spec.path.clone(),
        connections: spec.connections,
        mode: match spec.mode {
            Mode::Max => "max".to_string(),
            Mode::Rate(r) => format!("{r} req/s"),
        },
        duration_s,
        requests,
        events,
        req_per_s: requests as f64 / duration_s,
        events_per_s: events as f64 / duration_s,
        latency: Latency::from_histogram(&hist),
        error_total: errors.values().sum(),
        errors,
        events_acked_total: acked,
    })
}

async fn worker(
    addr: SocketAddr,
    w: usize,
    spec: &LoadSpec,
    slots: &AtomicU64,
    hist: Histogram<u64>,
    (start, measure_start, end): (Instant, Instant, Instant),
) -> WorkerOut {
    let mut out = WorkerOut {
        hist,
        requests: 0,
        events: 0,
        acked_total: 0,
        errors: BTreeMap::new(),
        last_done: None,
    };
    let n = spec.bodies.len();
    // Spread the connections over the pool so they do not send the same bodies.
    let mut k = w.wrapping_mul(7919) % n;
    let mut conn: Option<HttpConn> = None;
    loop {
        // When this request is meant to go out.
        let intended = match spec.mode {
            Mode::Max => {
                if let Some(max) = spec.max_requests {
                    if slots.fetch_add(1, Ordering::Relaxed) >= max {
                        break;
                    }
                }
                let now = Instant::now();
                if now >= end {
                    break;
                }
                now
            }
            Mode::Rate(rate) => {
                let i = slots.fetch_add(1, Ordering::Relaxed);
                if spec.max_requests.is_some_and(|m| i >= m) {
                    break;
                }
                #[allow(clippy::cast_precision_loss)]
                let at = start + Duration::from_secs_f64(i as f64 / rate.max(1e-6));
                if at >= end {
                    break;
                }
                tokio::time::sleep_until(at).await;
                at
            }
        };
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match HttpConn::connect(addr).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    *out.errors.entry(error_key(&e)).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let body = &spec.bodies[k % n];
        k = k.wrapping_add(1);
        let res = c
            .request_with(Method::POST, &spec.path, Some(body.bytes.clone()), &body.headers)
            .await;
        let done = Instant::now();
        let measured = intended >= measure_start;
        match res {
            Ok((status, _)) if status == spec.ok_status => {
                out.acked_total += body.events;
                if measured {
                    record(&mut out.hist, done.saturating_duration_since(intended));
                    out.requests += 1;
                    out.events += body.events;
                    out.last_done = Some(done);
                }
            }
            Ok((status, _)) => {
                if measured {
                    *out.errors.entry(format!("status {}", status.as_u16())).or_default() += 1;
                    out.last_done = Some(done);
                }
            }
            Err(e) => {
                if measured {
                    *out.errors.entry(error_key(&e)).or_default() += 1;
                }
                conn = None;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_from_histogram_in_ms() {
        let mut h = new_histogram().unwrap();
        for us in 1..=1000u64 {
            h.saturating_record(us * 1000);
        }
        let l = Latency::from_histogram(&h);
        assert_eq!(l.count, 1000);
        assert!((l.p50_ms - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.p99_ms - 990.0).abs() < 2.0, "{l:?}");
        assert!((l.max_ms - 1000.0).abs() < 1.0, "{l:?}");
        assert_eq!(Latency::from_histogram(&new_histogram().unwrap()), Latency::default());
    }
}
