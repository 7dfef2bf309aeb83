//! An event's Kafka message value, encoded fast: the same JSON bytes as
//! `serde_json::to_vec(&event)`, which the processor parses back into an
//! `Event`, with one buffer reused across a request's events and each run of
//! equal timestamps formatted once.
//!
//! Why: a request's events share their `received_at` and, unless the client
//! dated them, their `timestamp`; chrono's formatter, a fresh `Vec` per
//! event and its growth were about a tenth of the api's CPU in Kafka mode
//! (bench/README.md).

use crate::event::{Context, Event};
use crate::time::{to_stored_precision, TimestampText};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// `Event`'s fields in `Event`'s order, timestamps already formatted.
#[derive(Serialize)]
struct Payload<'a> {
    event_id: &'a Uuid,
    site_id: &'a str,
    event_type: &'a str,
    path: &'a str,
    user_id: &'a str,
    timestamp: &'a str,
    received_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    props: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a Context>,
}

/// Encodes one request's events, one at a time, into a reused buffer.
pub struct PayloadEncoder {
    buf: Vec<u8>,
    timestamp: TimestampText,
    received_at: TimestampText,
}

impl Default for PayloadEncoder {
    fn default() -> Self {
        Self {
            buf: Vec::with_capacity(512),
            timestamp: TimestampText::serde(),
            received_at: TimestampText::serde(),
        }
    }
}

impl PayloadEncoder {
    /// The message value of `e`, valid until the next call.
    pub fn encode(&mut self, e: &Event) -> serde_json::Result<&[u8]> {
        self.buf.clear();
        let payload = Payload {
            event_id: &e.event_id,
            site_id: &e.site_id,
            event_type: &e.event_type,
            path: &e.path,
            user_id: &e.user_id,
            timestamp: self.timestamp.get(e.timestamp),
            received_at: self.received_at.get(e.received_at),
            referrer: e.referrer.as_ref(),
            props: e.props.as_ref(),
            context: (!e.context.is_empty()).then_some(&e.context),
        };
        serde_json::to_writer(&mut self.buf, &payload)?;
        Ok(&self.buf)
    }
}

/// The event in a message value, or why the message can never become one
/// (the processor dead-letters it with this reason). Its timestamps are cut
/// to the stores' precision (`to_stored_precision`), as the api cuts them:
/// another producer's nanoseconds or leap second would otherwise reach the
/// stores, which then disagree.
pub fn decode(payload: Option<&[u8]>) -> Result<Event, String> {
    let bytes = payload.ok_or_else(|| "message has no value".to_string())?;
    let mut ev: Event = serde_json::from_slice(bytes).map_err(|e| format!("not a valid event: {e}"))?;
    ev.timestamp = to_stored_precision(ev.timestamp);
    ev.received_at = to_stored_precision(ev.received_at);
    ev.check_stored().map_err(|errors| {
        let parts: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        format!("event breaks the contract: {}", parts.join("; "))
    })?;
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ContextField;
    use chrono::{TimeZone, Utc};

    fn event(nanos: u32, referrer: Option<&str>, props: bool) -> Event {
        let at = Utc.timestamp_opt(1_763_182_800, nanos).single().unwrap_or_default();
        let mut map = Map::new();
        map.insert("plan".into(), Value::String("pro \"gold\"\n".into()));
        map.insert("n".into(), Value::from(3.5));
        Event {
            event_id: Uuid::now_v7(),
            site_id: "site-é".into(),
            event_type: "page_view".into(),
            path: "/a\\b?q=\"x\"".into(),
            user_id: String::new(),
            timestamp: at,
            received_at: at + chrono::Duration::milliseconds(1),
            referrer: referrer.map(str::to_string),
            props: props.then_some(map),
            context: if props {
                Context::default()
                    .with(ContextField::Browser, "Firefox")
                    .with(ContextField::Country, "DE")
                    .with_visitor(Some(-7))
            } else {
                Context::default()
            },
        }
    }

    /// Whole seconds, milli-, micro- and nanosecond precision (AutoSi picks
    /// the digits), with and without the optional fields, through one
    /// encoder so the memo is exercised both ways.
    #[test]
    fn same_bytes_as_serde_json() {
        let mut encoder = PayloadEncoder::default();
        for nanos in [0, 0, 5_000_000, 123_456_000, 123_456_789, 999_999_999] {
            for (referrer, props) in [(None, false), (Some("https://x.test/\u{7f}"), true), (Some(""), false)] {
                let e = event(nanos, referrer, props);
                let expected = serde_json::to_vec(&e).unwrap_or_default();
                let got = encoder.encode(&e).map(<[u8]>::to_vec).unwrap_or_default();
                assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected));
                let back: Option<Event> = serde_json::from_slice(&got).ok();
                assert_eq!(back.as_ref(), Some(&e));
            }
        }
    }

    /// Fuzz finding (event_json): serde_json's default float parsing is
    /// best effort, so the payload's shortest text of a prop number could
    /// parse to a neighbouring float and the processor stored another
    /// value than the api accepted. `float_roundtrip` (model/Cargo.toml).
    #[test]
    fn prop_floats_survive_the_payload() {
        let body = br#"{"site_id":"s","event_type":"x","props":{"big":184467440737095555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555551616,"f":0.30000000000000004,"tiny":4.9e-324}}"#;
        let now = Utc.timestamp_opt(1_763_182_800, 0).single().unwrap_or_default();
        let ev = crate::event::parse_one(body).ok().and_then(|e| e.validate(now).ok());
        assert!(ev.is_some());
        let mut encoder = PayloadEncoder::default();
        let bytes = ev.as_ref().and_then(|e| encoder.encode(e).ok()).map(<[u8]>::to_vec);
        assert_eq!(decode(bytes.as_deref()).ok(), ev);
    }

    /// Fuzz finding (kafka_payload): a message from another producer kept
    /// its sub-microsecond digits and leap seconds, which the api never
    /// sends and the two stores keep differently.
    #[test]
    fn decoded_timestamps_are_cut_to_stored_precision() {
        let msg = br#"{"event_id":"0190b6a4-0000-7000-8000-000000000001","site_id":"s","event_type":"x","timestamp":"2016-12-31T23:00:00.9999995Z","received_at":"2016-12-31T23:59:60.123456789Z"}"#;
        let ev = decode(Some(msg));
        let texts = ev
            .as_ref()
            .map(|e| (e.timestamp.to_rfc3339(), e.received_at.to_rfc3339()));
        assert_eq!(
            texts,
            Ok((
                "2016-12-31T23:00:00.999999+00:00".to_string(),
                "2017-01-01T00:00:00.123456+00:00".to_string()
            ))
        );
    }

    /// Fuzz finding (kafka_payload): a `received_at` outside the years 1 to
    /// 9999 was accepted (and within ten minutes of chrono's last instant
    /// it panicked the check), including the last leap second of 9999,
    /// which the cut to stored precision folds into year 10000.
    #[test]
    fn received_at_outside_the_stored_years_is_a_reason() {
        for received_at in [
            "+10000-01-01T00:00:00Z",
            "9999-12-31T23:59:60Z",
            "+262142-12-31T23:59:59Z",
        ] {
            let msg = format!(
                r#"{{"event_id":"0190b6a4-0000-7000-8000-000000000001","site_id":"s","event_type":"x","timestamp":"2025-11-15T05:00:00Z","received_at":"{received_at}"}}"#
            );
            assert!(
                decode(Some(msg.as_bytes())).is_err_and(|r| r.contains("received_at")),
                "{received_at}"
            );
        }
    }

    #[test]
    fn garbage_and_contract_breaks_are_reasons() {
        assert!(decode(None).is_err_and(|r| r.contains("no value")));
        assert!(decode(Some(b"\xff\x00garbage")).is_err_and(|r| r.contains("not a valid event")));
        let bad = br#"{"event_id":"0190b6a4-0000-7000-8000-000000000001","site_id":"","event_type":"x","timestamp":"2025-11-15T05:00:00Z","received_at":"2025-11-15T05:00:00Z"}"#;
        assert!(decode(Some(bad)).is_err_and(|r| r.contains("site_id")));
        let good = br#"{"event_id":"0190b6a4-0000-7000-8000-000000000001","site_id":"s","event_type":"page_view","path":"/","user_id":"u","timestamp":"2025-11-15T05:00:00Z","received_at":"2025-11-15T05:00:00Z"}"#;
        assert!(decode(Some(good)).is_ok_and(|e| e.site_id == "s"));
    }
}
