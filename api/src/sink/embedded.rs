//! Embedded mode's writer: one task owning all writes, with group commit.
//! Requests queue their events; the task takes whatever has queued up (up to
//! a bound), writes it in one transaction through the shared writer, and only
//! then answers each request. Under load, many requests share one fsync.

use crate::error::ApiError;
use analytics_core::event::Event;
use analytics_core::ops::health::Liveness;
use analytics_core::ops::metrics::Metrics;
use analytics_core::store::Writer;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

pub const LOOP_NAME: &str = "embedded_writer";
const QUEUED_REQUESTS: usize = 4096;
const IDLE_TICK: Duration = Duration::from_secs(1);
/// The longest a group waits for the requests the previous commit answered.
const GATHER: Duration = Duration::from_millis(2);

struct Job {
    events: Vec<Event>,
    done: oneshot::Sender<Result<(), String>>,
}

#[derive(Clone)]
pub struct EmbeddedWriter {
    tx: mpsc::Sender<Job>,
    timeout: Duration,
}

impl EmbeddedWriter {
    /// Starts the writer task; it ends once every `EmbeddedWriter` is dropped
    /// and the queue is drained, so shutdown loses nothing already queued.
    pub fn spawn(
        writer: Writer,
        metrics: Arc<Metrics>,
        liveness: Arc<Liveness>,
        max_batch: usize,
        timeout: Duration,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUED_REQUESTS);
        liveness.register(LOOP_NAME, IDLE_TICK * 30);
        let handle = tokio::spawn(run(writer, rx, metrics, liveness, max_batch));
        (Self { tx, timeout }, handle)
    }

    pub async fn write(&self, events: Vec<Event>) -> Result<(), ApiError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send_timeout(Job { events, done }, self.timeout)
            .await
            .map_err(|_| ApiError::Unavailable("writer queue is full, retry later".into()))?;
        match tokio::time::timeout(self.timeout, wait).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => {
                tracing::error!(error = %e, "embedded commit failed");
                Err(ApiError::Unavailable("database could not commit, retry later".into()))
            }
            Ok(Err(_)) => Err(ApiError::Unavailable("writer stopped".into())),
            Err(_) => Err(ApiError::Unavailable("database commit timed out, retry later".into())),
        }
    }
}

async fn run(
    writer: Writer,
    mut rx: mpsc::Receiver<Job>,
    metrics: Arc<Metrics>,
    liveness: Arc<Liveness>,
    max_batch: usize,
) {
    // Requests the last commit answered. Their clients' next requests are
    // usually on their way: taking only what has queued would leave them
    // for the transaction after, so each client would wait two transactions
    // per request. The group waits for as many requests as the last one
    // answered, at most `GATHER`; a lone request (idle server) is never held.
    let mut answered = 0;
    loop {
        liveness.report(LOOP_NAME);
        let first = match tokio::time::timeout(IDLE_TICK, rx.recv()).await {
            Err(_) => continue,
            Ok(None) => break,
            Ok(Some(job)) => job,
        };
        let gather_until = tokio::time::Instant::now() + GATHER;
        let mut count = first.events.len();
        let mut jobs = vec![first];
        while count < max_batch {
            let next = match rx.try_recv() {
                Ok(job) => Some(job),
                Err(_) if jobs.len() >= answered => None,
                Err(_) => tokio::time::timeout_at(gather_until, rx.recv()).await.ok().flatten(),
            };
            let Some(job) = next else { break };
            count += job.events.len();
            jobs.push(job);
        }
        let mut events = Vec::with_capacity(count);
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            events.extend(job.events);
            replies.push(job.done);
        }
        let started = Instant::now();
        #[allow(clippy::cast_precision_loss)]
        metrics.batch_size.observe(events.len() as f64);
        let result = writer.write_owned(events).await;
        metrics.transaction_duration.observe(started.elapsed().as_secs_f64());
        let reply = match result {
            Ok(outcome) => {
                metrics.events_written.inc_by(outcome.inserted as u64);
                metrics.events_duplicate.inc_by(outcome.duplicates as u64);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        };
        answered = replies.len();
        for r in replies {
            let _ = r.send(reply.clone());
        }
    }
    tracing::info!("embedded writer drained and stopped");
}
