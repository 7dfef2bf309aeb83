//! A Kafka message value as the processor decodes it (`payload::decode`).
//! Oracle: nothing panics; an accepted event passes `check_stored`, obeys
//! every rule the api enforces (so the processor writes only what the api
//! would have accepted), and re-encodes to bytes that decode to itself.
#![no_main]

use analytics_fuzz::{assert_payload_round_trip, assert_storable};
use analytics_model::event::payload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = payload::decode(Some(data)) {
        assert_eq!(ev.check_stored(), Ok(()), "a decoded event fails check_stored");
        assert_storable(&ev);
        assert_payload_round_trip(&ev);
    }
});
