//! Where accepted events go, one file per backend. A request is answered
//! 202 only after its events are durable: acknowledged by every in-sync
//! replica (`kafka`) or committed to the database (`embedded`).

mod embedded;
mod kafka;

pub use embedded::EmbeddedWriter;
pub use kafka::KafkaSink;

use crate::error::ApiError;
use analytics_core::event::Event;
use rdkafka::producer::Producer;
use std::sync::Arc;
use std::time::Duration;

pub enum Sink {
    Kafka(Arc<KafkaSink>),
    Embedded(EmbeddedWriter),
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
            if let Err(e) = k.current().flush(timeout) {
                tracing::error!(error = %e, "producer flush incomplete at shutdown");
            }
        }
    }
}
