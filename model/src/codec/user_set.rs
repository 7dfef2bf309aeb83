//! A set of per-site user ordinals as a serialized roaring bitmap: the value
//! of `daily_user_sets`, `hourly_user_sets` and `weekly_user_sets`. The
//! format is roaring's portable serialization, which the crate keeps stable.

use super::CodecError;
use roaring::RoaringBitmap;

pub fn encode(set: &RoaringBitmap) -> Vec<u8> {
    let mut out = Vec::with_capacity(set.serialized_size());
    // Writing into a Vec cannot fail.
    let _ = set.serialize_into(&mut out);
    out
}

pub fn decode(bytes: &[u8]) -> Result<RoaringBitmap, CodecError> {
    RoaringBitmap::deserialize_from(bytes).map_err(|e| CodecError::UserSet(e.to_string()))
}

/// A set's size as the `user_count` column stores it.
pub fn cardinality(set: &RoaringBitmap) -> i64 {
    i64::try_from(set.len()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_round_trip_and_corruption_is_an_error() {
        let set: RoaringBitmap = [0u32, 7, 70_000, 4_000_000].into_iter().collect();
        let bytes = encode(&set);
        assert_eq!(decode(&bytes).ok(), Some(set));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(b"not a bitmap").is_err());
        assert_eq!(cardinality(&RoaringBitmap::new()), 0);
    }
}
