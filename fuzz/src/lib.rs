//! The oracles the targets share: what every event the platform accepts
//! obeys, and that its Kafka payload brings it back unchanged.

use analytics_model::event::payload::{self, PayloadEncoder};
use analytics_model::event::context::MAX_CONTEXT_CHARS;
use analytics_model::event::{
    text, Event, MAX_EVENT_NAME_CHARS, MAX_EVENT_TYPE_CHARS, MAX_FUTURE_SKEW_MINUTES, MAX_PATH_CHARS, MAX_PROPS,
    MAX_PROP_KEY_CHARS, MAX_PROP_VALUE_CHARS, MAX_REFERRER_CHARS, MAX_SITE_ID_CHARS, MAX_USER_ID_CHARS,
};
use chrono::{DateTime, Datelike, Duration, Utc};
use serde_json::Value;

/// The server clock of the event targets: fixed, so a crash reproduces.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_763_208_000, 0).expect("2025-11-15T12:00:00Z") // 2025-11-15T12:00:00Z
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn assert_no_control(field: &str, value: &str, allowed: &[char]) {
    assert!(
        text::control_char(value, allowed).is_none(),
        "accepted {field} holds a forbidden control character: {value:?}"
    );
}

/// A timestamp both stores and the payload's RFC 3339 text hold as is.
fn assert_stored_time(field: &str, t: DateTime<Utc>) {
    assert!(
        (1..=9999).contains(&t.year()),
        "accepted {field} is out of the years 1 to 9999: {t:?}"
    );
    let nanos = t.timestamp_subsec_nanos();
    assert!(
        nanos < 1_000_000_000 && nanos % 1_000 == 0,
        "accepted {field} is not whole microseconds (or is a leap second): {t:?}"
    );
}

/// What every event the api or the processor accepts obeys (`event::text`,
/// `event::validate`).
pub fn assert_storable(ev: &Event) {
    assert!(!ev.event_id.is_nil(), "accepted the nil event_id");
    assert!(
        (1..=MAX_SITE_ID_CHARS).contains(&chars(&ev.site_id)),
        "site_id length: {:?}",
        ev.site_id
    );
    assert_no_control("site_id", &ev.site_id, text::IN_NAMES);
    // Stored names: Plausible's free ones (`EventNames::Free`).
    assert!(
        (1..=MAX_EVENT_NAME_CHARS).contains(&chars(&ev.event_type)),
        "event_type length"
    );
    assert_no_control("event_type", &ev.event_type, &[]);
    assert!(ev.path.len() <= MAX_PATH_CHARS, "path bytes: {}", ev.path.len());
    assert_no_control("path", &ev.path, text::IN_NAMES);
    assert!(chars(&ev.user_id) <= MAX_USER_ID_CHARS, "user_id length");
    assert_no_control("user_id", &ev.user_id, text::IN_NAMES);
    if let Some(r) = &ev.referrer {
        assert!(chars(r) <= MAX_REFERRER_CHARS, "referrer length");
        assert_no_control("referrer", r, text::IN_NAMES);
    }
    if let Some(props) = &ev.props {
        assert!(props.len() <= MAX_PROPS, "{} props", props.len());
        for (k, v) in props {
            assert!((1..=MAX_PROP_KEY_CHARS).contains(&chars(k)), "prop key length: {k:?}");
            assert_no_control("a prop key", k, text::IN_NAMES);
            match v {
                Value::Number(_) => {}
                Value::String(s) => {
                    assert!(chars(s) <= MAX_PROP_VALUE_CHARS, "prop value length");
                    assert_no_control("a prop value", s, text::IN_FREE_TEXT);
                }
                other => panic!("accepted a prop value that is neither a string nor a number: {other:?}"),
            }
        }
    }
    for (name, value) in ev.context.texts() {
        assert!(chars(value) <= MAX_CONTEXT_CHARS, "context.{name} length");
        assert_no_control(name, value, text::IN_NAMES);
    }
    assert_ne!(ev.context.visitor_id, Some(0), "accepted visitor 0");
    assert_stored_time("timestamp", ev.timestamp);
    assert_stored_time("received_at", ev.received_at);
    assert!(
        ev.timestamp <= ev.received_at + Duration::minutes(MAX_FUTURE_SKEW_MINUTES),
        "accepted a timestamp more than the skew after received_at"
    );
}

/// `/events`' stricter name rule (`EventNames::Strict`).
pub fn assert_strict_name(ev: &Event) {
    assert!(
        (1..=MAX_EVENT_TYPE_CHARS).contains(&chars(&ev.event_type)),
        "event_type length"
    );
    assert!(
        ev.event_type
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')),
        "event_type characters: {:?}",
        ev.event_type
    );
}

/// The event's Kafka payload is `serde_json::to_vec`'s bytes, and the
/// processor's `payload::decode` brings back the same event.
pub fn assert_payload_round_trip(ev: &Event) {
    let mut encoder = PayloadEncoder::default();
    let bytes = encoder.encode(ev).expect("an event encodes").to_vec();
    let expected = serde_json::to_vec(ev).expect("an event serializes");
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&expected),
        "the payload encoder and serde_json disagree"
    );
    match payload::decode(Some(&bytes)) {
        Ok(back) => assert_eq!(&back, ev, "the payload does not decode to the event it encodes"),
        Err(reason) => panic!("the payload of an accepted event is refused: {reason}\nevent: {ev:?}"),
    }
}
