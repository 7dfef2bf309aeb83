//! One consumed batch: parsing each message, dead-lettering what can never be
//! parsed, where each event came from (to dead-letter one the database
//! refuses), and the offsets to commit once the batch is written.

use analytics_core::event::{payload, Event};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use tokio::sync::OwnedSemaphorePermit;

pub struct DeadLetter {
    pub message: OwnedMessage,
    pub reason: String,
}

/// Where a parsed event came from: its message's partition and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Default)]
pub struct Batch {
    pub events: Vec<Event>,
    /// `events[i]` came from `sources[i]`.
    pub sources: Vec<Source>,
    /// Payload bytes of every message in the batch.
    pub bytes: usize,
    pub dead: Vec<DeadLetter>,
    /// Highest offset seen per (topic, partition).
    pub last_offsets: BTreeMap<(String, i32), i64>,
    /// Newest broker/creation timestamp in the batch, ms since the epoch.
    pub newest_timestamp_ms: Option<i64>,
    pub messages: usize,
    /// W3C `traceparent` of each traced message, in arrival order.
    pub traceparents: Vec<String>,
    /// The batch's share of its lane's bytes, given back when it is dropped
    /// (after its offsets are committed).
    held: Vec<OwnedSemaphorePermit>,
}

impl Batch {
    pub fn hold(&mut self, bytes: OwnedSemaphorePermit) {
        self.held.push(bytes);
    }

    pub fn add(&mut self, m: OwnedMessage) {
        self.messages += 1;
        self.bytes += m.payload().map_or(0, <[u8]>::len);
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
        match payload::decode(m.payload()) {
            Ok(ev) => {
                self.events.push(ev);
                self.sources.push(Source {
                    partition: m.partition(),
                    offset: m.offset(),
                });
            }
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
