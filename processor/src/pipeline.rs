//! The consume loop: collect a batch (bounded in size and time), send dead
//! letters, write the events in one transaction, and only then commit the
//! offsets. A crash anywhere before the commit means redelivery, which the
//! writer turns into a no-op through `event_id`.

use crate::batch::{Batch, DeadLetter};
use crate::config::ProcessorConfig;
use analytics_core::health::Liveness;
use analytics_core::kafka::DLQ_REASON_HEADER;
use analytics_core::metrics::Metrics;
use analytics_core::telemetry;
use analytics_core::writer::Writer;
use opentelemetry::trace::TraceContextExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const LOOP_NAME: &str = "consumer";
/// Even when idle the loop wakes this often to report that it is alive.
pub const IDLE_TICK: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(10);

pub struct Pipeline {
    pub cfg: ProcessorConfig,
    pub consumer: Arc<StreamConsumer>,
    pub dlq: FutureProducer,
    pub writer: Writer,
    pub metrics: Arc<Metrics>,
    pub liveness: Arc<Liveness>,
    /// Next offset to read per partition, as committed; read by the lag task.
    pub next_offsets: NextOffsets,
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

/// Messages behind, per partition: the high watermark minus the committed
/// position. Asked of the broker on its own schedule, off the write path.
pub async fn report_lag(consumer: Arc<StreamConsumer>, next: NextOffsets, metrics: Arc<Metrics>) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let snapshot: Vec<_> = next.lock().map(|m| m.clone().into_iter().collect()).unwrap_or_default();
        let c = consumer.clone();
        let lags = tokio::task::spawn_blocking(move || {
            snapshot
                .into_iter()
                .filter_map(|((topic, partition), offset)| {
                    c.fetch_watermarks(&topic, partition, Duration::from_secs(2))
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

impl Pipeline {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut next = self.collect(&mut stop).await;
        while !*stop.borrow() {
            let batch = std::mem::take(&mut next);
            if batch.messages == 0 {
                next = self.collect(&mut stop).await;
                continue;
            }
            let span = batch_span(&self.cfg.kafka.topic, &batch);
            // The next batch is read and parsed while this one is written:
            // the database, not the consumer, then bounds catch-up speed.
            // Offsets are still committed in order, by `handle` alone.
            let mut collect_stop = stop.clone();
            let (written, following) = tokio::join!(
                self.handle(batch, &mut stop).instrument(span),
                self.collect(&mut collect_stop)
            );
            if !written {
                break;
            }
            next = following;
        }
        tracing::info!("consume loop stopped");
    }

    async fn collect(&self, stop: &mut watch::Receiver<bool>) -> Batch {
        let mut batch = Batch::default();
        let mut deadline: Option<tokio::time::Instant> = None;
        while batch.messages < self.cfg.batch_max_events {
            self.liveness.report(LOOP_NAME);
            let wait = deadline.map_or(IDLE_TICK, |d| d.saturating_duration_since(tokio::time::Instant::now()));
            tokio::select! {
                _ = stop.changed() => break,
                r = tokio::time::timeout(wait, self.consumer.recv()) => match r {
                    Err(_) if deadline.is_some() => break,
                    Err(_) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "consume error");
                        if deadline.is_some() { break; }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Ok(Ok(m)) => {
                        batch.add(m.detach());
                        deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.cfg.batch_max_wait());
                    }
                }
            }
        }
        batch
    }

    /// Dead letters, write, commit. Retries database and broker failures
    /// until they succeed or shutdown is asked for (returns false then: the
    /// batch is left uncommitted and will be redelivered).
    async fn handle(&self, batch: Batch, stop: &mut watch::Receiver<bool>) -> bool {
        self.metrics.messages_consumed.inc_by(batch.messages as u64);
        let mut backoff = Duration::from_millis(100);
        for dead in &batch.dead {
            loop {
                match self.dead_letter(dead).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "dead-letter produce failed; retrying");
                        if !self.pause(&mut backoff, stop).await {
                            return false;
                        }
                    }
                }
            }
            self.metrics.events_dead_lettered.inc();
        }

        backoff = Duration::from_millis(100);
        let outcome = loop {
            self.liveness.report(LOOP_NAME);
            let started = Instant::now();
            let write_span = tracing::info_span!(
                "db.write",
                otel.name = "INSERT events",
                otel.kind = "client",
                db.system.name = "postgresql",
                db.operation.name = "INSERT",
                db.collection.name = "events",
            );
            match self.writer.write(&batch.events).instrument(write_span).await {
                Ok(o) => {
                    self.metrics
                        .transaction_duration
                        .observe(started.elapsed().as_secs_f64());
                    break o;
                }
                Err(e) => {
                    tracing::error!(error = %e, events = batch.events.len(), "batch write failed; retrying");
                    if !self.pause(&mut backoff, stop).await {
                        return false;
                    }
                }
            }
        };
        #[allow(clippy::cast_precision_loss)]
        self.metrics.batch_size.observe(batch.events.len() as f64);
        self.metrics.events_written.inc_by(outcome.inserted as u64);
        self.metrics.events_duplicate.inc_by(outcome.duplicates as u64);

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

    async fn pause(&self, backoff: &mut Duration, stop: &mut watch::Receiver<bool>) -> bool {
        self.liveness.report(LOOP_NAME);
        tokio::select! {
            _ = stop.changed() => return false,
            () = tokio::time::sleep(*backoff) => {}
        }
        *backoff = (*backoff * 2).min(RETRY_MAX);
        true
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
            .send(record, Duration::from_secs(5))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    }
}
