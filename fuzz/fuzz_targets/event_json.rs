//! A request body as the ingest routes parse it (`parse_one`, `parse_batch`),
//! then validated under the api's policy and under `Policy::stored()`.
//! Oracle: nothing panics; an accepted event obeys every rule of
//! `event::text` and `event::validate`, whatever policy accepted it (and
//! the api's, `/events`' strict names); what the api's policy accepts,
//! `Policy::stored()` accepts too; and its Kafka payload decodes back to the
//! same event.
#![no_main]

use analytics_fuzz::{assert_payload_round_trip, assert_storable, assert_strict_name, now};
use analytics_model::event::{parse_batch, parse_one, IncomingEvent, Policy};
use libfuzzer_sys::fuzz_target;

fn copy(e: &IncomingEvent) -> IncomingEvent {
    IncomingEvent {
        site_id: e.site_id.clone(),
        event_type: e.event_type.clone(),
        path: e.path.clone(),
        user_id: e.user_id.clone(),
        timestamp: e.timestamp.clone(),
        event_id: e.event_id.clone(),
        referrer: e.referrer.clone(),
        props: e.props.clone(),
        url: e.url.clone(),
        user_agent: e.user_agent.clone(),
    }
}

fn check(incoming: IncomingEvent) {
    let now = now();
    let stored = copy(&incoming).validate_with(now, Policy::stored());
    let api = incoming.validate_with(now, Policy::default());
    if let Ok(ev) = &api {
        assert!(
            stored.is_ok(),
            "the api's policy accepts what Policy::stored() refuses: {stored:?}"
        );
        assert_eq!(ev.received_at, now, "received_at is not the server time");
        assert_strict_name(ev);
    }
    for ev in [api, stored].iter().flatten() {
        assert_storable(ev);
        assert_eq!(ev.check_stored(), Ok(()), "an accepted event fails check_stored");
        assert_payload_round_trip(ev);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(incoming) = parse_one(data) {
        check(incoming);
    }
    if let Ok(batch) = parse_batch(data) {
        for incoming in batch {
            check(incoming);
        }
    }
});
