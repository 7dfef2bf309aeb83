//! Unit tests: validation, date ranges and buckets, and hand-worked examples of the reference semantics.

mod csv;
mod engine;
mod funnel;
mod goals;
mod reference;
mod segments;
mod time;
mod validation;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::reference::RawEvent;
use crate::Query;

/// An instant from RFC 3339 text.
pub(crate) fn t(s: &str) -> DateTime<Utc> {
    s.parse::<DateTime<Utc>>().unwrap()
}

/// A valid query (panics with the errors otherwise).
pub(crate) fn query(v: Value) -> Query {
    match Query::parse(&v) {
        Ok(q) => q,
        Err(e) => panic!("query should be valid: {e}"),
    }
}

/// The error messages of an invalid query.
pub(crate) fn errors(v: Value) -> Vec<String> {
    match Query::parse(&v) {
        Ok(q) => panic!("query should be invalid: {q:?}"),
        Err(e) => {
            assert!(!e.0.is_empty(), "an error list is never empty");
            e.messages()
        }
    }
}

/// An event of visitor `visitor` (or none) named `name` on `path`.
pub(crate) fn event(id: u128, ts: &str, visitor: Option<&str>, name: &str, path: &str) -> RawEvent {
    RawEvent {
        event_id: id,
        timestamp: t(ts),
        name: name.to_owned(),
        path: path.to_owned(),
        visitor: visitor.map(str::to_owned),
        hostname: "example.com".to_owned(),
        ..RawEvent::default()
    }
}

/// A pageview of `visitor` on `path`.
pub(crate) fn pv(id: u128, ts: &str, visitor: &str, path: &str) -> RawEvent {
    event(id, ts, Some(visitor), "page_view", path)
}

/// `e` changed by `f`.
pub(crate) fn with(mut e: RawEvent, f: impl FnOnce(&mut RawEvent)) -> RawEvent {
    f(&mut e);
    e
}
