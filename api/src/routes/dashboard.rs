//! `GET /`: the dashboard, a static page built from `dashboard/` with vite.
//! Its output (`dashboard/dist/`, committed) is compiled into the binary, so
//! `cargo run` serves it on a fresh machine without Node.

use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};

// Vite is configured (dashboard/vite.config.js) to emit these fixed names, so
// they can be embedded without a directory-walking crate.
const INDEX_HTML: &str = include_str!("../../../dashboard/dist/index.html");
const APP_JS: &str = include_str!("../../../dashboard/dist/assets/app.js");
const APP_CSS: &str = include_str!("../../../dashboard/dist/assets/app.css");

// The asset names carry no content hash, so browsers must revalidate; the
// files are small and served from memory.
const CACHE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-cache");

/// The page's footer says which mode is running, as the landing page did.
const MODE_PLACEHOLDER: &str = "__ANALYTICS_MODE__";

#[utoipa::path(get, path = "/", tag = "pages", operation_id = "dashboard", summary = "The dashboard",
    responses((status = 200, description = "The dashboard's page", body = String, content_type = "text/html")))]
pub async fn index(State(state): State<AppState>) -> impl IntoResponse {
    let mode = if state.embedded {
        "embedded mode (SQLite)"
    } else {
        "Kafka mode (PostgreSQL)"
    };
    ([CACHE], Html(INDEX_HTML.replace(MODE_PLACEHOLDER, mode)))
}

#[utoipa::path(get, path = "/assets/app.js", tag = "pages", operation_id = "dashboard_script", summary = "The dashboard's script",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript")))]
pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), CACHE],
        APP_JS,
    )
}

#[utoipa::path(get, path = "/assets/app.css", tag = "pages", operation_id = "dashboard_style", summary = "The dashboard's styles",
    responses((status = 200, description = "CSS", body = String, content_type = "text/css")))]
pub async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), CACHE], APP_CSS)
}
