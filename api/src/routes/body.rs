//! Reading an ingest request body: JSON only, optionally gzip-compressed, and
//! bounded both before and after decompression (no zip bombs).

use crate::error::ApiError;
use analytics_core::event::{self, body::BodyError};
use axum::body::{to_bytes, Body, Bytes};
use axum::http::{header, HeaderMap};

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

/// `text/plain`: what browsers' trackers send, as a "simple" request that
/// needs no CORS preflight.
fn is_text(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("text/plain"))
}

/// The decoded body, at most `limit` bytes.
pub async fn read_json_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::UnsupportedMediaType(
            "Content-Type must be application/json".into(),
        ));
    }
    read_body(headers, body, limit).await
}

/// A tracker's body: JSON sent as `application/json` or `text/plain`.
pub async fn read_event_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    if !is_json(headers) && !is_text(headers) {
        return Err(ApiError::UnsupportedMediaType(
            "Content-Type must be application/json or text/plain".into(),
        ));
    }
    read_body(headers, body, limit).await
}

async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let raw = to_bytes(body, limit).await.map_err(|e| body_read_error(&e, limit))?;
    match encoding.as_deref() {
        None | Some("identity") => Ok(raw),
        encoding => event::body::decode(encoding, &raw, limit)
            .map(Bytes::from)
            .map_err(|e| match e {
                BodyError::TooLarge(_) => ApiError::TooLarge(e.to_string()),
                BodyError::BadGzip(_) => ApiError::invalid(e.to_string(), vec![]),
                BodyError::UnsupportedEncoding(_) => ApiError::UnsupportedMediaType(e.to_string()),
            }),
    }
}

/// Why the body could not be read: over the limit (413), or it stopped
/// arriving (408: the body timeout), or the connection broke (400).
fn body_read_error(e: &axum::Error, limit: usize) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return ApiError::TooLarge(format!("request body exceeds {limit} bytes"));
        }
        if s.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::Timeout("the request body stopped arriving".into());
        }
        source = s.source();
    }
    ApiError::invalid("the request body could not be read", vec![])
}
