//! The OpenAPI 3.1 document of the api, served at `GET /openapi.json`, and
//! its reference page at `GET /docs` (Redoc, its script embedded and
//! served from here, so the page works offline and under the site's
//! Content-Security-Policy).
//!
//! Every route is described where it is handled (`#[utoipa::path]` on the
//! handler) and its answer by its own type (`ToSchema`) where the handler
//! returns one. The handlers that build their JSON with `json!` are
//! described by the small schema types below, which mirror that JSON
//! field for field; `schemathesis` (scripts/schemathesis.sh) checks every
//! answer of the running api against them.

// The schema types below are never built: they only describe JSON.
#![allow(dead_code)]

use analytics_core::access::keys::{KeyInfo, Scope};
use analytics_core::access::links::LinkInfo;
use analytics_core::access::sites::SiteInfo;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::openapi::schema::{
    Array, ArrayBuilder, ArrayItems, KnownFormat, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

/// Every error's body: a sentence, and each field at fault.
#[derive(ToSchema)]
#[schema(example = json!({"error": "event is invalid", "details": [{"field": "site_id", "message": "is required"}]}))]
pub struct ErrorBody {
    pub error: String,
    /// Empty when no single field is at fault.
    pub details: Vec<FieldError>,
}

/// One field at fault: its name (`site_id`, `[3].event_type`,
/// `filters[0][1]`; `body` for the whole body) and what is wrong with it.
#[derive(ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// A prop's value: text or a number.
#[derive(ToSchema, Deserialize)]
#[serde(untagged)]
pub enum PropValue {
    Text(String),
    Number(f64),
}

/// One event, as `POST /events` and `POST /events/batch` take it.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"site_id": "site-abc-123", "event_type": "page_view", "path": "/home",
                          "user_id": "user-001", "timestamp": "2025-11-15T05:00:00Z"}))]
pub struct EventInput {
    /// The site, 1–100 characters, no control character.
    #[schema(min_length = 1, max_length = 100, pattern = "^[^\\x00-\\x08\\x0A-\\x1F\\x7F]*$")]
    pub site_id: String,
    /// `page_view` counts as a view; letters, digits and `_ . : -`.
    #[schema(min_length = 1, max_length = 50, pattern = "^[A-Za-z0-9_.:-]+$")]
    pub event_type: String,
    /// The page's path, at most 2,048 bytes, no control character.
    #[schema(max_length = 2048, pattern = "^[^\\x00-\\x08\\x0A-\\x1F\\x7F]*$")]
    pub path: Option<String>,
    /// Empty or absent: not counted as a user.
    #[schema(max_length = 100, pattern = "^[^\\x00-\\x08\\x0A-\\x1F\\x7F]*$")]
    pub user_id: Option<String>,
    /// RFC 3339, any offset; absent: now. More than 10 minutes ahead, or
    /// older than `EVENT_MAX_AGE_DAYS`: 400.
    pub timestamp: Option<DateTime<Utc>>,
    /// Resending an id is a no-op; absent: one is assigned.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub event_id: Option<String>,
    #[schema(max_length = 2048)]
    pub referrer: Option<String>,
    /// At most 50 entries, each a string or a number.
    pub props: Option<BTreeMap<String, PropValue>>,
    /// The page's URL, for enrichment (hostname, path, campaign); not stored.
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// A forwarded visitor's User-Agent, for enrichment; a bot's event is dropped.
    #[schema(max_length = 512)]
    pub user_agent: Option<String>,
}

/// `POST /events`' answer.
#[derive(ToSchema)]
pub struct EventAccepted {
    /// `Event accepted`, or why it was dropped.
    pub message: String,
    #[schema(value_type = String, format = Uuid)]
    pub event_id: String,
    /// Present (true) when the event was a bot's and was not kept.
    pub dropped: Option<bool>,
}

/// `POST /events/batch`' answer.
#[derive(ToSchema)]
pub struct BatchAccepted {
    pub accepted: u64,
    /// Present when some events were bots' and were not kept.
    pub dropped_bots: Option<u64>,
}

/// Plausible's event payload (its long keys; the short ones `n`, `u`, `d`,
/// `r`, `p`, `$`, `i`, `h` are taken too). Unknown keys are ignored.
#[derive(ToSchema)]
#[schema(example = json!({"name": "pageview", "url": "https://example.com/pricing", "domain": "example.com"}))]
pub struct PlausibleEventInput {
    /// `pageview` is stored as `page_view`; other names as sent.
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    #[schema(min_length = 1)]
    pub url: String,
    /// The site's domain, or a comma list of them.
    #[schema(min_length = 1)]
    pub domain: String,
    pub referrer: Option<String>,
    /// Custom props: strings, numbers or booleans.
    #[schema(value_type = Option<Object>)]
    pub props: Option<serde_json::Value>,
    /// `{"amount": …, "currency": "EUR"}`, kept as props.
    #[schema(value_type = Option<Object>)]
    pub revenue: Option<serde_json::Value>,
    pub interactive: Option<bool>,
    /// The URL's fragment is part of the path.
    #[serde(rename = "hashMode")]
    #[schema(rename = "hashMode")]
    pub hash_mode: Option<bool>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Compare {
    Previous,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum IntervalParam {
    Hour,
    Day,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ByParam {
    Path,
    EventType,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

/// `GET /stats`' parameters; any other is a 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// The site.
    #[param(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x08\\x0A-\\x1F\\x7F]*$",
        example = "site-abc-123"
    )]
    pub site_id: String,
    /// One day (not with `from`/`to`); neither: today.
    pub date: Option<NaiveDate>,
    /// First day of a range (with `to`; at most 366 days).
    pub from: Option<NaiveDate>,
    /// Last day of the range, inclusive.
    pub to: Option<NaiveDate>,
    /// Top paths, 1–100 (10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Also the totals of the period of the same length just before.
    #[param(inline)]
    pub compare: Option<Compare>,
}

/// `GET /stats/timeseries`' parameters; any other is a 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    #[param(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x08\\x0A-\\x1F\\x7F]*$",
        example = "site-abc-123"
    )]
    pub site_id: String,
    pub date: Option<NaiveDate>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Hourly for one or two days, else daily; `hour` at most 31 days.
    #[param(inline)]
    pub interval: Option<IntervalParam>,
}

/// `GET /stats/breakdown`' parameters; any other is a 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BreakdownParams {
    #[param(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x08\\x0A-\\x1F\\x7F]*$",
        example = "site-abc-123"
    )]
    pub site_id: String,
    pub date: Option<NaiveDate>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// `path`: page views per path; `event_type`: events per type.
    #[param(inline)]
    pub by: ByParam,
    /// Rows, 1–1000 (10).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// `GET /stats/live`' parameter; any other is a 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveParams {
    #[param(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x08\\x0A-\\x1F\\x7F]*$",
        example = "site-abc-123"
    )]
    pub site_id: String,
}

/// `GET /api/export/events`' parameters; any other is a 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    #[param(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x08\\x0A-\\x1F\\x7F]*$",
        example = "site-abc-123"
    )]
    pub site_id: String,
    /// The first local day.
    pub from: NaiveDate,
    /// The last local day, inclusive.
    pub to: NaiveDate,
    /// `ndjson` (default) or `csv`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
}

/// `GET /sites`' answer.
#[derive(ToSchema)]
pub struct SitesList {
    /// Readable sites that have data, byte order.
    pub sites: Vec<String>,
    /// Each one's IANA time zone.
    pub timezones: BTreeMap<String, String>,
}

/// Who the caller is.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum SessionKind {
    None,
    Open,
    Link,
    Key,
}

/// `GET /session`'s answer.
#[derive(ToSchema)]
pub struct SessionInfo {
    pub kind: SessionKind,
    /// The key's (or link's) name; null for nobody.
    pub name: Option<String>,
    /// Absent for nobody.
    pub scope: Option<Scope>,
    /// The sites it may read; empty: every site.
    pub sites: Vec<String>,
}

/// A JSON string schema that takes one of `values`.
fn one_of_strings(values: Vec<String>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description))
        .build()
}

fn dimension_names() -> Vec<String> {
    use analytics_query::{EventDimension, TimeDimension, VisitDimension};
    [EventDimension::Page, EventDimension::Hostname, EventDimension::Name]
        .iter()
        .map(EventDimension::name)
        .chain(std::iter::once(analytics_query::dimension::GOAL.to_string()))
        .chain(VisitDimension::ALL.iter().map(|d| d.name().to_string()))
        .chain(TimeDimension::ALL.iter().map(|d| d.name().to_string()))
        .collect()
}

/// `metrics`: the names `analytics_query::Metric` knows.
fn metrics_schema() -> Array {
    let names = analytics_query::Metric::ALL
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    ArrayBuilder::new()
        .items(one_of_strings(names, "A metric (query/README.md defines each)"))
        .min_items(Some(1))
        .build()
}

/// `dimensions`: the dimensions `analytics_query` knows (and `event:props:KEY`).
fn dimensions_schema() -> Array {
    ArrayBuilder::new()
        .items(
            OneOfBuilder::new()
                .item(one_of_strings(dimension_names(), "A dimension"))
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some("^event:props:.+$"))
                        .description(Some("A custom prop"))
                        .build(),
                ),
        )
        .build()
}

/// `date_range`: a named period, or two dates (both days included).
fn date_range_schema() -> Schema {
    let named = analytics_query::NamedPeriod::ALL.iter().map(|p| p.name()).collect();
    let date = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
    };
    OneOfBuilder::new()
        .item(one_of_strings(named, "A named period, in the site's time zone"))
        .item(
            ArrayBuilder::new()
                .items(date())
                .min_items(Some(2))
                .max_items(Some(2))
                .description(Some("First and last day")),
        )
        .into()
}

/// `filters`: conditions `[operator, dimension, [clauses]]` and their
/// combinations `["and"|"or", [filters]]`, `["not", filter]`.
fn filters_schema() -> Array {
    use analytics_query::Operator;
    let operators = Operator::ALL.iter().map(|o| o.name().to_string()).collect();
    let mut dimensions = dimension_names();
    dimensions.retain(|d| !d.starts_with("time"));
    let clauses = ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String))
        .min_items(Some(1));
    let condition = ArrayBuilder::new()
        .prefix_items([
            Schema::from(one_of_strings(operators, "An operator")),
            Schema::from(one_of_strings(dimensions, "A dimension")),
            Schema::from(clauses.build()),
        ])
        .items(ArrayItems::False)
        .min_items(Some(3))
        .description(Some("A condition"))
        .build();
    let logical = ArrayBuilder::new()
        .prefix_items([Schema::from(one_of_strings(
            vec!["and".into(), "or".into(), "not".into()],
            "A combination of filters",
        ))])
        .min_items(Some(2))
        .max_items(Some(2))
        .build();
    ArrayBuilder::new()
        .items(OneOfBuilder::new().item(condition).item(logical))
        .build()
}

/// What a query includes besides its rows.
#[derive(ToSchema)]
pub struct QueryInclude {
    pub time_labels: Option<bool>,
    pub total_rows: Option<bool>,
    pub imports: Option<bool>,
}

#[derive(ToSchema)]
pub struct Pagination {
    #[schema(minimum = 1)]
    pub limit: Option<u64>,
    #[schema(minimum = 0)]
    pub offset: Option<u64>,
}

/// Plausible's Stats API v2 request (query/README.md has every metric,
/// dimension, operator and period, and the rules that combine them).
#[derive(ToSchema)]
#[schema(example = json!({"site_id": "site-abc-123", "date_range": "7d", "metrics": ["visitors", "visits"],
                          "dimensions": ["visit:source"], "filters": [["is", "visit:country", ["DE"]]]}))]
pub struct QueryRequest {
    #[schema(min_length = 1, max_length = 100, pattern = "^[^\\x00-\\x08\\x0A-\\x1F\\x7F]*$")]
    pub site_id: String,
    #[schema(schema_with = metrics_schema)]
    pub metrics: Vec<String>,
    #[schema(schema_with = date_range_schema)]
    pub date_range: serde_json::Value,
    #[schema(schema_with = dimensions_schema)]
    pub dimensions: Option<Vec<String>>,
    #[schema(schema_with = filters_schema)]
    pub filters: Option<Vec<serde_json::Value>>,
    /// `[metric or dimension, "asc"|"desc"]` pairs.
    pub order_by: Option<Vec<Vec<String>>>,
    pub include: Option<QueryInclude>,
    pub pagination: Option<Pagination>,
}

/// One result row: dimension values in the query's order, metric values
/// in its order.
#[derive(ToSchema)]
pub struct QueryRow {
    pub dimensions: Vec<String>,
    #[schema(schema_with = metric_values_schema)]
    pub metrics: Vec<serde_json::Value>,
}

/// A row's metric values: numbers, and revenue as `{"value", "currency"}`
/// (`null` when the revenue goals in play have no single currency).
fn metric_values_schema() -> Array {
    let money = ObjectBuilder::new()
        .property("value", ObjectBuilder::new().schema_type(Type::Number))
        .property("currency", ObjectBuilder::new().schema_type(Type::String))
        .required("value")
        .required("currency")
        .description(Some("Revenue in one currency"));
    ArrayBuilder::new()
        .items(
            OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::Number))
                .item(money)
                .item(ObjectBuilder::new().schema_type(Type::Null)),
        )
        .build()
}

#[derive(ToSchema)]
pub struct QueryMeta {
    pub imports_included: Option<bool>,
    pub time_labels: Option<Vec<String>>,
    pub total_rows: Option<u64>,
}

/// Plausible's response: the rows, meta, and the query as understood
/// (`date_range` resolved to the site's local datetimes).
#[derive(ToSchema)]
pub struct QueryResponse {
    pub results: Vec<QueryRow>,
    pub meta: QueryMeta,
    #[schema(value_type = Object)]
    pub query: serde_json::Value,
}

/// A goal: a pageview goal (`page`) or a custom-event goal (`event`, an
/// optional `prop` match, and a `currency` for a revenue goal).
#[derive(ToSchema)]
#[schema(example = json!({"name": "Signup", "event": "signup", "prop": {"plan": "pro"}}))]
pub struct Goal {
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// A path pattern: `*` any run without `/`, `**` any run; starts with `/`.
    #[schema(pattern = "^/")]
    pub page: Option<String>,
    pub event: Option<String>,
    /// At most one `{"key": "value"}`.
    pub prop: Option<BTreeMap<String, String>>,
    /// ISO 4217, for a revenue goal.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: Option<String>,
}

#[derive(ToSchema)]
pub struct Goals {
    pub site_id: String,
    pub goals: Vec<Goal>,
}

/// A funnel step: `{"goal": name}`, `{"name"?, "page": pattern}` or
/// `{"name"?, "event": name, "prop"?}`.
#[derive(ToSchema)]
pub struct FunnelStep {
    pub goal: Option<String>,
    pub name: Option<String>,
    pub page: Option<String>,
    pub event: Option<String>,
    pub prop: Option<BTreeMap<String, String>>,
}

/// A saved funnel.
#[derive(ToSchema)]
#[schema(example = json!({"name": "Checkout", "steps": [{"page": "/"}, {"goal": "Signup"}]}))]
pub struct SavedFunnel {
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    #[schema(min_items = 2, max_items = 8)]
    pub steps: Vec<FunnelStep>,
}

#[derive(ToSchema)]
pub struct Funnels {
    pub site_id: String,
    pub funnels: Vec<SavedFunnel>,
}

/// `POST /api/v2/funnel`: the range and filters as in the query API, and
/// `steps` or a saved `funnel`'s name.
#[derive(ToSchema)]
#[schema(example = json!({"site_id": "site-abc-123", "date_range": "7d",
                          "steps": [{"name": "Home", "page": "/"}, {"name": "Signup", "event": "signup"}]}))]
pub struct FunnelRequest {
    #[schema(min_length = 1, max_length = 100)]
    pub site_id: String,
    #[schema(schema_with = date_range_schema)]
    pub date_range: serde_json::Value,
    #[schema(schema_with = filters_schema)]
    pub filters: Option<Vec<serde_json::Value>>,
    #[schema(min_items = 2, max_items = 8)]
    pub steps: Option<Vec<FunnelStep>>,
    pub funnel: Option<String>,
}

#[derive(ToSchema)]
pub struct FunnelStepResult {
    pub name: String,
    pub visitors: u64,
    pub conversion_rate: f64,
    pub conversion_rate_step: f64,
    pub dropoff: u64,
    pub dropoff_percentage: f64,
}

/// Each step's visitors, conversion and drop-off; `visitors` of all kept
/// events; the request as understood.
#[derive(ToSchema)]
pub struct FunnelResponse {
    pub steps: Vec<FunnelStepResult>,
    pub visitors: u64,
    #[schema(value_type = Object)]
    pub query: serde_json::Value,
}

#[derive(ToSchema)]
pub struct AdminSites {
    pub sites: Vec<SiteInfo>,
}

#[derive(ToSchema)]
pub struct AdminKeys {
    pub keys: Vec<KeyInfo>,
}

#[derive(ToSchema)]
pub struct AdminLinks {
    pub links: Vec<LinkInfo>,
}

/// A site (or a user's events) removed.
#[derive(ToSchema)]
pub struct Removed {
    pub site_id: String,
    pub events_removed: u64,
}

/// A key just created: the only time its secret is shown.
#[derive(ToSchema)]
pub struct KeyCreated {
    pub name: String,
    pub scope: Scope,
    pub sites: Vec<String>,
    /// `ak_…`
    pub key: String,
}

#[derive(ToSchema)]
pub struct LinkCreated {
    pub site_id: String,
    /// `/share/sl_…`
    pub path: String,
}

#[derive(ToSchema)]
pub struct BadLine {
    pub line: u64,
    pub message: String,
}

/// What an import did.
#[derive(ToSchema)]
pub struct ImportReport {
    pub site_id: String,
    /// Events read (good lines).
    pub read: u64,
    /// Of those, new to the store.
    pub inserted: u64,
    /// Already stored: unchanged.
    pub duplicates: u64,
    pub bad_lines: u64,
    /// The first bad lines.
    pub bad: Vec<BadLine>,
    /// Nothing was written because a line was bad (`all_or_nothing`).
    pub aborted: bool,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Alive {
    Alive,
    Stalled,
}

/// `GET /healthz`'s answer.
#[derive(ToSchema)]
pub struct Liveness {
    pub status: Alive,
    /// The loops that stalled (with 503).
    pub loops: Option<Vec<String>>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Ready {
    Ready,
    NotReady,
}

/// `GET /readyz`'s answer.
#[derive(ToSchema)]
pub struct Readiness {
    pub status: Ready,
    /// Each check: `ok` or why not.
    pub checks: BTreeMap<String, String>,
}

/// The health routes (`analytics_core::ops::health`), described here: they
/// are closures there, in a crate that serves the processor too.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    operation_id = "healthz",
    summary = "Liveness",
    responses(
        (status = 200, description = "Every loop reports in", body = Liveness),
        (status = 503, description = "A loop has stalled", body = Liveness),
    )
)]
fn healthz() {}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    operation_id = "readyz",
    summary = "Readiness",
    description = "Database, schema and (Kafka mode) broker.",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: the failing checks say why", body = Readiness),
    )
)]
fn readyz() {}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "reference",
    operation_id = "openapi",
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", body = Object, content_type = "application/json"))
)]
pub async fn json() -> Response {
    let doc = document().to_json().unwrap_or_else(|_| "{}".into());
    ([(header::CONTENT_TYPE, "application/json")], doc).into_response()
}

/// The reference page: Redoc reading `/openapi.json`. No inline script:
/// Redoc finds the `<redoc>` element itself.
const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Analytics API reference</title>
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
"#;

/// Redoc 2.5.4's standalone bundle (MIT, from the npm package `redoc`).
const REDOC_JS: &str = include_str!("../assets/redoc.standalone.js");

/// Redoc styles itself with `<style>` elements and runs its search in a
/// worker made from a blob: the page's own policy allows those, and the
/// rest stays as strict as the site's.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                            img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; \
                            form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

#[utoipa::path(
    get,
    path = "/docs",
    tag = "reference",
    operation_id = "docs",
    summary = "The interactive reference of this document",
    responses((status = 200, description = "An HTML page", body = String, content_type = "text/html"))
)]
pub async fn docs() -> Response {
    (
        [
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CSP)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Html(DOCS_HTML),
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/docs/redoc.standalone.js",
    tag = "reference",
    operation_id = "docs_script",
    summary = "The reference page's script (Redoc)",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript"))
)]
pub async fn docs_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        REDOC_JS,
    )
        .into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Analytics",
        description = "Ingest events, read exact statistics, administer sites and keys. \
                       Errors are JSON `{\"error\": …, \"details\": [{\"field\": …, \"message\": …}]}`; a 503 \
                       carries `Retry-After` and is safe to retry. Reads need a key (`Authorization: Bearer …`), \
                       the dashboard's session cookie or a shared link's, except in embedded mode on loopback, \
                       where anyone on the machine reads and administers.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(healthz, readyz, json, docs, docs_script),
    components(schemas(ErrorBody, FieldError)),
    modifiers(&Security, &Limits),
    tags(
        (name = "ingest", description = "Events in: answered 202 once durable"),
        (name = "stats", description = "The dashboard's reads, from rollup tables"),
        (name = "query", description = "Plausible's Stats API v2 and the raw events' export"),
        (name = "admin", description = "Sites, keys, links, users and imports, for an admin key"),
        (name = "session", description = "The dashboard's login, logout and shared links"),
        (name = "pages", description = "The dashboard and the tracking script"),
        (name = "health", description = "Liveness and readiness probes (never rate limited)"),
        (name = "reference", description = "This document and its reference page"),
    )
)]
struct ApiDoc;

/// The whole document: the routes' paths and these.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::routes::paths());
    // The modifiers ran before the routes' paths were merged in.
    Limits.modify(&mut doc);
    doc
}

/// The authentication schemes: an API key as a bearer token, the
/// dashboard's session cookie, and a shared link's cookie.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description =
            Some("An API key (`ak_…`): `analytics-admin keys create` or `POST /api/admin/keys`".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "The dashboard's session, from `POST /login`",
            ))),
        );
        components.add_security_scheme(
            "share_link",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SHARE_COOKIE,
                "A shared link's, from `GET /share/{token}`: reads of its site",
            ))),
        );
    }
}

/// What every limited route may answer besides its own statuses: 408 past
/// the request or body deadline, 429 past a rate, 503 when shed (or the
/// store or broker cannot take it now), 400 where it takes a parameter or
/// a body, and 500 for a bug. Health is not limited.
struct Limits;

impl Modify for Limits {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = || {
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"))))
                .build()
        };
        let retry_after = || {
            utoipa::openapi::HeaderBuilder::new()
                .schema(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Integer))
                .description(Some("Seconds to wait before retrying"))
                .build()
        };
        let common = [
            (
                "408",
                ResponseBuilder::new()
                    .description("The request or its body took too long")
                    .content("application/json", error())
                    .build(),
            ),
            (
                "429",
                ResponseBuilder::new()
                    .description("Too many requests from this address, or events for this site")
                    .content("application/json", error())
                    .header("Retry-After", retry_after())
                    .build(),
            ),
            (
                "503",
                ResponseBuilder::new()
                    .description("Busy, or the store or broker cannot take it now: safe to retry")
                    .content("application/json", error())
                    .header("Retry-After", retry_after())
                    .build(),
            ),
        ];
        let invalid = ResponseBuilder::new()
            .description("Invalid: the field at fault named (a NUL character in a parameter or field, say)")
            .content("application/json", error())
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path == "/healthz" || path == "/readyz" {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                // Anything a client names may be refused (`routes::nul`).
                let names_something =
                    op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                if names_something {
                    op.responses
                        .responses
                        .entry("400".to_string())
                        .or_insert_with(|| RefOr::T(invalid.clone()));
                }
                for (status, response) in &common {
                    op.responses
                        .responses
                        .entry((*status).to_string())
                        .or_insert_with(|| RefOr::T(response.clone()));
                }
            }
        }
    }
}
