//! Every way a request can fail, each mapped to one status. Internal errors
//! are logged and never shown to the client.

use analytics_core::event::FieldError;
use analytics_core::ops::telemetry::error_chain;
use analytics_core::store::StoreError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Seconds a client should wait before retrying after a 503.
const RETRY_AFTER_SECONDS: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Invalid { message: String, details: Vec<FieldError> },
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Ingest for a site that is not registered (Kafka mode).
    #[error("{message}")]
    UnknownSite { message: String, details: Vec<FieldError> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Timeout(String),
    /// The database refused the request's data (not worth retrying as is).
    #[error("{0}")]
    Refused(String),
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    #[error("the server is busy, retry later")]
    Overloaded,
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(message: impl Into<String>, details: Vec<FieldError>) -> Self {
        Self::Invalid {
            message: message.into(),
            details,
        }
    }

    /// Fixed label values for `analytics_events_rejected_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid",
            Self::TooLarge(_) => "too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::UnknownSite { .. } => "unknown_site",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Timeout(_) => "timeout",
            Self::Refused(_) => "refused",
            Self::RateLimited { .. } => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for ApiError {
    /// A database that cannot answer right now is a retryable outage (503,
    /// `Retry-After`); anything else (corrupt stored data, a full site, a
    /// bug) is a 500 that retrying would not mend. Either way the cause is
    /// logged with its whole chain, and the client sees none of it.
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            tracing::warn!(error = %error_chain(&e), "database unavailable");
            Self::Unavailable("database unavailable, retry later".into())
        } else {
            Self::Internal(error_chain(&e))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            Self::Invalid { message, details } => {
                (StatusCode::BAD_REQUEST, json!({"error": message, "details": details}))
            }
            Self::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, json!({"error": m, "details": []})),
            Self::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, json!({"error": m, "details": []})),
            Self::Unauthorized(m) => {
                let mut resp = (StatusCode::UNAUTHORIZED, Json(json!({"error": m, "details": []}))).into_response();
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
                return resp;
            }
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, json!({"error": m, "details": []})),
            Self::UnknownSite { message, details } => {
                (StatusCode::FORBIDDEN, json!({"error": message, "details": details}))
            }
            Self::NotFound(m) => (StatusCode::NOT_FOUND, json!({"error": m, "details": []})),
            Self::Conflict(m) => (StatusCode::CONFLICT, json!({"error": m, "details": []})),
            Self::Timeout(m) => (StatusCode::REQUEST_TIMEOUT, json!({"error": m, "details": []})),
            Self::Refused(m) => (StatusCode::UNPROCESSABLE_ENTITY, json!({"error": m, "details": []})),
            Self::RateLimited { message, retry_after } => {
                let mut resp = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({"error": message, "details": []})),
                )
                    .into_response();
                if let Ok(v) = header::HeaderValue::from_str(&retry_after.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return resp;
            }
            Self::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": self.to_string(), "details": []}),
            ),
            Self::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({"error": m, "details": []})),
            Self::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal error", "details": []}),
                )
            }
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        resp
    }
}

impl From<analytics_core::query::v2::QueryError> for ApiError {
    /// Too many events for one read is the client's range: a 400 naming
    /// it. The store's failures as ever.
    fn from(e: analytics_core::query::v2::QueryError) -> Self {
        use analytics_core::query::v2::QueryError;
        match e {
            QueryError::TooLarge { .. } => {
                Self::invalid("query too large", vec![FieldError::new("date_range", e.to_string())])
            }
            QueryError::Store(e) => e.into(),
        }
    }
}
