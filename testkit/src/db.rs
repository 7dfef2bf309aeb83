//! A database per test: PostgreSQL (a fresh database, dropped when the
//! test ends) or an SQLite file under target/test-logs.

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use std::path::PathBuf;

pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

pub fn log_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("test-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A PostgreSQL database of its own, dropped when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let admin = admin_database_url();
        let conn = Database::connect(admin.as_str())
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL is required at {admin}: {e}"));
        let name = unique_name("analytics_test");
        conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Migrated to the latest schema (in-process, as embedded mode does).
    pub async fn migrated() -> Self {
        let db = Self::create().await;
        migrate_up(&db.url).await;
        db
    }

    pub async fn connect(&self) -> DatabaseConnection {
        Database::connect(self.url.as_str()).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (admin_database_url(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(c) = Database::connect(admin.as_str()).await {
                    let _ = c
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Migrates the database at `url` to the latest schema, in-process.
pub async fn migrate_up(url: &str) {
    let db = analytics_core::store::connect::connect(url, 1).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
}

/// A fresh SQLite database file, migrated; its `sqlite://` URL.
pub async fn migrated_sqlite() -> String {
    let url = format!("sqlite://{}?mode=rwc", temp_sqlite().display());
    migrate_up(&url).await;
    url
}

pub fn temp_sqlite() -> PathBuf {
    log_dir().join(format!("{}.db", unique_name("embedded")))
}
