//! Shared handler state: cheap to clone, everything behind `Arc`.

use crate::sink::Sink;
use analytics_core::metrics::Metrics;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub sink: Arc<Sink>,
    pub metrics: Arc<Metrics>,
    pub embedded: bool,
}
