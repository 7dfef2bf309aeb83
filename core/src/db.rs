//! Database connections for both backends: PostgreSQL in Kafka mode, SQLite
//! in embedded mode. SQL that differs between them is chosen here.

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use std::time::Duration;

fn options(url: &str, max_connections: u32) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(max_connections)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(3))
        .acquire_timeout(Duration::from_secs(3))
        .sqlx_logging(false);
    opts.map_sqlx_sqlite_opts(sqlite_tuning);
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
        .statement_cache_capacity(16)
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
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Bind-parameter placeholders for `rows` rows of `cols` columns, numbered
/// from `$1` on PostgreSQL and `?` on SQLite.
pub fn values_placeholders(backend: DbBackend, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push(',');
            }
            n += 1;
            push_placeholder(&mut out, backend, n);
        }
        out.push(')');
    }
    out
}

pub fn push_placeholder(out: &mut String, backend: DbBackend, n: usize) {
    use std::fmt::Write;
    match backend {
        DbBackend::Postgres => {
            let _ = write!(out, "${n}");
        }
        _ => out.push('?'),
    }
}

/// Replaces `$1`, `$2`, … with `?` for SQLite so that queries are written once.
pub fn portable(backend: DbBackend, sql: &str) -> String {
    if backend == DbBackend::Postgres {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// Byte-order comparison for text, so ties rank the same on both backends
/// whatever the PostgreSQL database's locale.
pub fn binary_collation(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => " COLLATE \"C\"",
        _ => "",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_per_backend() {
        assert_eq!(values_placeholders(DbBackend::Postgres, 2, 2), "($1,$2),($3,$4)");
        assert_eq!(values_placeholders(DbBackend::Sqlite, 2, 2), "(?,?),(?,?)");
        assert_eq!(portable(DbBackend::Sqlite, "a = $1 AND b = $12"), "a = ? AND b = ?");
        assert_eq!(portable(DbBackend::Postgres, "a = $1"), "a = $1");
    }
}
