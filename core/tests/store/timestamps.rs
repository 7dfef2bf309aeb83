//! Every timestamp validation accepts round-trips unchanged: through the
//! Kafka payload (encode, decode) and through both stores (write, read
//! back through the entity). A property test over the whole range of
//! years, sub-second precisions, UTC offsets and leap seconds.

use analytics_core::event::payload::{decode, PayloadEncoder};
use analytics_core::event::{Event, IncomingEvent, Policy};
use analytics_core::store::Writer;
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use sea_orm::{DatabaseConnection, EntityTrait};
use std::collections::HashMap;
use testkit::db::TestDb;

/// RFC 3339 text of a random instant: any second from year 1 to year 9999
/// in UTC, any nanoseconds (or a leap second), any offset up to ±23:59.
fn rfc3339() -> impl Strategy<Value = String> {
    let first = DateTime::parse_from_rfc3339("0001-01-02T00:00:00Z")
        .unwrap()
        .timestamp();
    let last = DateTime::parse_from_rfc3339("9999-12-30T23:59:59Z")
        .unwrap()
        .timestamp();
    (first..=last, 0u32..1_000_000_000, -1439i32..=1439, 0u8..20).prop_map(|(secs, nanos, offset_min, leap)| {
        let t = DateTime::from_timestamp(secs, nanos).unwrap();
        let offset = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
        let text = t
            .with_timezone(&offset)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
        // Now and then a leap second: 23:59:60 of the UTC day.
        if leap == 0 {
            format!("{}T23:59:60.{:09}Z", t.format("%Y-%m-%d"), nanos)
        } else {
            text
        }
    })
}

fn accepted(texts: &[String]) -> Vec<Event> {
    let now = DateTime::parse_from_rfc3339("9999-12-31T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    texts
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            IncomingEvent {
                site_id: Some("ts".into()),
                event_type: Some("page_view".into()),
                path: Some(format!("/{i}")),
                timestamp: Some(t.clone()),
                ..Default::default()
            }
            .validate_with(now, Policy::stored())
            .ok()
        })
        .collect()
}

async fn stored(db: &DatabaseConnection) -> HashMap<uuid::Uuid, DateTime<Utc>> {
    entity::events::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.event_id, m.timestamp))
        .collect()
}

async fn round_trip(db: &DatabaseConnection, events: &[Event]) {
    let mut encoder = PayloadEncoder::default();
    for e in events {
        let back = decode(Some(encoder.encode(e).unwrap())).unwrap();
        assert_eq!(&back, e, "through the payload");
    }
    Writer::open(db).unwrap().write(events).await.unwrap();
    let rows = stored(db).await;
    for e in events {
        assert_eq!(
            rows.get(&e.event_id),
            Some(&e.timestamp),
            "through {:?}",
            db.get_database_backend()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn accepted_timestamps_round_trip_through_kafka_and_both_stores(texts in prop::collection::vec(rfc3339(), 40)) {
        let events = accepted(&texts);
        // Everything generated lies in years 1 to 9999 once in UTC, but an
        // offset can carry an instant at the very edges out of range.
        prop_assert!(events.len() * 10 >= texts.len() * 9, "{} of {} accepted", events.len(), texts.len());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let pg = TestDb::migrated().await;
            round_trip(&pg.connect().await, &events).await;
            round_trip(&super::migrated_sqlite().await, &events).await;
        });
    }
}

#[test]
fn years_outside_one_to_9999_are_refused_by_every_policy() {
    let now = Utc::now();
    for text in [
        "0000-12-31T23:00:00Z",
        "0001-01-01T00:30:00+01:00",
        "+10000-01-01T00:00:00Z",
    ] {
        let e = IncomingEvent {
            site_id: Some("ts".into()),
            event_type: Some("x".into()),
            timestamp: Some(text.into()),
            ..Default::default()
        };
        assert!(e.validate_with(now, Policy::stored()).is_err(), "{text} accepted");
    }
}
