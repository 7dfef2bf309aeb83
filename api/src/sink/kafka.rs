//! Kafka mode's sink: events are answered 202 once every in-sync replica
//! has them (acks=all).

use crate::error::ApiError;
use analytics_core::event::payload::PayloadEncoder;
use analytics_core::event::Event;
use analytics_core::ops::metrics::Metrics;
use analytics_core::ops::telemetry;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tracing::Instrument;

pub struct KafkaSink {
    /// The producer and its generation, bumped at each replacement.
    producer: RwLock<(u64, FutureProducer)>,
    make: Box<dyn Fn() -> KafkaResult<FutureProducer> + Send + Sync>,
    topic: String,
    metrics: Arc<Metrics>,
    timeout: Duration,
    /// Whether traces are exported: each send is then a span, whose
    /// context travels in the messages' `traceparent` header.
    traced: bool,
}

impl KafkaSink {
    /// `make` builds a producer; it is called again whenever the current one
    /// hits a fatal error.
    pub fn new(
        make: Box<dyn Fn() -> KafkaResult<FutureProducer> + Send + Sync>,
        topic: String,
        metrics: Arc<Metrics>,
        timeout: Duration,
        traced: bool,
    ) -> KafkaResult<Self> {
        let producer = RwLock::new((0, make()?));
        Ok(Self {
            producer,
            make,
            topic,
            metrics,
            timeout,
            traced,
        })
    }

    pub fn current(&self) -> FutureProducer {
        self.generation().1
    }

    fn generation(&self) -> (u64, FutureProducer) {
        match self.producer.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// An idempotent producer whose epoch was fenced (its messages timed out
    /// while the broker was unreachable) or that hit a fatal error never
    /// recovers by itself; a fresh one does. Replaced once per generation, so
    /// many requests failing together cause one replacement.
    fn replace_if_broken(&self, generation: u64, err: &KafkaError) {
        let Ok(mut current) = self.producer.write() else { return };
        if current.0 != generation {
            return;
        }
        let fenced = matches!(
            err.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::UnknownProducerId
                    | RDKafkaErrorCode::OutOfOrderSequenceNumber
                    | RDKafkaErrorCode::Fatal
            )
        );
        if !fenced && current.1.client().fatal_error().is_none() {
            return;
        }
        match (self.make)() {
            Ok(fresh) => {
                tracing::warn!(error = %err, "producer cannot recover; replaced with a new one");
                *current = (generation + 1, fresh);
            }
            Err(e) => tracing::error!(error = %e, "could not replace the failed producer"),
        }
    }

    pub async fn publish(&self, events: &[Event]) -> Result<(), ApiError> {
        if !self.traced {
            return self.send_all(events).await;
        }
        let span = tracing::info_span!(
            "kafka.send",
            otel.name = format!("send {}", self.topic),
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.operation.type = "send",
            messaging.destination.name = self.topic.as_str(),
            messaging.batch.message_count = events.len(),
        );
        self.send_all(events).instrument(span).await
    }

    async fn send_all(&self, events: &[Event]) -> Result<(), ApiError> {
        let started = Instant::now();
        // One context for the request's events: the processor continues this trace.
        let traceparent = telemetry::traceparent(&tracing::Span::current());
        let (generation, producer) = self.generation();
        let mut deliveries = Vec::with_capacity(events.len());
        let mut encoder = PayloadEncoder::default();
        for e in events {
            let payload = encoder.encode(e).map_err(|err| ApiError::Internal(err.to_string()))?;
            let mut record = FutureRecord::to(&self.topic).key(e.site_id.as_bytes()).payload(payload);
            if let Some(tp) = &traceparent {
                record = record.headers(OwnedHeaders::new().insert(Header {
                    key: "traceparent",
                    value: Some(tp),
                }));
            }
            // Enqueue without waiting: a full queue is backpressure, answered
            // with 503 at once instead of holding the connection.
            match producer.send_result(record) {
                Ok(d) => deliveries.push(d),
                Err((err, _)) => {
                    tracing::warn!(error = %err, "producer enqueue failed");
                    self.replace_if_broken(generation, &err);
                    return Err(ApiError::Unavailable(
                        "event queue is full or unavailable, retry later".into(),
                    ));
                }
            }
        }
        self.metrics
            .producer_queue_depth
            .set(i64::from(producer.in_flight_count()));
        // Awaited in order, not through `join_all`: acks arrive about in
        // order, so this wakes about once per request instead of once per
        // event, without join_all's task per future.
        let all_acked = async {
            for delivery in deliveries {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((err, _))) => return Err(Some(err)),
                    Err(_) => return Err(None),
                }
            }
            Ok(())
        };
        match tokio::time::timeout(self.timeout, all_acked).await {
            Ok(Ok(())) => {}
            Ok(Err(Some(err))) => {
                tracing::warn!(error = %err, "delivery failed");
                self.replace_if_broken(generation, &err);
                return Err(ApiError::Unavailable("event broker unavailable, retry later".into()));
            }
            Ok(Err(None)) => return Err(ApiError::Unavailable("event producer is shutting down".into())),
            Err(_) => {
                return Err(ApiError::Unavailable(
                    "event broker did not acknowledge in time, retry later".into(),
                ))
            }
        }
        self.metrics.producer_delivery.observe(started.elapsed().as_secs_f64());
        Ok(())
    }
}
