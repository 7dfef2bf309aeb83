//! Export → import (`analytics_core::store::import`) on both stores: a
//! random site exported as NDJSON and as CSV and imported into empty
//! stores answers every random query exactly as the original; importing
//! again changes nothing; bad lines are reported by number, and with
//! all-or-nothing nothing is written.

use crate::query_v2::{stored, write_shuffled, SITE};
use analytics_core::event::exchange::Format;
use analytics_core::query::export::{self, ExportQuery};
use analytics_core::query::v2;
use analytics_core::store::import::{self, Report};
use analytics_core::store::Writer;
use analytics_query::{random, Query};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::DatabaseConnection;

async fn export_all(db: &DatabaseConnection, format: Format) -> Vec<u8> {
    let q = ExportQuery {
        site_id: SITE.into(),
        from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
        format,
    };
    let mut out = Vec::new();
    let mut chunks = std::pin::pin!(export::stream(db.clone(), &q, chrono_tz::UTC));
    while let Some(chunk) = chunks.next().await {
        out.extend(chunk.unwrap());
    }
    out
}

async fn import_bytes(db: &DatabaseConnection, bytes: &[u8], format: Format, all_or_nothing: bool) -> Report {
    let writer = Writer::open(db).unwrap();
    import::import(
        &writer,
        || Ok(std::io::Cursor::new(bytes)),
        format,
        SITE,
        all_or_nothing,
        |_| {},
    )
    .await
    .unwrap()
}

async fn answers(db: &DatabaseConnection, seed: u64, start: DateTime<Utc>) -> Vec<serde_json::Value> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cache = v2::ColumnCache::new(0, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
    let mut out = Vec::new();
    while out.len() < 40 {
        let Ok(query) = Query::parse(&random::query(&mut rng, SITE, start)) else {
            continue;
        };
        let now = start + Duration::hours(rng.random_range(24..100));
        out.push(
            v2::run(db, &cache, &query, chrono_tz::Europe::Berlin, now)
                .await
                .unwrap()
                .to_json(),
        );
    }
    out
}

async fn round_trip(original: &DatabaseConnection, fresh: [DatabaseConnection; 2], seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start: DateTime<Utc> = "2024-03-30T00:00:00Z".parse().unwrap();
    let events: Vec<_> = random::events(&mut rng, start, 300).iter().map(stored).collect();
    write_shuffled(original, &mut rng, &events).await;
    let expected = answers(original, seed, start).await;
    for (db, format) in fresh.iter().zip([Format::Ndjson, Format::Csv]) {
        let bytes = export_all(original, format).await;
        let report = import_bytes(db, &bytes, format, true).await;
        assert_eq!(
            (report.inserted as usize, report.duplicates, report.bad_lines),
            (events.len(), 0, 0),
            "{format:?}"
        );
        assert_eq!(answers(db, seed, start).await, expected, "{format:?}");
        // Again: nothing changes.
        let again = import_bytes(db, &bytes, format, false).await;
        assert_eq!(
            (again.inserted, again.duplicates as usize),
            (0, events.len()),
            "{format:?}"
        );
        assert_eq!(answers(db, seed, start).await, expected, "{format:?}");
    }
}

#[tokio::test]
async fn export_then_import_gives_the_same_answers_on_postgres() {
    let (a, b, c) = (
        testkit::db::TestDb::migrated().await,
        testkit::db::TestDb::migrated().await,
        testkit::db::TestDb::migrated().await,
    );
    round_trip(&a.connect().await, [b.connect().await, c.connect().await], 31).await;
}

#[tokio::test]
async fn export_then_import_gives_the_same_answers_on_sqlite() {
    let original = crate::migrated_sqlite().await;
    round_trip(
        &original,
        [crate::migrated_sqlite().await, crate::migrated_sqlite().await],
        32,
    )
    .await;
}

#[tokio::test]
async fn bad_lines_are_reported_by_number_and_all_or_nothing_writes_nothing() {
    let db = crate::migrated_sqlite().await;
    let good = |id: u128| {
        format!(
            r#"{{"event_id":"{}","site_id":"{SITE}","event_type":"page_view","path":"/","user_id":"u","timestamp":"1999-01-01T00:00:00Z","received_at":"2025-01-01T00:00:00Z"}}"#,
            uuid::Uuid::from_u128(id)
        )
    };
    let other_site = good(9).replace(SITE, "elsewhere");
    let text = [
        good(1),
        good(2),
        "{not json".to_string(),
        String::new(),
        other_site,
        good(3),
    ]
    .join("\n");
    let report = import_bytes(&db, text.as_bytes(), Format::Ndjson, true).await;
    assert!(report.aborted);
    let lines: Vec<u64> = report.bad.iter().map(|b| b.line).collect();
    assert_eq!(lines, [3, 5], "{report:?}");
    assert!(
        report.bad[1].message.starts_with("site_id: belongs to `elsewhere`"),
        "{report:?}"
    );
    // Nothing was written: importing the good lines alone inserts all three.
    let report = import_bytes(&db, text.as_bytes(), Format::Ndjson, false).await;
    assert_eq!(
        (report.inserted, report.bad_lines, report.aborted),
        (3, 2, false),
        "{report:?}"
    );
    // CSV: a bad cell is named with its line.
    let mut csv = String::from_utf8(analytics_core::event::exchange::csv_header_line()).unwrap();
    csv.push_str("nope,shop,page_view,/,u,1999-01-01T00:00:00Z,2025-01-01T00:00:00Z,,,,,,,,,,,,,,,,,\n");
    let report = import_bytes(&db, csv.as_bytes(), Format::Csv, false).await;
    assert_eq!(report.bad.len(), 1, "{report:?}");
    assert_eq!(
        (report.bad[0].line, report.bad[0].message.starts_with("event_id")),
        (2, true),
        "{report:?}"
    );
}
