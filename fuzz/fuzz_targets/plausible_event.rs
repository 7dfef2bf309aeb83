//! A body as `POST /api/event` parses it (Plausible's payload), then each
//! event validated under the api's policy with free names, as the route
//! does. Oracle: nothing panics; a parsed payload has a name, a URL and a
//! domain; every accepted event obeys what stored events obey, passes the
//! processor's re-check, and its Kafka payload decodes back to it.
#![no_main]

use analytics_fuzz::{assert_payload_round_trip, assert_storable, now};
use analytics_model::event::{plausible, EventNames, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mapped) = plausible::parse(data) else {
        return;
    };
    assert!(!mapped.url.trim().is_empty(), "a payload without a URL was parsed");
    let policy = Policy {
        names: EventNames::Free,
        ..Policy::default()
    };
    for incoming in mapped.events {
        assert!(incoming.site_id.as_deref().is_some_and(|d| !d.is_empty()), "an event without a domain");
        if let Ok((ev, hints)) = incoming.validate_parts(now(), policy) {
            assert_eq!(hints.url.as_deref(), Some(mapped.url.as_str()));
            assert_storable(&ev);
            assert_eq!(ev.check_stored(), Ok(()), "an accepted event fails check_stored");
            assert_payload_round_trip(&ev);
        }
    }
});
