//! How SQL is written here: one placeholder convention, numbered `$n`, on
//! both backends. PostgreSQL binds `$n` natively; sqlx binds SQLite's `$n`
//! by its number too (`sqlx-sqlite`'s `SqliteArguments::bind`), so a value
//! may be used twice and no statement is rewritten for sea-orm. rusqlite
//! would bind `$n` by order of first appearance, so the embedded writer's
//! statements go through `for_rusqlite`, which makes them SQLite's own
//! numbered `?n`.

use sea_orm::DbBackend;
use std::fmt::Write;

/// Bind-parameter placeholders for `rows` rows of `cols` columns:
/// `($1,$2),($3,$4)`.
pub fn values_placeholders(rows: usize, cols: usize) -> String {
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
            let _ = write!(out, "${n}");
        }
        out.push(')');
    }
    out
}

/// `$1, $2, … $n`: the placeholders of an `IN (…)` list.
pub fn list_placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `WITH k(<cols>) AS (VALUES (…), …)`: the keys a statement joins against
/// (SQLite names no columns on a bare `VALUES`).
pub fn keys_cte(cols: &[&str], rows: usize) -> String {
    format!(
        "WITH k({}) AS (VALUES {})",
        cols.join(", "),
        values_placeholders(rows, cols.len())
    )
}

/// `$n` as SQLite's own numbered `?n`, for statements prepared through
/// rusqlite.
pub fn for_rusqlite(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let numbered = c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
        out.push(if numbered { '?' } else { c });
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

/// `FOR UPDATE` where row locks exist; SQLite has one writer at a time.
pub fn for_update(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => " FOR UPDATE",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_numbered_convention() {
        assert_eq!(values_placeholders(2, 2), "($1,$2),($3,$4)");
        assert_eq!(list_placeholders(3), "$1, $2, $3");
        assert_eq!(
            for_rusqlite("a = $1 AND b = $12 AND c = '$x'"),
            "a = ?1 AND b = ?12 AND c = '$x'"
        );
        assert_eq!(keys_cte(&["a", "b"], 1), "WITH k(a, b) AS (VALUES ($1,$2))");
    }
}
