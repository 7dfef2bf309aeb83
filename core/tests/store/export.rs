//! The export (`analytics_core::query::export`) on both stores: every
//! event of the site's local days comes back, byte for byte the event
//! written (NDJSON), or as one CSV row each; nothing of other days or
//! sites.

use crate::query_v2::{stored, write_shuffled, SITE};
use analytics_core::event::Event;
use analytics_core::query::export::{self, ExportQuery, Format};
use analytics_query::random;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::StreamExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sea_orm::DatabaseConnection;
use std::collections::BTreeMap;

async fn exported(db: &DatabaseConnection, q: &ExportQuery, tz: chrono_tz::Tz) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunks = std::pin::pin!(export::stream(db.clone(), q, tz));
    while let Some(chunk) = chunks.next().await {
        out.extend(chunk.unwrap());
    }
    out
}

async fn check(db: &DatabaseConnection, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start: DateTime<Utc> = "2024-03-30T00:00:00Z".parse().unwrap();
    let mut events: Vec<Event> = random::events(&mut rng, start, 400).iter().map(stored).collect();
    // Another site's events on the same days stay out.
    let mut other = events[0].clone();
    other.site_id = "other".into();
    other.event_id = uuid::Uuid::from_u128(7);
    write_shuffled(db, &mut rng, &events).await;
    write_shuffled(db, &mut rng, &[other]).await;
    let tz = chrono_tz::Asia::Kathmandu;
    let (from, to) = (
        NaiveDate::from_ymd_opt(2024, 3, 30).unwrap(),
        NaiveDate::from_ymd_opt(2024, 3, 31).unwrap(),
    );
    events.retain(|e| (from..=to).contains(&e.timestamp.with_timezone(&tz).date_naive()));
    let expected: BTreeMap<uuid::Uuid, Event> = events.into_iter().map(|e| (e.event_id, e)).collect();
    assert!(expected.len() > 100);

    let q = ExportQuery {
        site_id: SITE.into(),
        from,
        to,
        format: Format::Ndjson,
    };
    let text = String::from_utf8(exported(db, &q, tz).await).unwrap();
    let got: BTreeMap<uuid::Uuid, Event> = text
        .lines()
        .map(|l| serde_json::from_str::<Event>(l).unwrap())
        .map(|e| (e.event_id, e))
        .collect();
    assert_eq!(text.lines().count(), expected.len());
    assert_eq!(got, expected);
    // In time order.
    let times: Vec<DateTime<Utc>> = text
        .lines()
        .map(|l| serde_json::from_str::<Event>(l).unwrap().timestamp)
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));

    let q = ExportQuery {
        format: Format::Csv,
        ..q
    };
    let bytes = exported(db, &q, tz).await;
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        export::csv_header()
    );
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        let e = &expected[&record[0].parse::<uuid::Uuid>().unwrap()];
        assert_eq!(
            (&record[2], &record[3], &record[4]),
            (e.event_type.as_str(), e.path.as_str(), e.user_id.as_str())
        );
        assert_eq!(record[5].parse::<DateTime<Utc>>().unwrap(), e.timestamp);
        assert_eq!(&record[10], e.context.text_values()[0]);
        let props = e.props.as_ref().map(|p| serde_json::Value::Object(p.clone()));
        let written: Option<serde_json::Value> =
            (!record[8].is_empty()).then(|| serde_json::from_str(&record[8]).unwrap());
        assert_eq!(written, props);
        rows += 1;
    }
    assert_eq!(rows, expected.len());
    // A day without events: NDJSON is empty, CSV just its header.
    let empty = ExportQuery {
        from: from - Duration::days(30),
        to: from - Duration::days(30),
        ..q
    };
    assert_eq!(exported(db, &empty, tz).await, b"event_id,site_id,event_type,path,user_id,timestamp,received_at,referrer,props,visitor_id,hostname,source,channel,utm_source,utm_medium,utm_campaign,utm_content,utm_term,browser,browser_version,os,os_version,device,country\n");
}

#[tokio::test]
async fn export_returns_every_event_of_the_local_days_on_postgres() {
    let pg = testkit::db::TestDb::migrated().await;
    check(&pg.connect().await, 21).await;
}

#[tokio::test]
async fn export_returns_every_event_of_the_local_days_on_sqlite() {
    check(&crate::migrated_sqlite().await, 22).await;
}
