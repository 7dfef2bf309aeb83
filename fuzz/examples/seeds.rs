//! Writes the seed inputs of every target into `corpus/<target>/seed-*`:
//! `cargo run --example seeds` in `fuzz/`. Realistic values made by the
//! platform's own code (the payload encoder, `path_pack::encode`,
//! `user_set::encode`), so the fuzzer starts from inputs that get deep.

use analytics_fuzz::now;
use analytics_model::codec::{path_pack, user_set};
use analytics_model::event::payload::PayloadEncoder;
use analytics_model::event::{parse_batch, Policy};
use roaring::RoaringBitmap;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

const ONE: &str = r#"{"site_id":"shop-eu","event_type":"page_view","path":"/products/42?ref=mail","user_id":"u-1f3a","timestamp":"2025-11-15T05:00:00.123Z","event_id":"0190b6a4-0000-7000-8000-000000000001","referrer":"https://news.example/a\tb","props":{"plan":"pro \"gold\"\nline","n":3.5,"big":18446744073709551615,"neg":-7}}"#;
const MINIMAL: &str = r#"{"site_id":"s","event_type":"signup"}"#;
const BATCH: &str = r#"[{"site_id":"shop-eu","event_type":"page_view","path":"/","user_id":"u1","timestamp":"2025-11-15T01:30:00.5-05:00"},{"site_id":"shop-eu","event_type":"checkout:done","path":"/cart/ä","timestamp":"2024-02-29T23:59:60.999999999+01:00","props":{"total":99.99,"currency":"EUR"}},{"site_id":"é日本","event_type":"x.y-z_1","event_id":"{0190b6a4-0000-7000-8000-000000000002}","referrer":""}]"#;
const REFUSED: &str = r#"[{"site_id":"","event_type":"page view","path":"/a\u0000b","timestamp":"yesterday","event_id":"00000000-0000-0000-0000-000000000000","props":{"k\u007f":1,"nested":{"a":[1]}}}]"#;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus directory");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed file");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("writing into a Vec");
    e.finish().expect("writing into a Vec")
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");

    let dir = root.join("event_json");
    for (name, json) in [
        ("one", ONE),
        ("minimal", MINIMAL),
        ("batch", BATCH),
        ("refused", REFUSED),
    ] {
        write(&dir, name, json.as_bytes());
    }

    let dir = root.join("kafka_payload");
    let mut encoder = PayloadEncoder::default();
    let events = parse_batch(format!("[{ONE},{}]", &BATCH[1..BATCH.len() - 1]).as_bytes()).expect("seed events parse");
    for (i, incoming) in events.into_iter().enumerate() {
        let ev = incoming
            .validate_with(now(), Policy::stored())
            .expect("seed events are valid");
        write(&dir, &format!("event-{i}"), encoder.encode(&ev).expect("encodes"));
    }

    // The selector byte: bits 0-1 the encoding, bits 2-4 the limit (4: 64 KiB).
    let dir = root.join("body_decode");
    write(&dir, "plain", &[[4 << 2].as_slice(), BATCH.as_bytes()].concat());
    write(
        &dir,
        "gzip",
        &[[(4 << 2) | 1].as_slice(), &gzip(BATCH.as_bytes())].concat(),
    );
    write(
        &dir,
        "gzip-bomb",
        &[[(2 << 2) | 3].as_slice(), &gzip(&[b' '; 10_000])].concat(),
    );

    let dir = root.join("path_pack");
    let day: BTreeMap<String, i64> = [
        ("/", 7),
        ("/blog", 1),
        ("/blog/a", 300),
        ("/blog/ä", 2),
        ("/z", 1 << 40),
        ("", 4),
    ]
    .iter()
    .map(|(p, v)| ((*p).to_string(), *v))
    .collect();
    write(&dir, "day", &path_pack::encode(&day));
    write(&dir, "empty", &path_pack::encode(&BTreeMap::new()));
    let many: BTreeMap<String, i64> = (0..200).map(|i| (format!("/docs/page-{i:03}"), i * 3)).collect();
    write(&dir, "many", &path_pack::encode(&many));

    let dir = root.join("user_set");
    let small: RoaringBitmap = [0u32, 7, 70_000, 4_000_000, u32::MAX].into_iter().collect();
    write(&dir, "small", &user_set::encode(&small));
    write(&dir, "empty", &user_set::encode(&RoaringBitmap::new()));
    let dense: RoaringBitmap = (0..10_000u32).map(|i| i * 3).collect();
    write(&dir, "bitmap-container", &user_set::encode(&dense));
    let mut runs: RoaringBitmap = (1_000..3_000u32).chain(200_000..200_100).collect();
    runs.optimize();
    write(&dir, "run-containers", &user_set::encode(&runs));
}
