//! A stored user set (a serialized roaring bitmap) as the readers decode it.
//! Oracle: nothing panics, no input makes the reader allocate more than a
//! small multiple of its length (libFuzzer's -malloc_limit_mb/-rss_limit_mb
//! catch it); a set that decodes re-encodes to `serialized_size` bytes that
//! decode to the same set.
#![no_main]

use analytics_model::codec::user_set::{cardinality, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = decode(data) {
        let bytes = encode(&set);
        assert_eq!(bytes.len(), set.serialized_size());
        assert_eq!(
            decode(&bytes).as_ref(),
            Ok(&set),
            "encode(decode(set)) decodes to another set"
        );
        assert_eq!(u64::try_from(cardinality(&set)).ok(), Some(set.len()));
    }
});
