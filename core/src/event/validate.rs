//! The rules every event obeys, checked at the api and again by the
//! processor (a message may reach the topic without passing the api).

use super::{
    Event, FieldError, MAX_EVENT_TYPE_CHARS, MAX_FUTURE_SKEW_MINUTES, MAX_PATH_CHARS, MAX_PROPS, MAX_PROP_KEY_CHARS,
    MAX_PROP_VALUE_CHARS, MAX_REFERRER_CHARS, MAX_SITE_ID_CHARS, MAX_USER_ID_CHARS,
};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// The wire form. Every field is optional here so that a missing field gets a
/// precise "is required" message instead of serde's generic one; unknown
/// fields are refused outright.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingEvent {
    pub site_id: Option<String>,
    pub event_type: Option<String>,
    pub path: Option<String>,
    pub user_id: Option<String>,
    pub timestamp: Option<String>,
    pub event_id: Option<String>,
    pub referrer: Option<String>,
    pub props: Option<Map<String, Value>>,
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

fn check_len(errors: &mut Vec<FieldError>, field: &str, value: &str, min: usize, max: usize) {
    let n = char_len(value);
    if n < min {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if n > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters (got {n})"),
        ));
    }
}

fn valid_event_type_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

fn check_props(errors: &mut Vec<FieldError>, props: &Map<String, Value>) {
    if props.len() > MAX_PROPS {
        errors.push(FieldError::new(
            "props",
            format!("must have at most {MAX_PROPS} entries (got {})", props.len()),
        ));
    }
    for (key, value) in props {
        let field = format!("props.{key}");
        if key.is_empty() || char_len(key) > MAX_PROP_KEY_CHARS {
            errors.push(FieldError::new(
                &field,
                format!("key must be 1 to {MAX_PROP_KEY_CHARS} characters"),
            ));
        }
        match value {
            Value::Number(_) => {}
            Value::String(s) if char_len(s) <= MAX_PROP_VALUE_CHARS => {}
            Value::String(_) => errors.push(FieldError::new(
                &field,
                format!("string value must be at most {MAX_PROP_VALUE_CHARS} characters"),
            )),
            _ => errors.push(FieldError::new(&field, "value must be a string or a number")),
        }
    }
}

impl IncomingEvent {
    /// Checks every rule and reports all the broken ones at once, so a client
    /// fixes its payload in one round trip.
    pub fn validate(self, now: DateTime<Utc>) -> Result<Event, Vec<FieldError>> {
        let mut errors = Vec::new();

        match &self.site_id {
            None => errors.push(FieldError::new("site_id", "is required")),
            Some(s) => check_len(&mut errors, "site_id", s, 1, MAX_SITE_ID_CHARS),
        }
        match &self.event_type {
            None => errors.push(FieldError::new("event_type", "is required")),
            Some(t) => {
                let before = errors.len();
                check_len(&mut errors, "event_type", t, 1, MAX_EVENT_TYPE_CHARS);
                if errors.len() == before && !t.chars().all(valid_event_type_char) {
                    errors.push(FieldError::new(
                        "event_type",
                        "may only contain letters, digits and _ . : -",
                    ));
                }
            }
        }
        if let Some(p) = &self.path {
            // Bytes, not characters: the path is part of a rollup primary key,
            // and PostgreSQL caps an index entry at about 2.7 kB.
            if p.len() > MAX_PATH_CHARS {
                errors.push(FieldError::new(
                    "path",
                    format!("must be at most {MAX_PATH_CHARS} bytes of UTF-8 (got {})", p.len()),
                ));
            }
        }
        if let Some(u) = &self.user_id {
            check_len(&mut errors, "user_id", u, 0, MAX_USER_ID_CHARS);
        }
        if let Some(r) = &self.referrer {
            check_len(&mut errors, "referrer", r, 0, MAX_REFERRER_CHARS);
        }
        if let Some(props) = &self.props {
            check_props(&mut errors, props);
        }

        let timestamp = match &self.timestamp {
            None => Some(now),
            Some(raw) => match DateTime::parse_from_rfc3339(raw) {
                Err(e) => {
                    errors.push(FieldError::new(
                        "timestamp",
                        format!("must be an RFC 3339 date-time such as 2025-11-15T05:00:00Z ({e})"),
                    ));
                    None
                }
                Ok(t) => {
                    let t = t.with_timezone(&Utc);
                    if t > now + Duration::minutes(MAX_FUTURE_SKEW_MINUTES) {
                        errors.push(FieldError::new(
                            "timestamp",
                            format!(
                                "is more than {MAX_FUTURE_SKEW_MINUTES} minutes in the future (server time {})",
                                now.to_rfc3339_opts(SecondsFormat::Secs, true)
                            ),
                        ));
                    }
                    Some(t)
                }
            },
        };

        let event_id = match &self.event_id {
            None => Some(Uuid::now_v7()),
            Some(raw) => match Uuid::try_parse(raw) {
                Ok(id) if !id.is_nil() => Some(id),
                Ok(_) => {
                    errors.push(FieldError::new("event_id", "must not be the nil UUID"));
                    None
                }
                Err(e) => {
                    errors.push(FieldError::new("event_id", format!("must be a UUID ({e})")));
                    None
                }
            },
        };

        match (errors.is_empty(), timestamp, event_id) {
            (true, Some(timestamp), Some(event_id)) => Ok(Event {
                event_id,
                site_id: self.site_id.unwrap_or_default(),
                event_type: self.event_type.unwrap_or_default(),
                path: self.path.unwrap_or_default(),
                user_id: self.user_id.unwrap_or_default(),
                timestamp,
                received_at: now,
                referrer: self.referrer,
                props: self.props,
            }),
            _ => Err(errors),
        }
    }
}

impl Event {
    /// Re-checks an event read back from Kafka: whatever produced the message,
    /// the processor only writes what the api would have accepted.
    pub fn check_stored(&self) -> Result<(), Vec<FieldError>> {
        let incoming = IncomingEvent {
            site_id: Some(self.site_id.clone()),
            event_type: Some(self.event_type.clone()),
            path: Some(self.path.clone()),
            user_id: Some(self.user_id.clone()),
            timestamp: Some(self.timestamp.to_rfc3339()),
            event_id: Some(self.event_id.to_string()),
            referrer: self.referrer.clone(),
            props: self.props.clone(),
        };
        incoming.validate(self.received_at).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{parse_batch, parse_one};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-11-15T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn base() -> IncomingEvent {
        IncomingEvent {
            site_id: Some("site".into()),
            event_type: Some("page_view".into()),
            path: Some("/home".into()),
            user_id: Some("u1".into()),
            timestamp: Some("2025-11-15T05:00:00Z".into()),
            event_id: None,
            referrer: None,
            props: None,
        }
    }

    fn fields(r: Result<Event, Vec<FieldError>>) -> Vec<String> {
        r.err().unwrap_or_default().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn valid_event_gets_v7_id_and_keeps_timestamp() {
        let e = base().validate(now()).ok();
        let e = e.as_ref();
        assert_eq!(e.map(|e| e.event_id.get_version_num()), Some(7));
        assert_eq!(
            e.map(|e| e.timestamp.to_rfc3339()),
            Some("2025-11-15T05:00:00+00:00".to_string())
        );
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let mut ev = base();
        ev.timestamp = Some("2025-11-15T01:30:00-05:00".into());
        let e = ev.validate(now()).ok();
        assert_eq!(
            e.map(|e| e.timestamp.to_rfc3339()),
            Some("2025-11-15T06:30:00+00:00".to_string())
        );
    }

    #[test]
    fn all_errors_reported_together() {
        let mut ev = base();
        ev.site_id = Some(String::new());
        ev.event_type = Some("page view".into());
        ev.timestamp = Some("yesterday".into());
        assert_eq!(fields(ev.validate(now())), vec!["site_id", "event_type", "timestamp"]);
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        let mut ev = base();
        ev.site_id = Some("é".repeat(100));
        assert!(ev.validate(now()).is_ok());
        let mut ev = base();
        ev.site_id = Some("é".repeat(101));
        assert_eq!(fields(ev.validate(now())), vec!["site_id"]);
    }

    #[test]
    fn future_skew_boundary() {
        let mut ev = base();
        ev.timestamp = Some("2025-11-15T12:10:00Z".into());
        assert!(ev.validate(now()).is_ok());
        let mut ev = base();
        ev.timestamp = Some("2025-11-15T12:10:01Z".into());
        assert_eq!(fields(ev.validate(now())), vec!["timestamp"]);
    }

    #[test]
    fn props_must_be_flat() {
        let mut ev = base();
        let mut props = Map::new();
        props.insert("plan".into(), Value::String("pro".into()));
        props.insert("n".into(), Value::from(3));
        props.insert("nested".into(), serde_json::json!({"a": 1}));
        ev.props = Some(props);
        assert_eq!(fields(ev.validate(now())), vec!["props.nested"]);
    }

    #[test]
    fn batch_parse_error_names_index_and_field() {
        let err = parse_batch(br#"[{"site_id":"a","event_type":"x"},{"site_id":5}]"#).err();
        assert_eq!(err.map(|e| e.field), Some("[1].site_id".to_string()));
        let err = parse_one(br#"{"site_id":"a","evil":1}"#).err();
        assert!(err.is_some_and(|e| e.message.contains("unknown field `evil`")));
    }

    #[test]
    fn stored_event_round_trips_through_json() {
        let e = base().validate(now()).ok();
        let json = serde_json::to_vec(&e).unwrap_or_default();
        let back: Option<Event> = serde_json::from_slice(&json).ok();
        assert_eq!(back, e);
        assert!(back.is_some_and(|b| b.check_stored().is_ok()));
    }
}
