//! One consumed batch: parsing each message, dead-lettering what can never be
//! parsed, and the offsets to commit once the batch is written.

use analytics_core::event::Event;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;

pub struct DeadLetter {
    pub message: OwnedMessage,
    pub reason: String,
}

#[derive(Default)]
pub struct Batch {
    pub events: Vec<Event>,
    pub dead: Vec<DeadLetter>,
    /// Highest offset seen per (topic, partition).
    pub last_offsets: BTreeMap<(String, i32), i64>,
    /// Newest broker/creation timestamp in the batch, ms since the epoch.
    pub newest_timestamp_ms: Option<i64>,
    pub messages: usize,
    /// W3C `traceparent` of each traced message, in arrival order.
    pub traceparents: Vec<String>,
}

impl Batch {
    pub fn add(&mut self, m: OwnedMessage) {
        self.messages += 1;
        let key = (m.topic().to_string(), m.partition());
        let offset = m.offset();
        self.last_offsets
            .entry(key)
            .and_modify(|o| *o = (*o).max(offset))
            .or_insert(offset);
        if let Some(ts) = m.timestamp().to_millis() {
            self.newest_timestamp_ms = Some(self.newest_timestamp_ms.map_or(ts, |n| n.max(ts)));
        }
        if let Some(headers) = m.headers() {
            if let Some(tp) = headers.iter().find(|h| h.key == "traceparent").and_then(|h| h.value) {
                if let Ok(tp) = std::str::from_utf8(tp) {
                    self.traceparents.push(tp.to_string());
                }
            }
        }
        match parse(m.payload()) {
            Ok(ev) => self.events.push(ev),
            Err(reason) => self.dead.push(DeadLetter { message: m, reason }),
        }
    }

    /// Offsets to commit: the next message to read in each partition.
    pub fn commit_list(&self) -> rdkafka::error::KafkaResult<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in &self.last_offsets {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(offset + 1))?;
        }
        Ok(tpl)
    }
}

/// Why a payload can never become an event, or the event.
pub fn parse(payload: Option<&[u8]>) -> Result<Event, String> {
    let bytes = payload.ok_or_else(|| "message has no value".to_string())?;
    let ev: Event = serde_json::from_slice(bytes).map_err(|e| format!("not a valid event: {e}"))?;
    ev.check_stored().map_err(|errors| {
        let parts: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        format!("event breaks the contract: {}", parts.join("; "))
    })?;
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_contract_breaks_are_reasons() {
        assert!(parse(None).is_err_and(|r| r.contains("no value")));
        assert!(parse(Some(b"\xff\x00garbage")).is_err_and(|r| r.contains("not a valid event")));
        let bad = br#"{"event_id":"0190b6a4-0000-7000-8000-000000000001","site_id":"","event_type":"x","timestamp":"2025-11-15T05:00:00Z","received_at":"2025-11-15T05:00:00Z"}"#;
        assert!(parse(Some(bad)).is_err_and(|r| r.contains("site_id")));
        let good = br#"{"event_id":"0190b6a4-0000-7000-8000-000000000001","site_id":"s","event_type":"page_view","path":"/","user_id":"u","timestamp":"2025-11-15T05:00:00Z","received_at":"2025-11-15T05:00:00Z"}"#;
        assert!(parse(Some(good)).is_ok_and(|e| e.site_id == "s"));
    }
}
