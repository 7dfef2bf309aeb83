//! Shared handler state. Extractors clone it for every request (the
//! metrics middleware and the handler each), so it is one `Arc`: cloning
//! the database handle and the others field by field showed in the
//! single-event profile.

use crate::auth::Access;
use crate::client::TrustedProxies;
use crate::config::CookieSecure;
use crate::limits::RateLimits;
use crate::sink::Sink;
use analytics_core::event::Policy;
use analytics_core::ops::metrics::Metrics;
use sea_orm::DatabaseConnection;
use std::ops::Deref;
use std::sync::Arc;

pub struct Shared {
    pub db: DatabaseConnection,
    pub sink: Arc<Sink>,
    pub metrics: Arc<Metrics>,
    pub embedded: bool,
    /// Ingest's timestamp bounds.
    pub policy: Policy,
    pub proxies: TrustedProxies,
    pub rate_limits: RateLimits,
    pub access: Access,
    pub cookie_secure: CookieSecure,
    /// Whether traces are exported (`OTEL_EXPORTER_OTLP_ENDPOINT`): only
    /// then is each request a span (bench/README.md: a span and its
    /// formatted fields were a sixth of a single event's CPU).
    pub traced: bool,
    /// Browser, source, country and bot verdicts for each event; `None`
    /// with `ENRICH=false`.
    pub enricher: Option<Arc<analytics_enrich::Enricher>>,
    /// Today's salt for cookieless visitors.
    pub salts: crate::visitors::Salts,
    /// Columns of recent `/api/v2/query` ranges.
    pub query_cache: Arc<analytics_core::query::v2::ColumnCache>,
}

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
