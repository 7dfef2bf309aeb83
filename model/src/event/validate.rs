//! The rules every event obeys, checked at the api and again by the
//! processor (a message may reach the topic without passing the api).

use super::text::{self, check_text};
use super::{
    Context, Event, FieldError, MAX_EVENT_NAME_CHARS, MAX_EVENT_TYPE_CHARS, MAX_FUTURE_SKEW_MINUTES, MAX_PATH_CHARS,
    MAX_PROPS, MAX_PROP_KEY_CHARS, MAX_PROP_VALUE_CHARS, MAX_REFERRER_CHARS, MAX_SITE_ID_CHARS, MAX_URL_CHARS,
    MAX_USER_AGENT_CHARS, MAX_USER_ID_CHARS,
};
use crate::time::to_stored_precision;
use chrono::{DateTime, Datelike, Duration, SecondsFormat, Utc};
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
    /// The page's URL, for enrichment (hostname, path, campaign); not stored.
    pub url: Option<String>,
    /// The visitor's User-Agent when a server forwards its visitors' events
    /// (else the request's is used), for enrichment; not stored.
    pub user_agent: Option<String>,
}

/// What an event told about its client for enrichment, and nothing stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHints {
    pub url: Option<String>,
    pub user_agent: Option<String>,
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
        if let Some(found) = text::control_char(key, text::IN_NAMES) {
            // The key itself is not echoed: it holds the control character.
            errors.push(FieldError::new("props", format!("a key {found}")));
            continue;
        }
        let field = format!("props.{key}");
        if let Value::String(v) = value {
            check_text(errors, &field, v, text::IN_FREE_TEXT);
        }
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

/// Ingest's own bounds, besides what every stored event obeys: how old a
/// timestamp may be. Configurable at the api (`EVENT_MAX_AGE_DAYS`); the
/// processor's re-check and imports of history use `Policy::stored()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `None`: any timestamp from year 1 on.
    pub max_age: Option<Duration>,
    /// Which event names are taken: `/events`' strict `[A-Za-z0-9_.:-]`, or
    /// Plausible's free names (`/api/event`: "Outbound Link: Click").
    pub names: EventNames,
}

/// The two rules for an event's name (`event_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventNames {
    /// 1 to `MAX_EVENT_TYPE_CHARS` of `[A-Za-z0-9_.:-]`: the contract of
    /// `/events`.
    #[default]
    Strict,
    /// 1 to `MAX_EVENT_NAME_CHARS` of any text without control characters:
    /// Plausible's event names, and what every stored event obeys.
    Free,
}

/// Three years: a client clock stuck at 1970 (or year 0) is refused, any
/// replay or batch of the last three years is taken.
pub const DEFAULT_MAX_AGE_DAYS: i64 = 1096;

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_age: Some(Duration::days(DEFAULT_MAX_AGE_DAYS)),
            names: EventNames::Strict,
        }
    }
}

impl Policy {
    /// What every stored event obeys, whatever its age.
    pub fn stored() -> Self {
        Self {
            max_age: None,
            names: EventNames::Free,
        }
    }
}

/// The years both stores and the RFC 3339 text of the payload can hold.
const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

fn check_timestamp(
    errors: &mut Vec<FieldError>,
    raw: &str,
    now: DateTime<Utc>,
    policy: Policy,
) -> Option<DateTime<Utc>> {
    let t = match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => to_stored_precision(t.with_timezone(&Utc)),
        Err(e) => {
            errors.push(FieldError::new(
                "timestamp",
                format!("must be an RFC 3339 date-time such as 2025-11-15T05:00:00Z ({e})"),
            ));
            return None;
        }
    };
    if !YEARS.contains(&t.year()) {
        errors.push(FieldError::new(
            "timestamp",
            format!("must be in the years 0001 to 9999 in UTC (got year {})", t.year()),
        ));
    } else if now
        .checked_add_signed(Duration::minutes(MAX_FUTURE_SKEW_MINUTES))
        .is_some_and(|latest| t > latest)
    {
        errors.push(FieldError::new(
            "timestamp",
            format!(
                "is more than {MAX_FUTURE_SKEW_MINUTES} minutes in the future (server time {})",
                now.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        ));
    } else if let Some(max_age) = policy
        .max_age
        .filter(|age| now.checked_sub_signed(*age).is_some_and(|earliest| t < earliest))
    {
        errors.push(FieldError::new(
            "timestamp",
            format!(
                "is more than {} days in the past (server time {}); older history is imported with `analytics-admin import`",
                max_age.num_days(),
                now.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        ));
    }
    Some(t)
}

impl IncomingEvent {
    /// `validate_with` under the default `Policy`.
    pub fn validate(self, now: DateTime<Utc>) -> Result<Event, Vec<FieldError>> {
        self.validate_with(now, Policy::default())
    }

    /// Checks every rule and reports all the broken ones at once, so a client
    /// fixes its payload in one round trip. Text the stores cannot hold
    /// (control characters: `text`) is refused like any other broken rule.
    pub fn validate_with(self, now: DateTime<Utc>, policy: Policy) -> Result<Event, Vec<FieldError>> {
        self.validate_parts(now, policy).map(|(event, _)| event)
    }

    /// `validate_with`, and the client hints (`url`, `user_agent`) the
    /// event carried for enrichment.
    pub fn validate_parts(self, now: DateTime<Utc>, policy: Policy) -> Result<(Event, ClientHints), Vec<FieldError>> {
        let now = to_stored_precision(now);
        let mut errors = Vec::new();

        match &self.site_id {
            None => errors.push(FieldError::new("site_id", "is required")),
            Some(s) => {
                check_len(&mut errors, "site_id", s, 1, MAX_SITE_ID_CHARS);
                check_text(&mut errors, "site_id", s, text::IN_NAMES);
            }
        }
        match &self.event_type {
            None => errors.push(FieldError::new("event_type", "is required")),
            Some(t) => {
                let before = errors.len();
                let max = match policy.names {
                    EventNames::Strict => MAX_EVENT_TYPE_CHARS,
                    EventNames::Free => MAX_EVENT_NAME_CHARS,
                };
                check_len(&mut errors, "event_type", t, 1, max);
                if policy.names == EventNames::Free {
                    check_text(&mut errors, "event_type", t, &[]);
                } else if errors.len() == before && !t.chars().all(valid_event_type_char) {
                    errors.push(FieldError::new(
                        "event_type",
                        "may only contain letters, digits and _ . : -",
                    ));
                }
            }
        }
        if let Some(p) = &self.path {
            check_text(&mut errors, "path", p, text::IN_NAMES);
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
            check_text(&mut errors, "user_id", u, text::IN_NAMES);
        }
        if let Some(r) = &self.referrer {
            check_len(&mut errors, "referrer", r, 0, MAX_REFERRER_CHARS);
            check_text(&mut errors, "referrer", r, text::IN_NAMES);
        }
        if let Some(props) = &self.props {
            check_props(&mut errors, props);
        }
        if let Some(u) = &self.url {
            check_len(&mut errors, "url", u, 0, MAX_URL_CHARS);
            check_text(&mut errors, "url", u, &[]);
        }
        if let Some(ua) = &self.user_agent {
            check_len(&mut errors, "user_agent", ua, 0, MAX_USER_AGENT_CHARS);
            check_text(&mut errors, "user_agent", ua, &[]);
        }

        let timestamp = match &self.timestamp {
            None => Some(now),
            Some(raw) => check_timestamp(&mut errors, raw, now, policy),
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
            (true, Some(timestamp), Some(event_id)) => Ok((
                Event {
                    event_id,
                    site_id: self.site_id.unwrap_or_default(),
                    event_type: self.event_type.unwrap_or_default(),
                    path: self.path.unwrap_or_default(),
                    user_id: self.user_id.unwrap_or_default(),
                    timestamp,
                    received_at: now,
                    referrer: self.referrer,
                    props: self.props,
                    context: Context::default(),
                },
                ClientHints {
                    url: self.url,
                    user_agent: self.user_agent,
                },
            )),
            _ => Err(errors),
        }
    }
}

impl Event {
    /// Re-checks an event read back from Kafka: whatever produced the message,
    /// the processor only writes what the api would have accepted, and a
    /// `received_at` the api could have stamped (the years 1 to 9999).
    pub fn check_stored(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if !YEARS.contains(&self.received_at.year()) {
            errors.push(FieldError::new(
                "received_at",
                format!(
                    "must be in the years 0001 to 9999 in UTC (got year {})",
                    self.received_at.year()
                ),
            ));
        }
        let incoming = IncomingEvent {
            site_id: Some(self.site_id.clone()),
            event_type: Some(self.event_type.clone()),
            path: Some(self.path.clone()),
            user_id: Some(self.user_id.clone()),
            timestamp: Some(self.timestamp.to_rfc3339()),
            event_id: Some(self.event_id.to_string()),
            referrer: self.referrer.clone(),
            props: self.props.clone(),
            url: None,
            user_agent: None,
        };
        self.context.check(&mut errors);
        if let Err(more) = incoming.validate_with(self.received_at, Policy::stored()) {
            errors.extend(more);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
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
            url: None,
            user_agent: None,
        }
    }

    /// `url` and `user_agent` are bounded and free of control characters,
    /// named when not; both come back as hints, never in the event.
    #[test]
    fn client_hints_are_checked_and_returned() {
        let mut ev = base();
        ev.url = Some("https://a.test/p?utm_source=x".into());
        ev.user_agent = Some("Mozilla/5.0".into());
        let got = ev.validate_parts(now(), Policy::default()).ok();
        assert_eq!(
            got.as_ref().map(|(_, h)| (h.url.as_deref(), h.user_agent.as_deref())),
            Some((Some("https://a.test/p?utm_source=x"), Some("Mozilla/5.0")))
        );
        assert_eq!(got.map(|(e, _)| e.context.is_empty()), Some(true));
        let mut bad = base();
        bad.url = Some("x".repeat(crate::event::MAX_URL_CHARS + 1));
        bad.user_agent = Some("a\nb".into());
        let errs: Vec<String> = bad
            .validate(now())
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(errs, ["url", "user_agent"]);
    }

    /// Plausible's names (spaces, up to 120 characters) only under the
    /// free rule, which every stored event obeys.
    #[test]
    fn free_event_names_only_where_allowed() {
        let mut ev = base();
        ev.event_type = Some("Outbound Link: Click".into());
        assert!(ev.validate(now()).is_err_and(|e| e[0].field == "event_type"));
        let mut ev = base();
        ev.event_type = Some("Outbound Link: Click".into());
        let free = Policy {
            names: EventNames::Free,
            ..Policy::default()
        };
        assert!(ev.validate_with(now(), free).is_ok_and(|e| e.check_stored().is_ok()));
        let mut ev = base();
        ev.event_type = Some("x".repeat(crate::event::MAX_EVENT_NAME_CHARS + 1));
        assert!(ev.validate_with(now(), free).is_err());
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

    /// Fuzz finding (kafka_payload): `received_at` was never checked, so a
    /// message could carry year 10000 (or a leap second at the end of 9999,
    /// which the cut to stored precision folds into 10000), and one within
    /// ten minutes of chrono's last instant made the future-skew check
    /// overflow: a panic, in release too, on every read of the message.
    #[test]
    fn received_at_outside_the_stored_years_is_refused_not_a_panic() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        let mut e = base().validate(now()).unwrap_or_else(|_| unreachable!());
        for received_at in [
            DateTime::<Utc>::MAX_UTC,
            at("9999-12-31T23:59:59Z") + Duration::seconds(1),
        ] {
            e.received_at = received_at;
            let fields: Vec<String> = e
                .check_stored()
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.field)
                .collect();
            assert_eq!(fields, ["received_at"]);
        }
        e.received_at = DateTime::<Utc>::MIN_UTC;
        assert!(e.check_stored().is_err());
        // Any server clock: past chrono's last instant there is no future.
        assert!(base().validate_with(DateTime::<Utc>::MAX_UTC, Policy::stored()).is_ok());
        assert_eq!(fields(base().validate(DateTime::<Utc>::MAX_UTC)), ["timestamp"]);
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
