//! `GET /js/script.js`: the tracking script (`tracker/`, built with esbuild
//! into `tracker/dist/`, committed and compiled into the binary), so that
//! `<script defer data-domain="example.com" src="https://HOST/js/script.js">`
//! works. Cached by browsers for a day and revalidated by its ETag (the
//! URL carries no version, so a longer life would pin old scripts).

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::hash::Hasher;
use std::sync::OnceLock;

const SCRIPT: &str = include_str!("../../../tracker/dist/script.js");
const CACHE_CONTROL: &str = "public, max-age=86400, must-revalidate";

/// The script's ETag: a hash of its bytes, fixed for the build.
fn etag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let mut h = std::hash::DefaultHasher::new();
        h.write(SCRIPT.as_bytes());
        format!("\"{:016x}\"", h.finish())
    })
}

#[utoipa::path(
    get,
    path = "/js/script.js",
    tag = "pages",
    operation_id = "tracker_script",
    summary = "The tracking script",
    params(("If-None-Match" = Option<String>, Header, description = "The ETag of a copy held")),
    responses(
        (status = 200, description = "JavaScript", body = String, content_type = "text/javascript",
            headers(("ETag" = String, description = "The script's version"))),
        (status = 304, description = "The copy held is current"),
    )
)]
pub async fn script(headers: HeaderMap) -> Response {
    let tag = etag();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let common = [
        (header::CACHE_CONTROL, CACHE_CONTROL),
        (header::ETAG, tag),
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}
