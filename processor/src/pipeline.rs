//! The consume loop: messages go to the lane that owns their partition;
//! each lane collects a batch (bounded in size and time), sends dead
//! letters, writes the events in one transaction, and only then commits the
//! offsets of its partitions. A crash anywhere before the commit means redelivery, which the
//! writer turns into a no-op through `event_id`.

use crate::batch::{Batch, DeadLetter};
use crate::config::ProcessorConfig;
use analytics_core::event::payload::PayloadEncoder;
use analytics_core::event::Event;
use analytics_core::ingest::WriteOutcome;
use analytics_core::ops::health::Liveness;
use analytics_core::ops::kafka::DLQ_REASON_HEADER;
use analytics_core::ops::metrics::Metrics;
use analytics_core::ops::telemetry;
use analytics_core::store::{StoreError, Writer};
use opentelemetry::trace::TraceContextExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const LOOP_NAME: &str = "consumer";
/// Even when idle the loop wakes this often to report that it is alive.
pub const IDLE_TICK: Duration = Duration::from_secs(1);
/// Backoff between retries of a failed write or dead letter: from
/// `RETRY_FIRST`, doubling, at most `RETRY_MAX`.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// Pause after a consume error before reading again.
const CONSUME_ERROR_PAUSE: Duration = Duration::from_millis(200);
/// How often the lag per partition is asked of the broker, and how long
/// one answer may take.
const LAG_EVERY: Duration = Duration::from_secs(5);
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one dead letter may wait for its acknowledgement.
const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Pipeline {
    pub cfg: ProcessorConfig,
    pub consumer: Arc<StreamConsumer>,
    pub dlq: FutureProducer,
    pub writer: Writer,
    pub metrics: Arc<Metrics>,
    pub liveness: Arc<Liveness>,
    /// Next offset to read per partition, as committed; read by the lag task.
    pub next_offsets: NextOffsets,
    /// Set while dead letters cannot be written (readiness reads it).
    pub dlq_failing: Arc<AtomicBool>,
}

/// Links kept per batch span: enough to follow any traced event of a batch
/// without making one span carry thousands of links.
const MAX_LINKS: usize = 128;

/// The batch's span continues the trace of its first traced message and
/// links the traces of the others (messaging semantic conventions).
fn batch_span(topic: &str, batch: &Batch) -> tracing::Span {
    let span = tracing::info_span!(
        "kafka.process",
        otel.name = format!("process {topic}"),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.destination.name = topic,
        messaging.batch.message_count = batch.messages,
        trace_id = tracing::field::Empty,
    );
    let mut contexts = batch
        .traceparents
        .iter()
        .map(|tp| telemetry::context_from_traceparent(tp));
    if let Some(first) = contexts.next() {
        let _ = span.set_parent(first);
    }
    for cx in contexts.take(MAX_LINKS) {
        span.add_link(cx.span().span_context().clone());
    }
    let tid = telemetry::trace_id(&span);
    if !tid.is_empty() {
        span.record("trace_id", tid.as_str());
    }
    span
}

pub type NextOffsets = Arc<Mutex<BTreeMap<(String, i32), i64>>>;

/// A lane's end of the consume loop: its channel, and its room in bytes
/// (two batches' worth), taken by each message until its batch is written.
struct LaneTx {
    tx: mpsc::Sender<Queued>,
    bytes: Arc<Semaphore>,
    capacity: usize,
}

/// A message on its way to a lane, holding its share of the lane's bytes.
pub struct Queued {
    message: OwnedMessage,
    bytes: OwnedSemaphorePermit,
}

/// Messages behind, per partition: the high watermark minus the committed
/// position. Asked of the broker on its own schedule, off the write path.
pub async fn report_lag(consumer: Arc<StreamConsumer>, next: NextOffsets, metrics: Arc<Metrics>) {
    loop {
        tokio::time::sleep(LAG_EVERY).await;
        let snapshot: Vec<_> = next.lock().map(|m| m.clone().into_iter().collect()).unwrap_or_default();
        let c = consumer.clone();
        let lags = tokio::task::spawn_blocking(move || {
            snapshot
                .into_iter()
                .filter_map(|((topic, partition), offset)| {
                    c.fetch_watermarks(&topic, partition, WATERMARK_TIMEOUT)
                        .ok()
                        .map(|(_, high)| (partition, (high - offset).max(0)))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (partition, lag) in lags {
            metrics
                .lag_messages
                .with_label_values(&[&partition.to_string()])
                .set(lag);
        }
    }
}

/// Names under which the lanes report to the liveness registry.
const LANE_NAMES: [&str; MAX_LANES] = [
    "writer-0", "writer-1", "writer-2", "writer-3", "writer-4", "writer-5", "writer-6", "writer-7",
];
const MAX_LANES: usize = 8;

/// The names of the lanes `WRITER_LANES` asks for: what start-up registers
/// for liveness and what `run` spawns, so the two cannot disagree.
pub fn lane_names(lanes: u8) -> &'static [&'static str] {
    &LANE_NAMES[..usize::from(lanes).clamp(1, MAX_LANES)]
}

/// Which lane writes a partition's messages: always the same one, so a
/// partition's batches are written and committed in order.
pub fn lane_of(partition: i32, lanes: usize) -> usize {
    usize::try_from(partition).unwrap_or(0) % lanes.max(1)
}

impl Pipeline {
    /// The consumer feeds `WRITER_LANES` lanes, each writing the partitions
    /// it owns in its own transactions on its own connection. Messages are
    /// keyed by site, so lanes hold disjoint sites and their rollup rows
    /// never meet; one lane kept a single PostgreSQL backend busy while the
    /// other core idled (bench/README.md).
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let pipeline = Arc::new(self);
        let names = lane_names(pipeline.cfg.writer_lanes);
        let mut senders = Vec::with_capacity(names.len());
        let mut tasks = Vec::with_capacity(names.len());
        for name in names {
            // Room for the batch being collected and the next one, in
            // messages and in bytes.
            let (tx, rx) = mpsc::channel(pipeline.cfg.batch_max_events.max(1) * 2);
            let capacity = pipeline
                .cfg
                .batch_max_bytes
                .saturating_mul(2)
                .clamp(1, Semaphore::MAX_PERMITS);
            senders.push(LaneTx {
                tx,
                bytes: Arc::new(Semaphore::new(capacity)),
                capacity,
            });
            tasks.push(tokio::spawn(pipeline.clone().lane(name, rx, stop.clone())));
        }
        pipeline.dispatch(&senders, stop).await;
        drop(senders);
        for task in tasks {
            let _ = task.await;
        }
        tracing::info!("consume loop stopped");
    }

    /// Reads the topic and hands each message to its partition's lane,
    /// waiting when that lane is full (backpressure on the consumer).
    async fn dispatch(&self, lanes: &[LaneTx], mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            self.liveness.report(LOOP_NAME);
            let message = tokio::select! {
                _ = stop.changed() => break,
                r = tokio::time::timeout(IDLE_TICK, self.consumer.recv()) => match r {
                    Err(_) => continue,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "consume error");
                        tokio::time::sleep(CONSUME_ERROR_PAUSE).await;
                        continue;
                    }
                    Ok(Ok(m)) => m.detach(),
                }
            };
            let Some(lane) = lanes.get(lane_of(message.partition(), lanes.len())) else {
                break;
            };
            // A message larger than the lane's whole room takes all of it.
            let size = message.payload().map_or(0, <[u8]>::len).clamp(1, lane.capacity);
            let bytes = tokio::select! {
                _ = stop.changed() => break,
                p = lane.bytes.clone().acquire_many_owned(u32::try_from(size).unwrap_or(u32::MAX)) => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            tokio::select! {
                _ = stop.changed() => break,
                sent = lane.tx.send(Queued { message, bytes }) => if sent.is_err() { break },
            }
        }
    }

    /// One lane: the next batch is read and parsed while this one is
    /// written, so the database, not the consumer, bounds catch-up speed.
    /// Offsets are still committed in order, by `handle` alone.
    async fn lane(
        self: Arc<Self>,
        name: &'static str,
        mut rx: mpsc::Receiver<Queued>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut next = self.collect(name, &mut rx, &mut stop).await;
        while !*stop.borrow() {
            let Some(batch) = next.take() else { break };
            if batch.messages == 0 {
                next = self.collect(name, &mut rx, &mut stop).await;
                continue;
            }
            let span = batch_span(&self.cfg.kafka.topic, &batch);
            let mut collect_stop = stop.clone();
            let (written, following) = tokio::join!(
                self.handle(name, batch, &mut stop).instrument(span),
                self.collect(name, &mut rx, &mut collect_stop)
            );
            if !written {
                break;
            }
            next = following;
        }
    }

    /// A batch bounded in size and in time from its first message; `None`
    /// once the consumer has stopped and nothing is left to write.
    async fn collect(
        &self,
        name: &'static str,
        rx: &mut mpsc::Receiver<Queued>,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Batch> {
        let mut batch = Batch::default();
        let mut deadline: Option<tokio::time::Instant> = None;
        while batch.messages < self.cfg.batch_max_events && batch.bytes < self.cfg.batch_max_bytes {
            self.liveness.report(name);
            let wait = deadline.map_or(IDLE_TICK, |d| d.saturating_duration_since(tokio::time::Instant::now()));
            tokio::select! {
                _ = stop.changed() => break,
                r = tokio::time::timeout(wait, rx.recv()) => match r {
                    Err(_) if deadline.is_some() => break,
                    Err(_) => {}
                    Ok(None) if batch.messages == 0 => return None,
                    Ok(None) => break,
                    Ok(Some(m)) => {
                        batch.add(m.message);
                        batch.hold(m.bytes);
                        deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.cfg.batch_max_wait());
                    }
                }
            }
        }
        Some(batch)
    }

    /// Write (isolating events the database refuses), dead letters,
    /// commit. Retries database and broker failures until they succeed or
    /// shutdown is asked for (returns false then: the batch is left
    /// uncommitted and will be redelivered). Never skips a message.
    async fn handle(&self, name: &'static str, mut batch: Batch, stop: &mut watch::Receiver<bool>) -> bool {
        self.metrics.messages_consumed.inc_by(batch.messages as u64);
        let mut backoff = RETRY_FIRST;
        let outcome = loop {
            self.liveness.report(name);
            match self.write_isolating(&batch).await {
                Ok((outcome, refused)) => {
                    self.metrics.events_refused.inc_by(refused.len() as u64);
                    batch.dead.extend(refused);
                    break outcome;
                }
                Err(e) => {
                    tracing::error!(error = %telemetry::error_chain(&e), events = batch.events.len(), "batch write failed; retrying");
                    if !self.pause(name, &mut backoff, stop).await {
                        return false;
                    }
                }
            }
        };
        #[allow(clippy::cast_precision_loss)]
        self.metrics.batch_size.observe(batch.events.len() as f64);
        self.metrics.set_known_users(self.writer.state().known.len());
        self.metrics.events_written.inc_by(outcome.inserted as u64);
        self.metrics.events_duplicate.inc_by(outcome.duplicates as u64);

        backoff = RETRY_FIRST;
        for dead in &batch.dead {
            loop {
                match self.dead_letter(dead).await {
                    Ok(()) => {
                        self.dlq_failing.store(false, Ordering::Relaxed);
                        self.metrics.dead_letter_failing.set(0);
                        break;
                    }
                    Err(e) => {
                        // Loud: a metric and an alert rule, readiness, and an
                        // error line each try. The batch waits (its offsets
                        // are not committed) rather than lose the message.
                        self.dlq_failing.store(true, Ordering::Relaxed);
                        self.metrics.dead_letter_failing.set(1);
                        self.metrics.dead_letter_failures.inc();
                        tracing::error!(error = %e, "dead-letter produce failed; retrying, the batch waits");
                        if !self.pause(name, &mut backoff, stop).await {
                            return false;
                        }
                    }
                }
            }
            self.metrics.events_dead_lettered.inc();
        }

        match batch.commit_list() {
            Ok(tpl) => {
                let consumer = self.consumer.clone();
                let committed = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync)).await;
                match committed {
                    Ok(Ok(())) => {}
                    // The batch is written; a failed commit (rebalance) only
                    // means a harmless redelivery.
                    Ok(Err(e)) => tracing::warn!(error = %e, "offset commit failed; batch will be redelivered"),
                    Err(e) => tracing::warn!(error = %e, "offset commit task failed"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "building the offset list failed"),
        }
        self.record_lag(&batch);
        tracing::debug!(
            messages = batch.messages,
            written = outcome.inserted,
            duplicates = outcome.duplicates,
            dead = batch.dead.len(),
            "batch committed"
        );
        true
    }

    fn record_lag(&self, batch: &Batch) {
        if let Some(ts) = batch.newest_timestamp_ms {
            #[allow(clippy::cast_precision_loss)]
            let lag = (chrono::Utc::now().timestamp_millis() - ts).max(0) as f64 / 1000.0;
            self.metrics.lag_seconds.set(lag);
        }
        if let Ok(mut next) = self.next_offsets.lock() {
            for (tp, offset) in &batch.last_offsets {
                next.insert(tp.clone(), offset + 1);
            }
        }
    }

    async fn pause(&self, name: &'static str, backoff: &mut Duration, stop: &mut watch::Receiver<bool>) -> bool {
        self.liveness.report(name);
        tokio::select! {
            _ = stop.changed() => return false,
            () = tokio::time::sleep(*backoff) => {}
        }
        *backoff = (*backoff * 2).min(RETRY_MAX);
        true
    }

    /// One transaction for the batch; if the database refuses its data
    /// (not a transient failure), halves until each refused event stands
    /// alone, writes the rest, and returns the refused as dead letters. A
    /// transient failure part-way returns the error: the retry rewrites
    /// what was written, which the writer turns into duplicates.
    async fn write_isolating(&self, batch: &Batch) -> Result<(WriteOutcome, Vec<DeadLetter>), StoreError> {
        let first = match self.write_traced(&batch.events).await {
            Ok(outcome) => return Ok((outcome, Vec::new())),
            Err(e) if e.is_rejected_data() => e,
            Err(e) => return Err(e),
        };
        tracing::warn!(error = %telemetry::error_chain(&first), events = batch.events.len(), "the database refused the batch's data; isolating the events it refuses");
        let mut total = WriteOutcome::default();
        let mut refused = Vec::new();
        let all: Vec<usize> = (0..batch.events.len()).collect();
        let mut pending: Vec<Vec<usize>> = halves(&all);
        while let Some(part) = pending.pop() {
            let events: Vec<Event> = part.iter().filter_map(|&i| batch.events.get(i).cloned()).collect();
            match self.write_traced(&events).await {
                Ok(o) => {
                    total.inserted += o.inserted;
                    total.duplicates += o.duplicates;
                }
                Err(e) if e.is_rejected_data() && part.len() == 1 => {
                    refused.push(self.refused(batch, part[0], &e));
                }
                Err(e) if e.is_rejected_data() => pending.extend(halves(&part)),
                Err(e) => return Err(e),
            }
        }
        Ok((total, refused))
    }

    async fn write_traced(&self, events: &[Event]) -> Result<WriteOutcome, StoreError> {
        let started = Instant::now();
        let write_span = tracing::info_span!(
            "db.write",
            otel.name = "INSERT events",
            otel.kind = "client",
            db.system.name = "postgresql",
            db.operation.name = "INSERT",
            db.collection.name = "events",
        );
        let outcome = self.writer.write(events).instrument(write_span).await?;
        self.metrics
            .transaction_duration
            .observe(started.elapsed().as_secs_f64());
        Ok(outcome)
    }

    /// The dead letter of `batch.events[i]`, which the database refused:
    /// its payload (as the api encodes it), its site as key, its source
    /// partition and offset, and the database's reason.
    fn refused(&self, batch: &Batch, i: usize, why: &StoreError) -> DeadLetter {
        let (event, source) = (&batch.events[i], batch.sources[i]);
        let payload = PayloadEncoder::default().encode(event).map(<[u8]>::to_vec).ok();
        DeadLetter {
            message: OwnedMessage::new(
                payload,
                Some(event.site_id.as_bytes().to_vec()),
                self.cfg.kafka.topic.clone(),
                Timestamp::NotAvailable,
                source.partition,
                source.offset,
                None,
            ),
            reason: format!("the database refused the event: {}", telemetry::error_chain(why)),
        }
    }

    async fn dead_letter(&self, dead: &DeadLetter) -> Result<(), String> {
        let m = &dead.message;
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: DLQ_REASON_HEADER,
                value: Some(dead.reason.as_str()),
            })
            .insert(Header {
                key: "dlq-source-topic",
                value: Some(m.topic()),
            })
            .insert(Header {
                key: "dlq-source-partition",
                value: Some(&m.partition().to_string()),
            })
            .insert(Header {
                key: "dlq-source-offset",
                value: Some(&m.offset().to_string()),
            });
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.cfg.kafka.dlq_topic).headers(headers);
        if let Some(k) = m.key() {
            record = record.key(k);
        }
        if let Some(p) = m.payload() {
            record = record.payload(p);
        }
        tracing::warn!(reason = %dead.reason, partition = m.partition(), offset = m.offset(), "dead-lettering message");
        self.dlq
            .send(record, DEAD_LETTER_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    }
}

/// `part` in two halves (a single index stays whole).
fn halves(part: &[usize]) -> Vec<Vec<usize>> {
    if part.len() < 2 {
        return vec![part.to_vec()];
    }
    let (a, b) = part.split_at(part.len() / 2);
    vec![a.to_vec(), b.to_vec()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_always_goes_to_the_same_lane_and_every_lane_gets_some() {
        let lanes: Vec<usize> = (0..6).map(|p| lane_of(p, 2)).collect();
        assert_eq!(lanes, [0, 1, 0, 1, 0, 1]);
        assert_eq!(lane_of(5, 1), 0);
        assert_eq!(lane_of(-1, 3), 0);
        assert!((0..64).all(|p| lane_of(p, 8) < 8));
        assert_eq!(lane_names(2), ["writer-0", "writer-1"]);
        assert_eq!(lane_names(0).len(), 1);
        assert_eq!(lane_names(200).len(), MAX_LANES);
    }

    #[test]
    fn halving_isolates_every_index_once() {
        let all: Vec<usize> = (0..7).collect();
        let mut pending = halves(&all);
        let mut singles = Vec::new();
        while let Some(p) = pending.pop() {
            if p.len() == 1 {
                singles.push(p[0]);
            } else {
                pending.extend(halves(&p));
            }
        }
        singles.sort_unstable();
        assert_eq!(singles, all);
        assert_eq!(halves(&[3]), vec![vec![3]]);
    }
}
