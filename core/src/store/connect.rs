//! Database connections for both backends: PostgreSQL in Kafka mode, SQLite
//! in embedded mode; and the read-only schema check readiness uses.

use crate::ops::health::{check, Readiness};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use std::time::Duration;

/// Longest wait for a new connection, and for a free one from the pool:
/// past it the caller answers 503 rather than hold its client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Statements cached per SQLite connection (sqlx's default is 100).
const SQLITE_STATEMENT_CACHE: usize = 16;
/// Statements cached per PostgreSQL connection (sqlx's default is 100).
const POSTGRES_STATEMENT_CACHE: usize = 16;
/// Pause between tries while waiting for the database to come up.
const RETRY_EVERY: Duration = Duration::from_secs(1);

fn options(url: &str, max_connections: u32) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(max_connections)
        .min_connections(0)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(CONNECT_TIMEOUT)
        .sqlx_logging(false);
    opts.map_sqlx_sqlite_opts(sqlite_tuning);
    // The writer's rollup upserts are multi-row statements whose text
    // depends on the row count; each count is another prepared statement
    // (with a parameter type per value) kept per connection, on both ends.
    // At sqlx's default of 100 the processor's memory kept growing through
    // the soak (bench/README.md); the fixed statements (the raw insert, the
    // reads) are used every batch and stay cached.
    opts.map_sqlx_postgres_opts(|o| o.statement_cache_capacity(POSTGRES_STATEMENT_CACHE));
    opts
}

/// SQLite, on every connection: WAL lets stats readers run beside the
/// writer; `synchronous=FULL` makes a commit durable before it returns (its
/// default, set explicitly); few cached statements, because the writer's
/// multi-row statements compile to large programs and sqlx's default of 100
/// per connection held 30 MB.
fn sqlite_tuning(o: SqliteConnectOptions) -> SqliteConnectOptions {
    o.journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .statement_cache_capacity(SQLITE_STATEMENT_CACHE)
}

/// A pool that connects on first use, so a service starts (and reports
/// not-ready) while its database is still down, and recovers by itself.
pub async fn connect_lazy(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut opts = options(url, max_connections);
    opts.connect_lazy(true);
    Database::connect(opts).await
}

pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    Database::connect(options(url, max_connections)).await
}

/// Retries until the database answers or `wait` runs out: in Kubernetes the
/// database may come up after the pods that use it.
pub async fn connect_with_retry(url: &str, max_connections: u32, wait: Duration) -> Result<DatabaseConnection, DbErr> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match connect(url, max_connections).await {
            Ok(db) => return Ok(db),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "database not reachable yet; retrying");
                tokio::time::sleep(RETRY_EVERY).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Read-only check that every migration in `expected` is applied. Unlike
/// sea-orm-migration's own status call it never creates the bookkeeping
/// table, so it is safe for readiness probes and read-only database users.
pub async fn schema_status<C: ConnectionTrait>(db: &C, expected: &[String]) -> Result<(), String> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT version FROM seaql_migrations",
        ))
        .await
        .map_err(|_| "schema not migrated: run `analytics-migrate up`".to_string())?;
    let applied: std::collections::HashSet<String> = rows
        .iter()
        .filter_map(|r| r.try_get_by_index::<String>(0).ok())
        .collect();
    let pending: Vec<&str> = expected
        .iter()
        .filter(|v| !applied.contains(*v))
        .map(String::as_str)
        .collect();
    if pending.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} pending migration(s): {}",
            pending.len(),
            pending.join(", ")
        ))
    }
}

/// Readiness checks of a database: it answers, and its schema is at
/// `expected` (the migration names this build knows). `db` should be a
/// connection of their own, so that a busy query pool cannot make the
/// process look unready.
pub fn readiness_checks(readiness: Readiness, db: &DatabaseConnection, expected: Vec<String>) -> Readiness {
    let (ping_db, schema_db) = (db.clone(), db.clone());
    let expected = std::sync::Arc::new(expected);
    readiness
        .with(
            "database",
            check(move || {
                let db = ping_db.clone();
                async move { db.ping().await.map_err(|e| format!("database: {e}")) }
            }),
        )
        .with(
            "schema",
            check(move || {
                let (db, expected) = (schema_db.clone(), expected.clone());
                async move { schema_status(&db, &expected).await }
            }),
        )
}
