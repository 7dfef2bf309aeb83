//! The Stats API v2 query over the stores (`analytics_core::query::v2`)
//! against the reference evaluator over the same events, both stores:
//! random events written in random order and batches, then random
//! queries (metrics, dimensions, nested filters, ranges, zones), every
//! answer equal to the brute-force one.

use analytics_core::event::{Context, Event};
use analytics_core::query::v2;
use analytics_core::store::Writer;
use analytics_query::reference::{self, RawEvent};
use analytics_query::{random, Query};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::DatabaseConnection;
use serde_json::{json, Map, Value};

const SITE: &str = "shop";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The event the store is given for a reference event (whose visitor is
/// named as the store names it: `u:` a user id, `c:` a cookieless id).
fn stored(e: &RawEvent) -> Event {
    let (user_id, visitor_id) = match e.visitor.as_deref().and_then(|v| v.split_once(':')) {
        Some(("u", user)) => (user.to_string(), None),
        Some(("c", id)) => (String::new(), Some(id.parse().unwrap())),
        _ => (String::new(), None),
    };
    let texts = [
        e.hostname.as_str(),
        &e.source,
        &e.channel,
        &e.utm_source,
        &e.utm_medium,
        &e.utm_campaign,
        &e.utm_content,
        &e.utm_term,
        &e.browser,
        &e.browser_version,
        &e.os,
        &e.os_version,
        &e.device,
        &e.country,
    ];
    let props: Map<String, Value> = e.props.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    Event {
        event_id: uuid::Uuid::from_u128(e.event_id),
        site_id: SITE.into(),
        event_type: e.name.clone(),
        path: e.path.clone(),
        user_id,
        timestamp: e.timestamp,
        received_at: e.timestamp,
        referrer: (!e.referrer.is_empty()).then(|| e.referrer.clone()),
        props: (!props.is_empty()).then_some(props),
        context: Context::new(visitor_id, texts),
    }
}

async fn write_shuffled(db: &DatabaseConnection, rng: &mut ChaCha8Rng, events: &[Event]) {
    let mut order = events.to_vec();
    order.shuffle(rng);
    let writer = Writer::open(db).unwrap();
    for batch in order.chunks(rng.random_range(1..60)) {
        writer.write(batch).await.unwrap();
    }
}

/// Random data and queries on one store; returns how many queries were
/// valid (and so compared).
async fn compare(db: &DatabaseConnection, seed: u64) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = at("2024-03-30T00:00:00Z"); // Europe's switch to summer time on the 31st
    let truth = random::events(&mut rng, start, 250);
    let events: Vec<Event> = truth.iter().map(stored).collect();
    // What the store keeps is what it was given (texts are cleaned on the
    // way in; these need no cleaning).
    assert!(events
        .iter()
        .zip(&truth)
        .all(|(e, t)| e.context.get(analytics_core::event::ContextField::Country) == t.country));
    write_shuffled(db, &mut rng, &events).await;
    let first = truth.iter().map(|e| e.timestamp).min();
    let zones: [Tz; 4] = [
        chrono_tz::UTC,
        chrono_tz::Europe::Berlin,
        chrono_tz::Asia::Kolkata,
        chrono_tz::Asia::Kathmandu,
    ];
    let mut compared = 0;
    for i in 0..80 {
        let request = random::query(&mut rng, SITE, start);
        let Ok(query) = Query::parse(&request) else {
            continue;
        };
        let tz = *zones.choose(&mut rng).unwrap();
        let now = start + Duration::hours(rng.random_range(24..100));
        let expected = reference::evaluate(&query, query.resolve(now, tz, first), tz, &truth).unwrap();
        let got = v2::run(db, &query, tz, now).await.unwrap();
        assert_eq!(
            got.to_json(),
            expected.to_json(),
            "seed {seed} query {i} in {tz} at {now}: {request}"
        );
        compared += 1;
    }
    compared
}

#[tokio::test]
async fn random_queries_equal_the_reference_on_postgres() {
    let mut compared = 0;
    for seed in [1, 3, 5] {
        let pg = testkit::db::TestDb::migrated().await;
        compared += compare(&pg.connect().await, seed).await;
    }
    assert!(compared >= 100, "only {compared} of the random queries were valid");
}

#[tokio::test]
async fn random_queries_equal_the_reference_on_sqlite() {
    let mut compared = 0;
    for seed in [2, 4, 6] {
        compared += compare(&crate::migrated_sqlite().await, seed).await;
    }
    assert!(compared >= 100, "only {compared} of the random queries were valid");
}

/// A visit chained across many hours (a pageview every 25 minutes) is read
/// whole, however far past the range's margin it starts: its entry page
/// and duration are those of the whole chain.
#[tokio::test]
async fn a_visit_reaching_far_before_the_range_is_read_whole() {
    for db in [
        testkit::db::TestDb::migrated().await.connect().await,
        crate::migrated_sqlite().await,
    ] {
        let start = at("2024-06-01T12:00:00Z");
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let events: Vec<Event> = (0..30)
            .map(|i| Event {
                event_id: uuid::Uuid::from_u128(i + 1),
                site_id: SITE.into(),
                event_type: "page_view".into(),
                path: if i == 0 { "/first".into() } else { format!("/p{i}") },
                user_id: "walker".into(),
                timestamp: start + Duration::minutes(25 * i as i64),
                received_at: start,
                referrer: None,
                props: None,
                context: Context::default(),
            })
            .collect();
        write_shuffled(&db, &mut rng, &events).await;
        let query = Query::parse(&json!({"site_id": SITE, "metrics": ["visits", "visit_duration"],
            "dimensions": ["visit:entry_page"], "date_range": ["2024-06-02", "2024-06-02"]}))
        .unwrap();
        let got = v2::run(&db, &query, chrono_tz::UTC, at("2024-06-03T00:00:00Z"))
            .await
            .unwrap()
            .to_json();
        assert_eq!(
            got["results"],
            json!([{"dimensions": ["/first"], "metrics": [1, 29 * 25 * 60]}]),
            "{got}"
        );
    }
}
