//! Every entity in `entity/` against the table the migrations make, on a
//! migrated PostgreSQL database and a migrated SQLite file: the same column
//! names, each column's nullability and a compatible type, and the same
//! primary key. A column added by a migration and not to its entity (or the
//! other way round) fails here.
//!
//! Types are compared by family, not by exact SQL type: sea-orm's
//! `ColumnTrait::def()` gives a `ColumnType`, the database a type name, and
//! both map to one of the families below.
//!
//! | family | entity `ColumnType` | PostgreSQL `data_type` | SQLite declared type |
//! | --- | --- | --- | --- |
//! | text | `Char`, `String`, `Text` | `character`, `character varying`, `text` | `char…`, `varchar…`, `text`, `clob` |
//! | int16 | `TinyInteger`, `SmallInteger` | `smallint` | any `…int…` |
//! | int32 | `Integer` | `integer` | any `…int…` |
//! | int64 | `BigInteger` | `bigint` | any `…int…` |
//! | uuid | `Uuid` | `uuid` | `uuid_text` (sqlx stores a 16-byte blob) |
//! | timestamptz | `TimestampWithTimeZone` | `timestamp with time zone` | `timestamp_with_timezone_text` |
//! | timestamp | `DateTime`, `Timestamp` | `timestamp without time zone` | `datetime_text`, `timestamp_text` |
//! | date | `Date` | `date` | `date_text` |
//! | json | `Json`, `JsonBinary` | `json`, `jsonb` | `json_text`, `jsonb_text` |
//! | blob | `Blob`, `Binary`, `VarBinary` | `bytea` | `blob` |
//! | bool | `Boolean` | `boolean` | `boolean` |
//! | float | `Float`, `Double` | `real`, `double precision` | `float`, `double`, `real` |
//!
//! SQLite has one integer storage class (8 bytes), and sea-query declares
//! every integer width `integer` there (an auto-increment key must be
//! declared exactly `INTEGER`), so on SQLite an integer column of any width
//! matches any integer family; on PostgreSQL widths must match. Anything
//! else maps to a family of its own (its name) and matches only itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sea_orm::entity::prelude::*;
use sea_orm::{ColumnType, DatabaseConnection, DbBackend, Iterable, PrimaryKeyToColumn, Statement};
use std::collections::BTreeMap;
use testkit::db::{migrated_sqlite, TestDb};

/// Every entity, one line each.
const ENTITIES: [fn() -> Shape; 8] = [
    shape_of::<entity::events::Entity>,
    shape_of::<entity::sites::Entity>,
    shape_of::<entity::site_domains::Entity>,
    shape_of::<entity::api_keys::Entity>,
    shape_of::<entity::share_links::Entity>,
    shape_of::<entity::visitor_salts::Entity>,
    shape_of::<entity::goals::Entity>,
    shape_of::<entity::funnels::Entity>,
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Family {
    Text,
    Int16,
    Int32,
    Int64,
    /// SQLite's one integer class: matches every integer family.
    AnyInt,
    Uuid,
    TimestampTz,
    Timestamp,
    Date,
    Json,
    Blob,
    Bool,
    Float,
    Other(String),
}

impl Family {
    fn matches(&self, db: &Family) -> bool {
        self == db || (*db == Family::AnyInt && matches!(self, Family::Int16 | Family::Int32 | Family::Int64))
    }

    fn of_entity(t: &ColumnType) -> Self {
        match t {
            ColumnType::Char(_) | ColumnType::String(_) | ColumnType::Text => Self::Text,
            ColumnType::TinyInteger | ColumnType::SmallInteger => Self::Int16,
            ColumnType::Integer => Self::Int32,
            ColumnType::BigInteger => Self::Int64,
            ColumnType::Uuid => Self::Uuid,
            ColumnType::TimestampWithTimeZone => Self::TimestampTz,
            ColumnType::DateTime | ColumnType::Timestamp => Self::Timestamp,
            ColumnType::Date => Self::Date,
            ColumnType::Json | ColumnType::JsonBinary => Self::Json,
            ColumnType::Blob | ColumnType::Binary(_) | ColumnType::VarBinary(_) => Self::Blob,
            ColumnType::Boolean => Self::Bool,
            ColumnType::Float | ColumnType::Double => Self::Float,
            other => Self::Other(format!("{other:?}")),
        }
    }

    /// `data_type` from `information_schema.columns`.
    fn of_postgres(data_type: &str) -> Self {
        match data_type {
            "character" | "character varying" | "text" => Self::Text,
            "smallint" => Self::Int16,
            "integer" => Self::Int32,
            "bigint" => Self::Int64,
            "uuid" => Self::Uuid,
            "timestamp with time zone" => Self::TimestampTz,
            "timestamp without time zone" => Self::Timestamp,
            "date" => Self::Date,
            "json" | "jsonb" => Self::Json,
            "bytea" => Self::Blob,
            "boolean" => Self::Bool,
            "real" | "double precision" => Self::Float,
            other => Self::Other(other.into()),
        }
    }

    /// The declared type from `PRAGMA table_info` (as sea-query writes it
    /// for SQLite, or as a migration's own SQL spells it).
    fn of_sqlite(declared: &str) -> Self {
        let t = declared.to_ascii_lowercase();
        let base = t.split('(').next().unwrap_or_default().trim();
        match base {
            "uuid_text" => Self::Uuid,
            "timestamp_with_timezone_text" => Self::TimestampTz,
            "datetime_text" | "timestamp_text" => Self::Timestamp,
            "date_text" => Self::Date,
            "json_text" | "jsonb_text" => Self::Json,
            "blob" => Self::Blob,
            "boolean" => Self::Bool,
            "float" | "double" | "real" => Self::Float,
            "char" | "varchar" | "text" | "clob" => Self::Text,
            b if b.contains("int") => Self::AnyInt,
            other => Self::Other(other.into()),
        }
    }
}

/// A table as an entity declares it or as a database has it.
#[derive(Debug)]
struct Shape {
    table: String,
    /// name → (type family, nullable)
    columns: BTreeMap<String, (Family, bool)>,
    /// In key order.
    primary_key: Vec<String>,
    /// A partitioned PostgreSQL table.
    partitioned: bool,
}

fn shape_of<E: EntityTrait>() -> Shape {
    let columns = E::Column::iter()
        .map(|c| {
            let def = c.def();
            (
                c.as_str().to_string(),
                (Family::of_entity(def.get_column_type()), def.is_null()),
            )
        })
        .collect();
    Shape {
        table: E::default().table_name().to_string(),
        columns,
        primary_key: E::PrimaryKey::iter()
            .map(|k| k.into_column().as_str().to_string())
            .collect(),
        partitioned: false,
    }
}

async fn rows(db: &DatabaseConnection, sql: &str, table: &str) -> Vec<sea_orm::QueryResult> {
    let backend = db.get_database_backend();
    db.query_all_raw(Statement::from_sql_and_values(backend, sql, [table.into()]))
        .await
        .unwrap()
}

/// `table` as the database has it.
async fn table_shape(db: &DatabaseConnection, table: &str) -> Shape {
    let (columns, primary_key, partitioned) = match db.get_database_backend() {
        DbBackend::Postgres => {
            let columns = rows(
                db,
                "SELECT column_name::text, data_type::text, is_nullable::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
                table,
            )
            .await
            .iter()
            .map(|r| {
                let (name, data_type, nullable): (String, String, String) = (
                    r.try_get_by_index(0).unwrap(),
                    r.try_get_by_index(1).unwrap(),
                    r.try_get_by_index(2).unwrap(),
                );
                (name, (Family::of_postgres(&data_type), nullable == "YES"))
            })
            .collect();
            let key = rows(
                db,
                "SELECT k.column_name::text FROM information_schema.table_constraints c \
                 JOIN information_schema.key_column_usage k ON k.constraint_schema = c.constraint_schema \
                 AND k.constraint_name = c.constraint_name AND k.table_name = c.table_name \
                 WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = current_schema() \
                 AND c.table_name = $1 ORDER BY k.ordinal_position",
                table,
            )
            .await
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .collect();
            let partitioned = !rows(
                db,
                "SELECT c.relname::text FROM pg_class c WHERE c.relname = $1 AND c.relkind = 'p' \
                 AND c.relnamespace = current_schema()::regnamespace",
                table,
            )
            .await
            .is_empty();
            (columns, key, partitioned)
        }
        DbBackend::Sqlite => {
            let info = rows(
                db,
                "SELECT name, type, \"notnull\", pk FROM pragma_table_info($1)",
                table,
            )
            .await;
            let mut key: Vec<(i64, String)> = Vec::new();
            let columns = info
                .iter()
                .map(|r| {
                    let (name, declared, not_null, pk): (String, String, i64, i64) = (
                        r.try_get_by_index(0).unwrap(),
                        r.try_get_by_index(1).unwrap(),
                        r.try_get_by_index(2).unwrap(),
                        r.try_get_by_index(3).unwrap(),
                    );
                    if pk > 0 {
                        key.push((pk, name.clone()));
                    }
                    (name, (Family::of_sqlite(&declared), not_null == 0))
                })
                .collect();
            key.sort();
            (columns, key.into_iter().map(|(_, n)| n).collect(), false)
        }
        other => panic!("no schema reader for {other:?}"),
    };
    Shape {
        table: table.into(),
        columns,
        primary_key,
        partitioned,
    }
}

/// Every difference between the entity and the table, one line each.
fn differences(entity: &Shape, table: &Shape, backend: DbBackend) -> Vec<String> {
    let t = &entity.table;
    let mut out = Vec::new();
    if table.columns.is_empty() {
        return vec![format!("{backend:?}: entity `{t}` has no table of that name")];
    }
    for (name, (family, nullable)) in &entity.columns {
        match table.columns.get(name) {
            None => out.push(format!("{backend:?}: {t}.{name} is in the entity, not in the table")),
            Some((db_family, db_nullable)) => {
                if !family.matches(db_family) {
                    out.push(format!(
                        "{backend:?}: {t}.{name}: the entity's type is {family:?}, the table's {db_family:?}"
                    ));
                }
                if nullable != db_nullable {
                    out.push(format!(
                        "{backend:?}: {t}.{name}: nullable {nullable} in the entity, {db_nullable} in the table"
                    ));
                }
            }
        }
    }
    for name in table.columns.keys().filter(|n| !entity.columns.contains_key(*n)) {
        out.push(format!(
            "{backend:?}: {t}.{name} is in the table (a migration added it), not in the entity"
        ));
    }
    // On PostgreSQL a key may carry `site_id` beside the row's own key: the
    // distribution column a sharded PostgreSQL requires in every unique key
    // (migration 10). The entity keeps the row's key.
    let table_key: Vec<String> = table
        .primary_key
        .iter()
        .filter(|c| !(backend == sea_orm::DbBackend::Postgres && *c == "site_id" && !entity.primary_key.contains(c)))
        .cloned()
        .collect();
    // A partitioned table (PostgreSQL's `events`, migration 12) has no
    // key: a unique key would have to carry the partition column, and its
    // idempotency key lives in a table of its own. The entity keeps the
    // row's key, which SQLite has.
    let unkeyed_partitions = backend == sea_orm::DbBackend::Postgres && table.partitioned && table_key.is_empty();
    if entity.primary_key != table_key && !unkeyed_partitions {
        out.push(format!(
            "{backend:?}: {t}: primary key {:?} in the entity, {:?} in the table",
            entity.primary_key, table.primary_key
        ));
    }
    out
}

async fn check_entities(db: &DatabaseConnection) {
    let backend = db.get_database_backend();
    let mut problems = Vec::new();
    for shape in ENTITIES {
        let entity = shape();
        assert!(
            !entity.columns.is_empty() && !entity.primary_key.is_empty(),
            "{entity:?}"
        );
        let table = table_shape(db, &entity.table).await;
        problems.extend(differences(&entity, &table, backend));
    }
    assert!(
        problems.is_empty(),
        "entities and tables differ:\n{}",
        problems.join("\n")
    );
}

#[tokio::test]
async fn postgres_entities_match_their_tables() {
    let test_db = TestDb::migrated().await;
    check_entities(&test_db.connect().await).await;
}

#[tokio::test]
async fn sqlite_entities_match_their_tables() {
    let url = migrated_sqlite().await;
    check_entities(&sea_orm::Database::connect(url.as_str()).await.unwrap()).await;
}

/// The comparison itself: a column only the table has, a column only the
/// entity has, a type, a nullability and a key that differ are all found.
#[test]
fn every_kind_of_difference_is_reported() {
    let shape = |cols: &[(&str, Family, bool)], key: &[&str]| Shape {
        table: "t".into(),
        columns: cols
            .iter()
            .map(|(n, f, null)| ((*n).to_string(), (f.clone(), *null)))
            .collect(),
        primary_key: key.iter().map(|k| (*k).to_string()).collect(),
        partitioned: false,
    };
    let entity = shape(
        &[
            ("id", Family::Int64, false),
            ("a", Family::Text, false),
            ("b", Family::Json, true),
        ],
        &["id"],
    );
    let same_on_sqlite = shape(
        &[
            ("id", Family::AnyInt, false),
            ("a", Family::Text, false),
            ("b", Family::Json, true),
        ],
        &["id"],
    );
    assert!(differences(&entity, &same_on_sqlite, DbBackend::Sqlite).is_empty());
    let table = shape(
        &[
            ("id", Family::Int32, false),
            ("a", Family::Text, true),
            ("c", Family::Text, false),
        ],
        &["a"],
    );
    assert_eq!(
        differences(&entity, &table, DbBackend::Postgres),
        [
            "Postgres: t.a: nullable false in the entity, true in the table",
            "Postgres: t.b is in the entity, not in the table",
            "Postgres: t.id: the entity's type is Int64, the table's Int32",
            "Postgres: t.c is in the table (a migration added it), not in the entity",
            "Postgres: t: primary key [\"id\"] in the entity, [\"a\"] in the table",
        ]
    );
    let unkeyed = shape(
        &[
            ("id", Family::Int64, false),
            ("a", Family::Text, false),
            ("b", Family::Json, true),
        ],
        &[],
    );
    assert_eq!(
        differences(&entity, &unkeyed, DbBackend::Postgres),
        ["Postgres: t: primary key [\"id\"] in the entity, [] in the table"],
        "only a partitioned table may lack its key"
    );
    let partitioned = Shape {
        partitioned: true,
        ..unkeyed
    };
    assert!(differences(&entity, &partitioned, DbBackend::Postgres).is_empty());
}
