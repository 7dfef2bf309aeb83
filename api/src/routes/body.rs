//! Reading an ingest request body: JSON only, optionally gzip-compressed, and
//! bounded both before and after decompression (no zip bombs).

use crate::error::ApiError;
use axum::body::{to_bytes, Body, Bytes};
use axum::http::{header, HeaderMap};
use std::io::Read;

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// The decoded body, at most `limit` bytes.
pub async fn read_json_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::UnsupportedMediaType(
            "Content-Type must be application/json".into(),
        ));
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let too_large = || ApiError::TooLarge(format!("request body exceeds {limit} bytes"));
    let raw = to_bytes(body, limit).await.map_err(|_| too_large())?;
    match encoding.as_deref() {
        None | Some("identity") => Ok(raw),
        Some("gzip" | "x-gzip") => {
            let mut out = Vec::with_capacity(raw.len() * 4);
            flate2::read::GzDecoder::new(&raw[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::invalid(format!("body is not valid gzip: {e}"), vec![]))?;
            if out.len() > limit {
                return Err(ApiError::TooLarge(format!(
                    "decompressed request body exceeds {limit} bytes"
                )));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding `{other}` is not supported (use gzip or none)"
        ))),
    }
}
