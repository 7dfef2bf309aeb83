//! The dashboard's door: `/login` (paste a key; a `read` or `admin` key
//! opens a session cookie), `/logout`, and `/share/<token>` (a shared link
//! opens that site's dashboard, read-only).

use crate::auth::{access_error, cookie, set_cookie, SESSION_COOKIE, SHARE_COOKIE};
use crate::config::CookieSecure;
use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::access::keys::{self, Scope};
use analytics_core::access::{links, session};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

const LOGIN_PAGE: &str = include_str!("login.html");
const LOGIN_ERROR_MARK: &str = "<!--error-->";

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Login {
    /// A `read` or `admin` API key.
    key: String,
}

/// Whether this request came over TLS: `COOKIE_SECURE`, or a trusted
/// proxy's `X-Forwarded-Proto: https` (`auto`).
fn secure(state: &AppState, headers: &HeaderMap, trusted_peer: bool) -> bool {
    match state.cookie_secure {
        CookieSecure::Always => true,
        CookieSecure::Never => false,
        CookieSecure::Auto => {
            trusted_peer
                && headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("https"))
        }
    }
}

fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response();
    for c in cookies {
        if let Ok(v) = header::HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

fn page(error: Option<&str>) -> Response {
    let html = match error {
        Some(e) => LOGIN_PAGE.replace(LOGIN_ERROR_MARK, &format!("<p class=\"error\" role=\"alert\">{e}</p>")),
        None => LOGIN_PAGE.to_string(),
    };
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

#[utoipa::path(
    get,
    path = "/login",
    tag = "session",
    operation_id = "login_page",
    summary = "The login page",
    responses((status = 200, description = "A form that takes a key", body = String, content_type = "text/html"))
)]
pub async fn login_page() -> Response {
    page(None)
}

#[utoipa::path(
    post,
    path = "/login",
    tag = "session",
    operation_id = "login",
    summary = "Log in with a key",
    description = "A live `read` or `admin` key opens a signed, HttpOnly session cookie (`analytics_session`).",
    request_body(content = Login, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Logged in: to the dashboard, with the session cookie", headers(
            ("Location" = String, description = "`/`"),
            ("Set-Cookie" = String, description = "`analytics_session`, and `analytics_share` cleared"),
        )),
        (status = 401, description = "Not a live read or admin key: the page again, with the reason", body = String, content_type = "text/html"),
        (status = 415, description = "Not a form (`application/x-www-form-urlencoded`)", body = String, content_type = "text/plain"),
        (status = 422, description = "The form has no `key`", body = String, content_type = "text/plain"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    req_peer: crate::routes::TrustedPeer,
    Form(form): Form<Login>,
) -> Result<Response, ApiError> {
    let principal = keys::verify(&state.db, form.key.trim()).await.map_err(access_error)?;
    let Some(p) = principal.filter(|p| matches!(p.scope, Scope::Read | Scope::Admin)) else {
        return Ok((
            StatusCode::UNAUTHORIZED,
            page(Some("That key is not a live read or admin key.")),
        )
            .into_response());
    };
    let expires = chrono::Utc::now().timestamp() + session::SESSION_SECONDS;
    let value = session::sign(&state.access.session_secret, &p.name, expires);
    let secure = secure(&state, &headers, req_peer.0);
    Ok(redirect(
        "/",
        &[
            set_cookie(SESSION_COOKIE, &value, session::SESSION_SECONDS, secure),
            set_cookie(SHARE_COOKIE, "", 0, secure),
        ],
    ))
}

#[utoipa::path(
    post,
    path = "/logout",
    tag = "session",
    operation_id = "logout",
    summary = "Log out",
    responses((status = 303, description = "The cookies cleared; to `/login`", headers(
        ("Location" = String, description = "`/login`"),
        ("Set-Cookie" = String, description = "`analytics_session` and `analytics_share` cleared"),
    )))
)]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap, peer: crate::routes::TrustedPeer) -> Response {
    let secure = secure(&state, &headers, peer.0);
    redirect(
        "/login",
        &[
            set_cookie(SESSION_COOKIE, "", 0, secure),
            set_cookie(SHARE_COOKIE, "", 0, secure),
        ],
    )
}

#[utoipa::path(
    get,
    path = "/share/{token}",
    tag = "session",
    operation_id = "share",
    summary = "Open a shared link",
    params(("token" = String, Path, description = "The link's token, `sl_…`")),
    responses(
        (status = 303, description = "The token kept in a cookie; to the site's dashboard", headers(
            ("Location" = String, description = "`/?site=SITE`"),
            ("Set-Cookie" = String, description = "`analytics_share`"),
        )),
        (status = 404, description = "No such link, or it was revoked", body = crate::openapi::ErrorBody),
    )
)]
/// Opens a shared link: its token in a cookie, then the site's dashboard.
pub async fn share(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: crate::routes::TrustedPeer,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let Some(p) = links::verify(&state.db, &token).await.map_err(access_error)? else {
        return Err(ApiError::NotFound("this link does not exist or was revoked".into()));
    };
    let site = p.sites.first().cloned().unwrap_or_default();
    let secure = secure(&state, &headers, peer.0);
    let keep_session = cookie(&headers, SESSION_COOKIE).is_some();
    let mut cookies = vec![set_cookie(SHARE_COOKIE, &token, session::SESSION_SECONDS, secure)];
    if keep_session {
        // A shared link shows that link's site only.
        cookies.push(set_cookie(SESSION_COOKIE, "", 0, secure));
    }
    let to = format!("/?site={}", url_encode(&site));
    Ok(redirect(&to, &cookies))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[utoipa::path(
    get,
    path = "/session",
    tag = "session",
    operation_id = "session",
    summary = "Who the caller is",
    description = "For the dashboard: nobody, open mode, a key (its name, scope and sites) or a shared link. Never a secret.",
    responses((status = 200, description = "The caller", body = crate::openapi::SessionInfo)),
    security((), ("bearer" = []), ("session" = []), ("share_link" = []))
)]
/// `GET /session`: who the page is, for the dashboard to adapt (a login
/// prompt, a logout control, a shared view's banner). Never a secret.
pub async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let principal = state.access.principal(&state.db, &headers).await?;
    let body = match principal {
        None => serde_json::json!({"kind": "none", "name": null, "sites": []}),
        Some(p) => {
            let kind = if state.access.open {
                "open"
            } else if p.name.starts_with("link:") {
                "link"
            } else {
                "key"
            };
            serde_json::json!({"kind": kind, "name": p.name, "scope": p.scope, "sites": p.sites})
        }
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response())
}
