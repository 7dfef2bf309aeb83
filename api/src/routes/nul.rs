//! No text a client sends to the reading and admin routes may hold a NUL
//! character: PostgreSQL refuses one in any text, so such a value names no
//! site, key, goal or link, and sent to the database it would be an error
//! (a 500), not an answer. Refused here once, as a 400 naming the field,
//! for every parameter of the path, the query string and a JSON body
//! (admin bodies through `Json`, the query and funnel bodies through
//! `refuse_in_json`), instead of route by route. Ingest is not under
//! this: its events are checked field by field with the rest of their
//! rules.

use crate::error::ApiError;
use analytics_core::event::FieldError;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use serde_json::Value;

const MUST_NOT: &str = "must not contain a NUL character";

fn refusal(field: String) -> ApiError {
    ApiError::invalid("the request is invalid", vec![FieldError::new(field, MUST_NOT)])
}

/// Middleware: a NUL in the path or query string is a 400.
pub async fn refuse_in_uri(req: Request, next: Next) -> Result<Response, ApiError> {
    let template = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    if let Some(field) = nul_in_uri(req.uri(), template.as_deref()) {
        return Err(refusal(field));
    }
    Ok(next.run(req).await)
}

/// The field holding a NUL: a path parameter by its name in the route's
/// template, a query parameter by its name.
fn nul_in_uri(uri: &axum::http::Uri, template: Option<&str>) -> Option<String> {
    // A URI cannot carry a raw NUL (the HTTP parser refuses it): only `%00`.
    let raw = uri.path_and_query().map_or("", |p| p.as_str());
    if !raw.contains("%00") {
        return None;
    }
    let segments = uri.path().split('/');
    let mut names = template.unwrap_or("").split('/');
    for (i, segment) in segments.enumerate() {
        let name = names.next().and_then(|n| n.strip_prefix('{')?.strip_suffix('}'));
        if percent_decode_str(segment).any(|b| b == 0) {
            return Some(name.map_or_else(|| format!("path segment {i}"), str::to_owned));
        }
    }
    let query = uri.query().unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes()).find_map(|(k, v)| {
        if k.contains('\0') {
            Some("query parameter name".to_owned())
        } else {
            v.contains('\0').then(|| k.into_owned())
        }
    })
}

/// `axum::Json` with a NUL anywhere in the document refused as a 400
/// naming its place (`goal.name`, `steps[2]`); every other answer is
/// `axum::Json`'s own.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        use axum::response::IntoResponse;
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        refuse_in_json(&bytes).map_err(IntoResponse::into_response)?;
        let req = Request::from_parts(parts, Body::from(bytes));
        let axum::Json(value) = axum::Json::<T>::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self(value))
    }
}

/// A 400 naming the place of a NUL in a JSON body (the query and funnel
/// routes read theirs as bytes).
pub fn refuse_in_json(bytes: &[u8]) -> Result<(), ApiError> {
    nul_in_json(bytes).map_or(Ok(()), |field| Err(refusal(field)))
}

/// The only way JSON spells a NUL is the escape `\u0000`: the document is
/// parsed (to find where) only when that text occurs.
fn nul_in_json(bytes: &[u8]) -> Option<String> {
    if !bytes.windows(6).any(|w| w == br"\u0000") {
        return None;
    }
    let value: Value = serde_json::from_slice(bytes).ok()?;
    nul_in_value(&value, String::new())
}

fn nul_in_value(value: &Value, at: String) -> Option<String> {
    let field = |at: &str| {
        if at.is_empty() {
            "body".to_owned()
        } else {
            at.to_owned()
        }
    };
    match value {
        Value::String(s) => s.contains('\0').then(|| field(&at)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_in_value(v, format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let place = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
            if k.contains('\0') {
                Some(format!("a key in {}", field(&at)))
            } else {
                nul_in_value(v, place)
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_is_found_by_the_name_of_its_field() {
        let uri = |s: &str| s.parse::<axum::http::Uri>().unwrap();
        let goals = Some("/api/admin/sites/{site}/goals/{name}");
        assert_eq!(
            nul_in_uri(&uri("/api/admin/sites/a/goals/b%00"), goals).as_deref(),
            Some("name")
        );
        assert_eq!(
            nul_in_uri(&uri("/api/admin/sites/%00/goals/b"), goals).as_deref(),
            Some("site")
        );
        assert_eq!(nul_in_uri(&uri("/api/admin/sites/a/goals/b"), goals), None);
        assert_eq!(nul_in_uri(&uri("/x%00"), None).as_deref(), Some("path segment 1"));
        let stats = Some("/stats");
        assert_eq!(
            nul_in_uri(&uri("/stats?period=day&site_id=a%00b"), stats).as_deref(),
            Some("site_id")
        );
        assert_eq!(
            nul_in_uri(&uri("/stats?a%00=1"), stats).as_deref(),
            Some("query parameter name")
        );
        assert_eq!(nul_in_uri(&uri("/stats?site_id=%2500"), stats), None);

        let json = |s: &str| nul_in_json(s.as_bytes());
        assert_eq!(json(r#"{"site_id":"a\u0000"}"#).as_deref(), Some("site_id"));
        assert_eq!(
            json(r#"{"goal":{"steps":["x","\u0000"]}}"#).as_deref(),
            Some("goal.steps[1]")
        );
        assert_eq!(json(r#"{"k\u0000":1}"#).as_deref(), Some("a key in body"));
        assert_eq!(json(r#""\u0000""#).as_deref(), Some("body"));
        // A backslash followed by the text u0000 is not a NUL.
        assert_eq!(json(r#"{"a":"\\u0000"}"#), None);
        assert_eq!(json(r#"{"a":"b"}"#), None);
    }
}
