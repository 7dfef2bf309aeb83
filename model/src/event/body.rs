//! A request body's bytes as sent (`Content-Encoding`: none, `identity`,
//! `gzip`) to the bytes the event parser reads, bounded after decoding as
//! before it, so that a small gzip bomb cannot become a large body.

/// Why a body cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("decompressed request body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("body is not valid gzip: {0}")]
    BadGzip(String),
    #[error("Content-Encoding `{0}` is not supported (use gzip or none)")]
    UnsupportedEncoding(String),
}

/// `raw` decoded by `encoding` (already lower-cased and trimmed), at most
/// `limit` bytes: an unencoded body over the limit is `TooLarge` too.
pub fn decode(encoding: Option<&str>, raw: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    use std::io::Read;
    match encoding {
        None | Some("identity") if raw.len() > limit => Err(BodyError::TooLarge(limit)),
        None | Some("identity") => Ok(raw.to_vec()),
        Some("gzip" | "x-gzip") => {
            let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit.saturating_add(1)));
            flate2::read::GzDecoder::new(raw)
                .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
                .read_to_end(&mut out)
                .map_err(|e| BodyError::BadGzip(e.to_string()))?;
            if out.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            Ok(out)
        }
        Some(other) => Err(BodyError::UnsupportedEncoding(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = e.write_all(bytes);
        e.finish().unwrap_or_default()
    }

    #[test]
    fn gzip_is_bounded_after_decoding() {
        assert_eq!(decode(None, b"abc", 3).ok(), Some(b"abc".to_vec()));
        assert_eq!(decode(Some("gzip"), &gzip(b"abc"), 3).ok(), Some(b"abc".to_vec()));
        let bomb = gzip(&vec![b'x'; 100_000]);
        assert!(bomb.len() < 1_000);
        assert_eq!(decode(Some("gzip"), &bomb, 99_999), Err(BodyError::TooLarge(99_999)));
        assert!(matches!(
            decode(Some("gzip"), b"not gzip", 10),
            Err(BodyError::BadGzip(_))
        ));
        assert!(matches!(
            decode(Some("br"), b"", 10),
            Err(BodyError::UnsupportedEncoding(_))
        ));
    }

    /// Fuzz finding (body_decode): without encoding the body came back
    /// whole, however far over the limit.
    #[test]
    fn unencoded_body_is_bounded_too() {
        assert_eq!(decode(None, b"abcd", 3), Err(BodyError::TooLarge(3)));
        assert_eq!(decode(Some("identity"), b"abcd", 0), Err(BodyError::TooLarge(0)));
        assert_eq!(decode(Some("identity"), b"", 0).ok(), Some(Vec::new()));
    }

    /// Fuzz finding (body_decode): `limit + 1` overflowed (a panic with
    /// overflow checks) when the limit was `usize::MAX`, "no limit".
    #[test]
    fn the_largest_limit_does_not_overflow() {
        assert_eq!(
            decode(Some("gzip"), &gzip(b"abc"), usize::MAX).ok(),
            Some(b"abc".to_vec())
        );
        assert_eq!(decode(None, b"abc", usize::MAX).ok(), Some(b"abc".to_vec()));
    }
}
