//! Every way a request can fail, each mapped to one status. Internal errors
//! are logged and never shown to the client.

use analytics_core::event::FieldError;
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
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        // A database that cannot answer is a retryable outage, not a bug.
        tracing::error!(error = %e, "database error");
        Self::Unavailable("database unavailable, retry later".into())
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
