//! Where accepted events go. A request is answered 202 only after its events
//! are durable: acknowledged by every in-sync replica (Kafka mode) or
//! committed to the database (embedded mode).

use crate::embedded::EmbeddedWriter;
use crate::error::ApiError;
use analytics_core::event::Event;
use analytics_core::metrics::Metrics;
use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub enum Sink {
    Kafka(KafkaSink),
    Embedded(EmbeddedWriter),
}

pub struct KafkaSink {
    pub producer: FutureProducer,
    pub topic: String,
    pub metrics: Arc<Metrics>,
    pub timeout: Duration,
}

impl Sink {
    pub async fn publish(&self, events: Vec<Event>) -> Result<(), ApiError> {
        match self {
            Self::Kafka(k) => k.publish(&events).await,
            Self::Embedded(w) => w.write(events).await,
        }
    }

    /// Waits for everything queued to reach the broker (shutdown path).
    pub fn flush(&self, timeout: Duration) {
        if let Self::Kafka(k) = self {
            if let Err(e) = k.producer.flush(timeout) {
                tracing::error!(error = %e, "producer flush incomplete at shutdown");
            }
        }
    }
}

impl KafkaSink {
    async fn publish(&self, events: &[Event]) -> Result<(), ApiError> {
        let started = Instant::now();
        let mut deliveries = Vec::with_capacity(events.len());
        for e in events {
            let payload = serde_json::to_vec(e).map_err(|err| ApiError::Internal(err.to_string()))?;
            let record = FutureRecord::to(&self.topic)
                .key(e.site_id.as_bytes())
                .payload(&payload);
            // Enqueue without waiting: a full queue is backpressure, answered
            // with 503 at once instead of holding the connection.
            match self.producer.send_result(record) {
                Ok(d) => deliveries.push(d),
                Err((err, _)) => {
                    tracing::warn!(error = %err, "producer enqueue failed");
                    return Err(ApiError::Unavailable(
                        "event queue is full or unavailable, retry later".into(),
                    ));
                }
            }
        }
        self.metrics
            .producer_queue_depth
            .set(i64::from(self.producer.in_flight_count()));
        let acks = tokio::time::timeout(self.timeout, join_all(deliveries))
            .await
            .map_err(|_| ApiError::Unavailable("event broker did not acknowledge in time, retry later".into()))?;
        for ack in acks {
            match ack {
                Ok(Ok(_)) => {}
                Ok(Err((err, _))) => {
                    tracing::warn!(error = %err, "delivery failed");
                    return Err(ApiError::Unavailable("event broker unavailable, retry later".into()));
                }
                Err(_) => return Err(ApiError::Unavailable("event producer is shutting down".into())),
            }
        }
        self.metrics.producer_delivery.observe(started.elapsed().as_secs_f64());
        Ok(())
    }
}
