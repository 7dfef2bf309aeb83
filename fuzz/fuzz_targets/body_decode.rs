//! A request body as the ingest routes decode it (`event::body::decode`).
//! The first byte picks the encoding (bit 0: gzip or none; bit 1: its
//! alias) and the limit (bits 2–4: 0, 1, 64, 1000, 64 KiB, 1 MiB, the input's
//! length or `usize::MAX`); the rest is the body.
//! Oracle: nothing panics; the output is at most `limit` bytes; a body
//! without encoding comes back unchanged (or `TooLarge`); and the rest,
//! gzip-compressed, decodes back to itself when it fits the limit and is
//! `TooLarge` when it does not.
#![no_main]

use analytics_model::event::body::{decode, BodyError};
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(bytes).expect("writing into a Vec");
    e.finish().expect("writing into a Vec")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let limit = match (selector >> 2) & 7 {
        0 => 0,
        1 => 1,
        2 => 64,
        3 => 1000,
        4 => 64 * 1024,
        5 => 1024 * 1024,
        6 => rest.len(),
        _ => usize::MAX,
    };
    let encoding = match selector & 3 {
        0 => None,
        1 => Some("gzip"),
        2 => Some("identity"),
        _ => Some("x-gzip"),
    };

    // The rest as sent.
    match decode(encoding, rest, limit) {
        Ok(out) => {
            assert!(
                out.len() <= limit,
                "decoded {} bytes over a limit of {limit}",
                out.len()
            );
            if !matches!(encoding, Some("gzip" | "x-gzip")) {
                assert_eq!(out, rest, "an unencoded body changed");
            }
        }
        Err(BodyError::TooLarge(n)) => assert_eq!(n, limit),
        Err(BodyError::BadGzip(_)) => assert!(matches!(encoding, Some("gzip" | "x-gzip"))),
        Err(e @ BodyError::UnsupportedEncoding(_)) => panic!("{e}"),
    }

    // The rest, compressed (the level from the selector's top bits).
    let packed = gzip(rest, u32::from(selector >> 5) + 1);
    match decode(Some("gzip"), &packed, limit) {
        Ok(out) => assert_eq!(out, rest, "gzip did not round-trip"),
        Err(BodyError::TooLarge(_)) => assert!(rest.len() > limit, "{} bytes refused as over {limit}", rest.len()),
        Err(e) => panic!("a gzip body made by flate2 is refused: {e}"),
    }
});
