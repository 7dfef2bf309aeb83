//! A day's (or week's) page views by path in one value: every (path, views)
//! pair, sorted by path and front-coded. The compactor
//! (`maintenance::compaction`) moves each closed (site, day)'s
//! `daily_path_views` rows into one such pack, so a 30-day top-paths answer
//! reads about 30 values instead of grouping 15,000 rows; readers sum packs
//! with `add_pack` and rank with `rank`.
//!
//! The format is stored data: version 1 never changes. A new layout gets a
//! new version byte, and readers keep decoding the old one.

use super::CodecError;
use std::collections::BTreeMap;

const FORMAT_V1: u8 = 1;

fn corrupt(what: &'static str) -> CodecError {
    CodecError::PathPack(what)
}

/// A path and its views, ranked (`rank`).
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct PathViews {
    pub path: String,
    pub views: i64,
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        #[allow(clippy::cast_possible_truncation)]
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    #[allow(clippy::cast_possible_truncation)]
    out.push(n as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, CodecError> {
    let mut n: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or_else(|| corrupt("truncated number"))?;
        *pos += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err(corrupt("number too long"))
}

fn get_len(bytes: &[u8], pos: &mut usize) -> Result<usize, CodecError> {
    usize::try_from(get_varint(bytes, pos)?).map_err(|_| corrupt("length out of range"))
}

/// Packs (path, views) pairs: a format byte, the count, then per pair the
/// bytes shared with the previous path, the rest of the path and the views.
/// A `BTreeMap` iterates in byte order, which front coding relies on.
pub fn encode(counts: &BTreeMap<String, i64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + counts.len() * 16);
    out.push(FORMAT_V1);
    put_varint(&mut out, counts.len() as u64);
    let mut prev: &[u8] = &[];
    for (path, views) in counts {
        let key = path.as_bytes();
        let shared = prev.iter().zip(key).take_while(|(a, b)| a == b).count();
        put_varint(&mut out, shared as u64);
        put_varint(&mut out, (key.len() - shared) as u64);
        out.extend_from_slice(&key[shared..]);
        put_varint(&mut out, u64::try_from(*views).unwrap_or(0));
        prev = key;
    }
    out
}

/// Calls `f` with every (path bytes, views) of a pack, in path order, without
/// allocating per path.
pub fn visit(bytes: &[u8], mut f: impl FnMut(&[u8], i64)) -> Result<(), CodecError> {
    if bytes.first() != Some(&FORMAT_V1) {
        return Err(corrupt("unknown format"));
    }
    let mut pos = 1;
    let count = get_varint(bytes, &mut pos)?;
    let mut key: Vec<u8> = Vec::with_capacity(64);
    for _ in 0..count {
        let shared = get_len(bytes, &mut pos)?;
        let rest = get_len(bytes, &mut pos)?;
        if shared > key.len() {
            return Err(corrupt("shared prefix longer than the previous path"));
        }
        let end = pos.checked_add(rest).filter(|&e| e <= bytes.len());
        let suffix = end.map(|e| &bytes[pos..e]).ok_or_else(|| corrupt("truncated path"))?;
        key.truncate(shared);
        key.extend_from_slice(suffix);
        pos += rest;
        let views = i64::try_from(get_varint(bytes, &mut pos)?).map_err(|_| corrupt("views out of range"))?;
        f(&key, views);
    }
    if pos == bytes.len() {
        Ok(())
    } else {
        Err(corrupt("trailing bytes"))
    }
}

pub fn decode(bytes: &[u8]) -> Result<BTreeMap<String, i64>, CodecError> {
    let mut out = BTreeMap::new();
    let mut bad_utf8 = false;
    visit(bytes, |key, views| match std::str::from_utf8(key) {
        Ok(path) => {
            out.insert(path.to_string(), views);
        }
        Err(_) => bad_utf8 = true,
    })?;
    if bad_utf8 {
        return Err(corrupt("a path is not UTF-8"));
    }
    Ok(out)
}

/// Views by path bytes over a period. foldhash, not SipHash: a 30-day
/// answer adds about 15,000 (path, views) pairs from its packs, and SipHash
/// was a fifth of the api's time answering it. Its seeds are random per
/// process, so client-chosen paths cannot aim collisions.
pub type PathTotals = foldhash::HashMap<Vec<u8>, i64>;

/// Adds a pack's views to `totals`, keyed by path bytes. Sums saturate at
/// `i64::MAX`: a corrupt pack's huge views must not panic (or wrap) a reader.
pub fn add_pack(totals: &mut PathTotals, pack: &[u8]) -> Result<(), CodecError> {
    visit(pack, |path, views| {
        if let Some(n) = totals.get_mut(path) {
            *n = n.saturating_add(views);
        } else {
            totals.insert(path.to_vec(), views);
        }
    })
}

/// The `limit` most viewed, ties by path bytes (PostgreSQL's `COLLATE "C"`).
pub fn rank(totals: PathTotals, limit: u32) -> Result<Vec<PathViews>, CodecError> {
    let mut all: Vec<(Vec<u8>, i64)> = totals.into_iter().collect();
    let order = |a: &(Vec<u8>, i64), b: &(Vec<u8>, i64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0));
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if all.len() > limit {
        all.select_nth_unstable_by(limit, order);
        all.truncate(limit);
    }
    all.sort_unstable_by(order);
    all.into_iter()
        .map(|(path, views)| {
            Ok(PathViews {
                path: String::from_utf8(path).map_err(|_| corrupt("a path is not UTF-8"))?,
                views,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(p, v)| ((*p).to_string(), *v)).collect()
    }

    #[test]
    fn round_trip_with_shared_prefixes_and_multibyte_paths() {
        let c = counts(&[
            ("/", 7),
            ("/blog", 1),
            ("/blog/a", 300),
            ("/blog/ä", 2),
            ("/blog/äb", 1 << 40),
            ("/z", 1),
            ("", 4),
        ]);
        let packed = encode(&c);
        assert_eq!(decode(&packed).ok(), Some(c));
        assert_eq!(decode(&encode(&BTreeMap::new())).ok(), Some(BTreeMap::new()));
    }

    #[test]
    fn corrupt_packs_are_errors_not_panics() {
        let packed = encode(&counts(&[("/a", 1), ("/ab", 2)]));
        for cut in 0..packed.len() {
            assert!(decode(&packed[..cut]).is_err(), "prefix of {cut} bytes accepted");
        }
        let mut extra = packed.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        // A shared prefix longer than the previous path.
        assert!(decode(&[FORMAT_V1, 1, 5, 0, 1]).is_err());
        assert!(decode(&[9, 0]).is_err());
        assert!(decode(&[FORMAT_V1, 1, 0, 1, 0xff, 1]).is_err());
    }

    /// Fuzz finding (path_pack): summing views overflowed (a panic with
    /// overflow checks, a negative total without) on a pack holding a path
    /// twice with views near `i64::MAX`, or on two such packs.
    #[test]
    fn summed_views_saturate() {
        let big = encode(&counts(&[("/a", i64::MAX - 1), ("/b", 1)]));
        let mut totals = PathTotals::default();
        assert!(add_pack(&mut totals, &big).is_ok());
        assert!(add_pack(&mut totals, &big).is_ok());
        assert_eq!(totals.get(b"/a".as_slice()), Some(&i64::MAX));
        assert_eq!(totals.get(b"/b".as_slice()), Some(&2));
        // One pack, the same path twice (encode never writes it; a corrupt value may).
        let mut twice = vec![FORMAT_V1, 2, 0, 2];
        twice.extend_from_slice(b"/a");
        put_varint(&mut twice, i64::MAX as u64);
        twice.extend_from_slice(&[0, 2]);
        twice.extend_from_slice(b"/a");
        put_varint(&mut twice, i64::MAX as u64);
        let mut totals = PathTotals::default();
        assert!(add_pack(&mut totals, &twice).is_ok());
        assert_eq!(totals.get(b"/a".as_slice()), Some(&i64::MAX));
    }

    #[test]
    fn rank_orders_by_views_then_path_bytes() {
        let totals: PathTotals = [("/b", 5), ("/a", 5), ("/c", 9), ("/B", 5), ("/d", 1)]
            .iter()
            .map(|(p, v)| (p.as_bytes().to_vec(), *v))
            .collect();
        let ranked = rank(totals.clone(), 3).unwrap_or_default();
        let got: Vec<(&str, i64)> = ranked.iter().map(|p| (p.path.as_str(), p.views)).collect();
        assert_eq!(got, [("/c", 9), ("/B", 5), ("/a", 5)]);
        assert_eq!(rank(totals, 100).map(|r| r.len()).ok(), Some(5));
    }
}
