//! Today's salt for cookieless visitors, held in memory and read from the
//! database (`analytics_core::store::salts`) once a day: the first request
//! of a UTC day, or the rotation task a minute after midnight at the
//! latest, fetches (or makes) the new one and deletes the ones past their
//! 48 hours.

use analytics_core::store::salts::{self, Salt};
use analytics_core::store::StoreError;
use chrono::{NaiveDate, Utc};
use sea_orm::DatabaseConnection;
use std::sync::RwLock;
use std::time::Duration;

/// How often the rotation task checks the day (and prunes old salts).
pub const ROTATE_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Salts {
    current: RwLock<Option<(NaiveDate, Salt)>>,
    /// One database round trip at a day's change, not one per request.
    refresh: tokio::sync::Mutex<()>,
}

impl Salts {
    /// The salt of today (UTC).
    pub async fn today(&self, db: &DatabaseConnection) -> Result<Salt, StoreError> {
        let today = Utc::now().date_naive();
        if let Some(salt) = self.cached(today) {
            return Ok(salt);
        }
        let _one = self.refresh.lock().await;
        if let Some(salt) = self.cached(today) {
            return Ok(salt);
        }
        let salt = salts::salt_for(db, today).await?;
        let pruned = salts::prune(db, today).await?;
        if pruned > 0 {
            tracing::info!(pruned, "deleted expired visitor salts");
        }
        if let Ok(mut current) = self.current.write() {
            *current = Some((today, salt));
        }
        Ok(salt)
    }

    fn cached(&self, today: NaiveDate) -> Option<Salt> {
        match *self.current.read().ok()? {
            Some((day, salt)) if day == today => Some(salt),
            _ => None,
        }
    }
}
