//! Embedded mode's writer: one task owning all writes, with group commit.
//! Requests queue their events; the task takes whatever has queued up (up to
//! a bound), writes it in one transaction through the shared writer, and only
//! then answers each request. Under load, many requests share one fsync.
//! The queue is bounded twice: in requests (`QUEUED_REQUESTS`) and in the
//! bytes of their events (`EMBEDDED_QUEUE_MB`).

use crate::error::ApiError;
use analytics_core::event::Event;
use analytics_core::ingest::WriteOutcome;
use analytics_core::ops::health::Liveness;
use analytics_core::ops::metrics::Metrics;
use analytics_core::store::{StoreError, Writer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

pub const LOOP_NAME: &str = "embedded_writer";
const QUEUED_REQUESTS: usize = 4096;
const IDLE_TICK: Duration = Duration::from_secs(1);
/// The longest a group waits for the requests the previous commit answered.
const GATHER: Duration = Duration::from_millis(2);

struct Job {
    events: Vec<Event>,
    done: oneshot::Sender<Reply>,
    /// The job's share of the queue's bytes, given back once it is answered.
    bytes: OwnedSemaphorePermit,
}

/// What a request's events met.
#[derive(Debug, Clone)]
enum Reply {
    Written,
    /// The database refused this request's events for their data.
    Refused(String),
    /// The commit failed for a reason worth retrying (or a bug).
    Failed(String),
}

#[derive(Clone)]
pub struct EmbeddedWriter {
    tx: mpsc::Sender<Job>,
    /// The queue's bound in bytes (`EMBEDDED_QUEUE_MB`): a request takes its
    /// events' bytes or is answered 503 at once.
    bytes: Arc<Semaphore>,
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
        queue_bytes: usize,
        timeout: Duration,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUED_REQUESTS);
        liveness.register(LOOP_NAME, IDLE_TICK * 30);
        let handle = tokio::spawn(run(writer, rx, metrics, liveness, max_batch));
        let bytes = Arc::new(Semaphore::new(queue_bytes.min(Semaphore::MAX_PERMITS)));
        (Self { tx, bytes, timeout }, handle)
    }

    pub async fn write(&self, events: Vec<Event>) -> Result<(), ApiError> {
        let size: usize = events.iter().map(Event::approx_bytes).sum();
        let permit = u32::try_from(size)
            .ok()
            .and_then(|n| self.bytes.clone().try_acquire_many_owned(n).ok())
            .ok_or_else(|| ApiError::Unavailable("writer queue is full, retry later".into()))?;
        let (done, wait) = oneshot::channel();
        let job = Job {
            events,
            done,
            bytes: permit,
        };
        self.tx
            .send_timeout(job, self.timeout)
            .await
            .map_err(|_| ApiError::Unavailable("writer queue is full, retry later".into()))?;
        match tokio::time::timeout(self.timeout, wait).await {
            Ok(Ok(Reply::Written)) => Ok(()),
            Ok(Ok(Reply::Refused(e))) => Err(ApiError::Refused(e)),
            Ok(Ok(Reply::Failed(e))) => {
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
        let mut jobs_of = Vec::with_capacity(jobs.len());
        let mut permits = Vec::with_capacity(jobs.len());
        for job in jobs {
            jobs_of.push((job.events.len(), job.done));
            events.extend(job.events);
            permits.push(job.bytes);
        }
        answered = jobs_of.len();
        for (done, reply) in commit(&writer, &metrics, events, jobs_of).await {
            let _ = done.send(reply);
        }
        drop(permits);
    }
    tracing::info!("embedded writer drained and stopped");
}

/// Writes a group in one transaction and answers every request of it. If
/// the database refuses the group's data, each request is written alone,
/// so that only the one holding the refused event is answered so (a 422),
/// and the others are written.
async fn commit(
    writer: &Writer,
    metrics: &Metrics,
    events: Vec<Event>,
    jobs: Vec<(usize, oneshot::Sender<Reply>)>,
) -> Vec<(oneshot::Sender<Reply>, Reply)> {
    let started = Instant::now();
    #[allow(clippy::cast_precision_loss)]
    metrics.batch_size.observe(events.len() as f64);
    let result = writer.write_owned(events).await;
    metrics.transaction_duration.observe(started.elapsed().as_secs_f64());
    metrics.set_known_users(writer.state().known.len());
    match result {
        Ok(outcome) => {
            count(metrics, outcome);
            jobs.into_iter().map(|(_, done)| (done, Reply::Written)).collect()
        }
        Err((e, events)) if e.is_rejected_data() && jobs.len() > 1 => {
            tracing::warn!(error = %e, requests = jobs.len(), "the database refused a group's data; writing its requests one by one");
            let mut rest = events.into_iter();
            let mut replies = Vec::with_capacity(jobs.len());
            for (n, done) in jobs {
                let own: Vec<Event> = rest.by_ref().take(n).collect();
                let reply = match writer.write_owned(own).await {
                    Ok(outcome) => {
                        count(metrics, outcome);
                        Reply::Written
                    }
                    Err((e, _)) => reply_for(&e),
                };
                replies.push((done, reply));
            }
            replies
        }
        Err((e, _)) => {
            let reply = reply_for(&e);
            jobs.into_iter().map(|(_, done)| (done, reply.clone())).collect()
        }
    }
}

fn count(metrics: &Metrics, outcome: WriteOutcome) {
    metrics.events_written.inc_by(outcome.inserted as u64);
    metrics.events_duplicate.inc_by(outcome.duplicates as u64);
}

fn reply_for(e: &StoreError) -> Reply {
    if e.is_rejected_data() {
        Reply::Refused("the database refused an event of this request".into())
    } else {
        Reply::Failed(e.to_string())
    }
}
