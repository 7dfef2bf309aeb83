//! The Stats API v2 query over the stores (`analytics_core::query::v2`)
//! against the reference evaluator over the same events, both stores:
//! random events written in random order and batches, then random
//! queries (metrics, dimensions, nested filters, ranges, zones), every
//! answer equal to the brute-force one.

use analytics_core::event::{Context, ContextField, Event};
use analytics_core::query::v2;
use analytics_core::store::Writer;
use analytics_query::funnel::{self, Funnel};
use analytics_query::reference::{self, RawEvent};
use analytics_query::{random, Query};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{json, Map, Value};

pub const SITE: &str = "shop";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The event the store is given for a reference event (whose visitor is
/// named as the store names it: `u:` a user id, `c:` a cookieless id).
pub fn stored(e: &RawEvent) -> Event {
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

pub async fn write_shuffled(db: &DatabaseConnection, rng: &mut ChaCha8Rng, events: &[Event]) {
    let mut order = events.to_vec();
    order.shuffle(rng);
    let writer = Writer::open(db).unwrap();
    for batch in order.chunks(rng.random_range(1..60)) {
        writer.write(batch).await.unwrap();
    }
}

/// Random data and queries on one store, the data written in three
/// parts with queries after each, then a user deleted and more queries:
/// every answer, through a cache kept all along and through no cache,
/// equal to the reference over the events stored at that moment. Returns
/// how many queries were valid (and so compared) and the cache's stats.
async fn compare(db: &DatabaseConnection, seed: u64) -> (usize, v2::CacheStats) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = at("2024-03-30T00:00:00Z"); // Europe's switch to summer time on the 31st
    let mut all = random::events(&mut rng, start, 250);
    // What the store keeps is what it was given (texts are cleaned on the
    // way in; these need no cleaning).
    assert!(all
        .iter()
        .all(|e| stored(e).context.get(ContextField::Country) == e.country));
    all.shuffle(&mut rng);
    let cache = v2::ColumnCache::new(64 << 20, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
    let uncached = v2::ColumnCache::new(0, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
    // The site's goals go through the store and back.
    analytics_core::access::sites::add(db, SITE, &[]).await.unwrap();
    let mut goals = random::goals(&mut rng);
    for g in &goals {
        analytics_core::conversions::goals::add(db, SITE, g).await.unwrap();
    }
    let stored_goals = analytics_core::conversions::goals::list(db, SITE).await.unwrap();
    goals.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(stored_goals, goals);
    let mut truth: Vec<RawEvent> = Vec::new();
    let mut compared = 0;
    let third = all.len() / 3 + 1;
    for step in 0..4 {
        if step < 3 {
            let part: Vec<RawEvent> = all.iter().skip(step * third).take(third).cloned().collect();
            write_shuffled(db, &mut rng, &part.iter().map(stored).collect::<Vec<_>>()).await;
            truth.extend(part);
        } else {
            let removed = analytics_core::store::user_events::delete(db, SITE, "user1")
                .await
                .unwrap();
            let before = truth.len();
            truth.retain(|e| e.visitor.as_deref() != Some("u:user1"));
            assert_eq!(removed as usize, before - truth.len());
        }
        compared += check(
            db,
            &mut rng,
            &[&cache, &uncached],
            &truth,
            &stored_goals,
            (seed, step),
            24..100,
        )
        .await;
    }
    (compared, cache.stats())
}

/// Random queries and funnels over the site as `truth` holds it, asked at
/// a random hour of `hours` after the data's start through each cache:
/// every answer equal to the reference. Returns how many were valid.
async fn check(
    db: &DatabaseConnection,
    rng: &mut ChaCha8Rng,
    caches: &[&v2::ColumnCache],
    truth: &[RawEvent],
    goals: &[analytics_query::Goal],
    (seed, step): (u64, usize),
    hours: std::ops::Range<i64>,
) -> usize {
    let start = at("2024-03-30T00:00:00Z");
    let zones: [Tz; 4] = [
        chrono_tz::UTC,
        chrono_tz::Europe::Berlin,
        chrono_tz::Asia::Kolkata,
        chrono_tz::Asia::Kathmandu,
    ];
    let mut compared = 0;
    let first = truth.iter().map(|e| e.timestamp).min();
    for i in 0..40 {
        let request = random::query(rng, SITE, start);
        let Ok(query) = Query::parse(&request).and_then(|q| q.bind_goals(goals.to_vec())) else {
            continue;
        };
        let tz = *zones.choose(rng).unwrap();
        let now = start + Duration::hours(rng.random_range(hours.clone()));
        let expected = reference::evaluate(&query, query.resolve(now, tz, first), tz, truth)
            .unwrap()
            .to_json();
        for (k, cache) in caches.iter().enumerate() {
            let got = v2::run(db, cache, &query, tz, now).await.unwrap();
            assert_eq!(
                got.to_json(),
                expected,
                "cache {k}: seed {seed} step {step} query {i} in {tz} at {now}: {request}"
            );
        }
        compared += 1;
    }
    for i in 0..15 {
        let request = random::funnel(rng, SITE, start);
        let Ok(f) = Funnel::parse(&request, None).and_then(|f| f.bind_goals(goals.to_vec())) else {
            continue;
        };
        let tz = *zones.choose(rng).unwrap();
        let now = start + Duration::hours(rng.random_range(hours.clone()));
        let expected = funnel::evaluate(&f, f.query().resolve(now, tz, first), tz, truth).unwrap();
        for (k, cache) in caches.iter().enumerate() {
            let got = v2::funnel(db, cache, &f, tz, now).await.unwrap();
            assert_eq!(
                got, expected,
                "cache {k}: seed {seed} step {step} funnel {i} in {tz} at {now}: {request}"
            );
        }
        compared += 1;
    }
    compared
}

/// A visitor per six hours of each random visitor, as a site of many
/// visitors has: most of them are not among the latest hours'.
pub fn many_visitors(events: &mut [RawEvent], start: DateTime<Utc>) {
    for e in events {
        if let Some(v) = &mut e.visitor {
            let block = (e.timestamp - start).num_hours() / 6;
            *v = match v.split_once(':') {
                Some(("c", id)) => format!("c:{}", id.parse::<i64>().unwrap() * 100 + block),
                _ => format!("{v}-{block}"),
            };
        }
    }
}

/// A site receiving events: everything before a random hour written
/// first, then the later events in four rounds, each in random order
/// (late ones among them), queries after each: the kept cache answers
/// from its columns and a read of the recent events, exactly. Returns the
/// queries compared and the kept cache's stats.
async fn compare_live(db: &DatabaseConnection, seed: u64) -> (usize, v2::CacheStats) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = at("2024-03-30T00:00:00Z");
    let mut all = random::events(&mut rng, start, 250);
    many_visitors(&mut all, start);
    let boundary = start + Duration::hours(rng.random_range(56..68));
    let (mut truth, mut later): (Vec<RawEvent>, Vec<RawEvent>) = all.into_iter().partition(|e| e.timestamp < boundary);
    later.shuffle(&mut rng);
    analytics_core::access::sites::add(db, SITE, &[]).await.unwrap();
    let goals = random::goals(&mut rng);
    for g in &goals {
        analytics_core::conversions::goals::add(db, SITE, g).await.unwrap();
    }
    let goals = analytics_core::conversions::goals::list(db, SITE).await.unwrap();
    let cache = v2::ColumnCache::new(64 << 20, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
    let uncached = v2::ColumnCache::new(0, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
    write_shuffled(db, &mut rng, &truth.iter().map(stored).collect::<Vec<_>>()).await;
    let mut compared = check(db, &mut rng, &[&cache, &uncached], &truth, &goals, (seed, 0), 72..100).await;
    let round = later.len() / 4 + 1;
    for (step, part) in later.chunks(round).enumerate() {
        write_shuffled(db, &mut rng, &part.iter().map(stored).collect::<Vec<_>>()).await;
        truth.extend(part.iter().cloned());
        compared += check(
            db,
            &mut rng,
            &[&cache, &uncached],
            &truth,
            &goals,
            (seed, step + 1),
            72..100,
        )
        .await;
    }
    (compared, cache.stats())
}

#[tokio::test]
async fn a_site_receiving_events_is_answered_from_kept_columns_and_recent_reads() {
    let mut compared = 0;
    let mut recent = 0;
    for seed in [11, 12, 13] {
        let pg = testkit::db::TestDb::migrated().await;
        for (store, db) in [
            ("postgres", pg.connect().await),
            ("sqlite", crate::migrated_sqlite().await),
        ] {
            let (n, stats) = compare_live(&db, seed).await;
            assert!(stats.hits > 0, "{store} seed {seed}: no hit: {stats:?}");
            compared += n;
            eprintln!("{store} seed {seed}: {stats:?}");
            recent += stats.recent;
        }
    }
    assert!(compared >= 300, "only {compared} of the random queries were valid");
    assert!(recent >= 30, "the recent reads were exercised only {recent} times");
}

#[tokio::test]
async fn random_queries_equal_the_reference_on_postgres() {
    let mut compared = 0;
    for seed in [1, 3, 5] {
        let pg = testkit::db::TestDb::migrated().await;
        let (n, stats) = compare(&pg.connect().await, seed).await;
        assert!(
            stats.hits > 0 && stats.stale > 0,
            "seed {seed}: the cache was not exercised: {stats:?}"
        );
        compared += n;
    }
    assert!(compared >= 200, "only {compared} of the random queries were valid");
}

#[tokio::test]
async fn random_queries_equal_the_reference_on_sqlite() {
    let mut compared = 0;
    for seed in [2, 4, 6] {
        let (n, stats) = compare(&crate::migrated_sqlite().await, seed).await;
        assert!(
            stats.hits > 0 && stats.stale > 0,
            "seed {seed}: the cache was not exercised: {stats:?}"
        );
        compared += n;
    }
    assert!(compared >= 200, "only {compared} of the random queries were valid");
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
        let cache = v2::ColumnCache::new(0, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
        let got = v2::run(&db, &cache, &query, chrono_tz::UTC, at("2024-06-03T00:00:00Z"))
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

/// The rows `query` answers through `cache` as of `now`, in UTC.
async fn results(db: &DatabaseConnection, cache: &v2::ColumnCache, query: &Query, now: DateTime<Utc>) -> Value {
    v2::run(db, cache, query, chrono_tz::UTC, now).await.unwrap().to_json()["results"].clone()
}

/// A user deleted, then as many events written in the same hour: the
/// hourly counts are what they were, the deletion epoch is not, so the
/// cached columns are not used.
#[tokio::test]
async fn a_deletion_then_as_many_new_events_is_not_answered_from_the_cache() {
    let pg = testkit::db::TestDb::migrated().await;
    for db in [pg.connect().await, crate::migrated_sqlite().await] {
        let event = |id: u128, user: &str| Event {
            event_id: uuid::Uuid::from_u128(id),
            site_id: SITE.into(),
            event_type: "page_view".into(),
            path: format!("/{user}"),
            user_id: user.into(),
            timestamp: at("2024-06-01T10:00:00Z") + Duration::minutes(id as i64),
            received_at: at("2024-06-01T10:00:00Z"),
            referrer: None,
            props: None,
            context: Context::default(),
        };
        let writer = Writer::open(&db).unwrap();
        writer.write(&[event(1, "gone")]).await.unwrap();
        let query = Query::parse(
            &json!({"site_id": SITE, "metrics": ["visitors"], "dimensions": ["event:page"],
            "date_range": ["2024-06-01", "2024-06-01"]}),
        )
        .unwrap();
        let cache = v2::ColumnCache::new(64 << 20, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
        let now = at("2024-06-02T00:00:00Z");
        let ask = || results(&db, &cache, &query, now);
        assert_eq!(ask().await, json!([{"dimensions": ["/gone"], "metrics": [1]}]));
        analytics_core::store::user_events::delete(&db, SITE, "gone")
            .await
            .unwrap();
        writer.write(&[event(2, "new")]).await.unwrap();
        assert_eq!(ask().await, json!([{"dimensions": ["/new"], "metrics": [1]}]));
        assert_eq!((cache.stats().hits, cache.stats().stale), (0, 1));
    }
}

/// Retention dropping a day of the window, then a site's removal and as
/// many new events in the same hour: neither leaves a trace in the window's
/// hourly counts a reader could see (retention keeps the rollups; the
/// removal deletes the site's row and its epoch with it), so both move an
/// epoch of `store_epochs` and the kept columns are not used.
#[tokio::test]
async fn retention_and_a_site_removal_are_not_answered_from_the_cache() {
    use analytics_core::maintenance::{retention, Retention};
    let pg = testkit::db::TestDb::migrated().await;
    for db in [pg.connect().await, crate::migrated_sqlite().await] {
        let event = |id: u128, user: &str, at_: &str| Event {
            event_id: uuid::Uuid::from_u128(id),
            site_id: SITE.into(),
            event_type: "page_view".into(),
            path: format!("/{user}"),
            user_id: user.into(),
            timestamp: at(at_),
            received_at: at(at_),
            referrer: None,
            props: None,
            context: Context::default(),
        };
        analytics_core::access::sites::add(&db, SITE, &[]).await.unwrap();
        let writer = Writer::open(&db).unwrap();
        writer
            .write(&[
                event(1, "old", "2024-06-01T10:00:00Z"),
                event(2, "kept", "2024-06-02T10:00:00Z"),
            ])
            .await
            .unwrap();
        let query = Query::parse(
            &json!({"site_id": SITE, "metrics": ["visitors"], "dimensions": ["event:page"],
            "date_range": ["2024-06-01", "2024-06-02"]}),
        )
        .unwrap();
        let cache = v2::ColumnCache::new(64 << 20, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
        let now = at("2024-06-03T12:00:00Z");
        let ask = || results(&db, &cache, &query, now);
        let both = json!([{"dimensions": ["/kept"], "metrics": [1]}, {"dimensions": ["/old"], "metrics": [1]}]);
        assert_eq!(ask().await, both);
        assert_eq!(ask().await, both);
        assert_eq!(cache.stats().hits, 1);
        // Retention keeps 2024-06-02 on: the first day is dropped.
        let kept = Retention {
            days: 1,
            rollups: false,
        };
        assert_eq!(kept.first_day_kept(now).to_string(), "2024-06-02");
        let dropped = retention::apply(&db, kept, now).await.unwrap();
        assert!(dropped.events >= 1, "{dropped:?}");
        let only_kept = json!([{"dimensions": ["/kept"], "metrics": [1]}]);
        assert_eq!(ask().await, only_kept);
        assert_eq!(cache.stats().stale, 1);
        // Run again, it drops nothing: the floor stays, the entry answers.
        retention::apply(&db, kept, now).await.unwrap();
        assert_eq!(ask().await, only_kept);
        assert_eq!(cache.stats().hits, 2);
        // The site removed, then new events in the hours it had events in
        // (the window's counts the same again, its user deletions at 0).
        analytics_core::access::sites::remove(&db, SITE).await.unwrap();
        writer
            .write(&[
                event(3, "new", "2024-06-01T10:30:00Z"),
                event(4, "newer", "2024-06-02T10:30:00Z"),
            ])
            .await
            .unwrap();
        assert_eq!(
            ask().await,
            json!([{"dimensions": ["/new"], "metrics": [1]}, {"dimensions": ["/newer"], "metrics": [1]}])
        );
        assert_eq!(cache.stats().stale, 2);
    }
}

/// A kept entry for one day, then a new event early in the day that joins
/// a visit begun well before it (whose first events the entry never read,
/// as that visit did not touch the day then): the visit's entry page and
/// duration are the whole visit's, not what the entry held of it.
#[tokio::test]
async fn a_new_event_joining_a_visit_from_before_the_range_is_read_whole() {
    let pg = testkit::db::TestDb::migrated().await;
    for db in [pg.connect().await, crate::migrated_sqlite().await] {
        let day = at("2024-06-02T00:00:00Z");
        let event = |id: u128, user: &str, minutes: i64, path: &str| Event {
            event_id: uuid::Uuid::from_u128(id),
            site_id: SITE.into(),
            event_type: "page_view".into(),
            path: path.into(),
            user_id: user.into(),
            timestamp: day + Duration::minutes(minutes),
            received_at: day,
            referrer: None,
            props: None,
            context: Context::default(),
        };
        let writer = Writer::open(&db).unwrap();
        // `early` has a visit from 01:10 before the day into it, so the
        // read reaches back past the margin; `late` only a visit in the
        // margin, from 00:50 before the day to 00:25 before it.
        writer
            .write(&[
                event(1, "early", -70, "/early"),
                event(2, "early", -45, "/early"),
                event(3, "early", -20, "/early"),
                event(4, "early", 10, "/early"),
                event(5, "late", -50, "/late-start"),
                event(6, "late", -25, "/late"),
            ])
            .await
            .unwrap();
        // Visitors in the margin only, so that the events read again are
        // few beside the entry's.
        let others: Vec<Event> = (0..10)
            .map(|k| event(100 + k, &format!("other{k}"), -15, "/other"))
            .collect();
        writer.write(&others).await.unwrap();
        let query = Query::parse(&json!({"site_id": SITE, "metrics": ["visits", "visit_duration"],
            "dimensions": ["visit:entry_page"], "date_range": ["2024-06-02", "2024-06-02"]}))
        .unwrap();
        let cache = v2::ColumnCache::new(64 << 20, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
        let now = at("2024-06-03T00:00:00Z");
        let ask = || results(&db, &cache, &query, now);
        assert_eq!(
            ask().await,
            json!([{"dimensions": ["/early"], "metrics": [1, 80 * 60]}])
        );
        writer
            .write(&[
                event(7, "late", 4, "/late"),
                event(8, "late", 30, "/late"),
                event(10, "late", 58, "/late"),
            ])
            .await
            .unwrap();
        assert_eq!(
            ask().await,
            json!([
                {"dimensions": ["/early"], "metrics": [1, 80 * 60]},
                {"dimensions": ["/late-start"], "metrics": [1, 108 * 60]}
            ])
        );
        assert_eq!(cache.stats().recent, 0, "{:?}", cache.stats());
        // A cache whose budget holds the columns and nothing more.
        let tight = v2::ColumnCache::new(cache.stats().bytes, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
        let ask_tight = || results(&db, &tight, &query, now);
        let before = ask_tight().await;
        assert_eq!(
            (tight.stats().misses, tight.stats().entries),
            (1, 1),
            "{:?}",
            tight.stats()
        );
        // In the next hour, a new event extends `late`'s visit: read from
        // the recent events only.
        writer.write(&[event(9, "late", 75, "/later")]).await.unwrap();
        assert_eq!(
            ask().await,
            json!([
                {"dimensions": ["/early"], "metrics": [1, 80 * 60]},
                {"dimensions": ["/late-start"], "metrics": [1, 125 * 60]}
            ])
        );
        assert_eq!(cache.stats().recent, 1, "{:?}", cache.stats());
        // The tight cache answers the same from its columns and a read of
        // the recent events, and keeps its columns (not the newer segment,
        // which is past its budget): the next answer reads them again.
        assert_ne!(before, ask().await);
        for recent in [1, 2] {
            assert_eq!(ask_tight().await, ask().await);
            let stats = tight.stats();
            assert_eq!((stats.misses, stats.recent, stats.entries), (1, recent, 1), "{stats:?}");
        }
    }
}

/// A dashboard's panels asked at once of a range not kept yet: one read of
/// the events, the other questions answered from its columns, every
/// answer as a fresh cache gives it alone.
#[tokio::test]
async fn questions_asked_at_once_of_a_new_range_read_it_once() {
    let pg = testkit::db::TestDb::migrated().await;
    for (store, db) in [
        ("postgres", pg.connect().await),
        ("sqlite", crate::migrated_sqlite().await),
    ] {
        let events: Vec<Event> = (0..400u128)
            .map(|i| Event {
                event_id: uuid::Uuid::from_u128(i + 1),
                site_id: SITE.into(),
                event_type: if i % 5 == 0 { "signup" } else { "page_view" }.into(),
                path: format!("/p{}", i % 7),
                user_id: format!("u{}", i % 37),
                timestamp: at("2024-06-01T00:00:00Z") + Duration::minutes(i as i64 * 7),
                received_at: at("2024-06-01T00:00:00Z"),
                referrer: None,
                props: None,
                context: Context::default(),
            })
            .collect();
        Writer::open(&db).unwrap().write(&events).await.unwrap();
        let queries: Vec<Query> = [
            "event:page",
            "event:name",
            "time:hour",
            "visit:entry_page",
            "visit:exit_page",
        ]
        .iter()
        .map(|d| {
            Query::parse(&json!({"site_id": SITE, "metrics": ["visitors", "events", "visits"],
                    "dimensions": [d], "date_range": ["2024-06-01", "2024-06-02"]}))
            .unwrap()
        })
        .collect();
        let now = at("2024-06-03T00:00:00Z");
        let mut alone = Vec::new();
        for q in &queries {
            let fresh = v2::ColumnCache::new(64 << 20, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
            alone.push(results(&db, &fresh, q, now).await);
        }
        let cache = v2::ColumnCache::new(64 << 20, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
        let together = futures::future::join_all(queries.iter().map(|q| results(&db, &cache, q, now))).await;
        assert_eq!(together, alone, "{store}");
        let stats = cache.stats();
        assert_eq!(
            (stats.misses, stats.hits, stats.entries),
            (1, queries.len() as u64 - 1, 1),
            "{store}: {stats:?}"
        );
    }
}

/// A site's closed days read once from their rows leave their stored day
/// blocks, which the next whole read takes instead, until the day changes:
/// a late event (which here joins a visit across midnight) sends its day
/// back to the rows, a damaged block is read around, a user deletion
/// drops them all. Every answer equal to the reference over the events
/// stored at that moment.
#[tokio::test]
async fn closed_days_are_read_from_their_stored_blocks_until_they_change() {
    let pg = testkit::db::TestDb::migrated().await;
    for db in [pg.connect().await, crate::migrated_sqlite().await] {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let start = at("2024-03-30T00:00:00Z");
        let mut events = random::events(&mut rng, start, 200);
        // Held back: a tenth of the middle day, and a pageview at 23:50 of
        // it by a visitor whose visit goes on at 00:10 the next day.
        let template = events[0].clone();
        let bridge = |id: u128, ts: &str| RawEvent {
            event_id: id,
            timestamp: at(ts),
            visitor: Some("u:bridge".into()),
            name: "page_view".into(),
            path: format!("/bridge/{id}"),
            ..template.clone()
        };
        events.push(bridge(1 << 100, "2024-03-31T23:50:00Z"));
        events.push(bridge((1 << 100) + 1, "2024-04-01T00:10:00Z"));
        let middle = |e: &RawEvent| e.timestamp.date_naive().to_string() == "2024-03-31";
        let (late, early): (Vec<RawEvent>, Vec<RawEvent>) = events
            .iter()
            .cloned()
            .partition(|e| middle(e) && (e.event_id % 10 == 0 || e.visitor.as_deref() == Some("u:bridge")));
        assert!(late.len() >= 2 && early.iter().any(middle));
        analytics_core::access::sites::add(&db, SITE, &[]).await.unwrap();
        write_shuffled(&db, &mut rng, &early.iter().map(stored).collect::<Vec<_>>()).await;
        let query = Query::parse(&json!({"site_id": SITE,
            "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"],
            "dimensions": ["visit:entry_page"], "date_range": ["2024-03-30", "2024-04-01"]}))
        .unwrap();
        let now = at("2024-04-05T00:00:00Z");
        let expected = |truth: &[RawEvent]| {
            let first = truth.iter().map(|e| e.timestamp).min();
            let range = query.resolve(now, chrono_tz::UTC, first);
            reference::evaluate(&query, range, chrono_tz::UTC, truth)
                .unwrap()
                .to_json()["results"]
                .clone()
        };
        // Nothing kept between questions: every one is a whole read.
        let cache = v2::ColumnCache::new(0, v2::DEFAULT_MAX_AGE, v2::DEFAULT_MAX_EVENTS);
        let days = |c: &v2::ColumnCache| {
            let s = c.stats();
            (s.days_from_rows, s.days_from_blocks, s.blocks_stored)
        };
        let ask = || results(&db, &cache, &query, now);
        assert_eq!(ask().await, expected(&early));
        assert_eq!(
            days(&cache),
            (3, 0, 3),
            "the three days read from rows, their blocks stored"
        );
        assert_eq!(ask().await, expected(&early));
        assert_eq!(days(&cache), (3, 3, 3), "the three days from their blocks");

        write_shuffled(&db, &mut rng, &late.iter().map(stored).collect::<Vec<_>>()).await;
        let truth = [early.clone(), late.clone()].concat();
        let got = ask().await;
        assert_eq!(got, expected(&truth));
        assert!(
            got.to_string().contains("/bridge/"),
            "the bridging visit is answered: {got}"
        );
        assert_eq!(
            days(&cache),
            (4, 5, 4),
            "the changed day read from rows, the others from blocks"
        );
        // Random questions of the site as it is, through whole reads.
        let compared = check(&db, &mut rng, &[&cache], &truth, &[], (11, 0), 24..100).await;
        assert!(compared > 10, "only {compared} random questions");

        // A damaged block is read around and stored again.
        let (rows, _, stored_before) = days(&cache);
        db.execute_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE event_blocks SET data = $1 WHERE site_id = $2 AND day = $3",
            [
                vec![1u8, 2, 3].into(),
                SITE.into(),
                at("2024-03-30T00:00:00Z").date_naive().into(),
            ],
        ))
        .await
        .unwrap();
        assert_eq!(ask().await, expected(&truth));
        assert_eq!((days(&cache).0, days(&cache).2), (rows + 1, stored_before + 1));

        // A user deletion drops the site's blocks with the user's events.
        let blocks = || async {
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    "SELECT COUNT(*) FROM event_blocks",
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        };
        assert!(blocks().await >= 3);
        let removed = analytics_core::store::user_events::delete(&db, SITE, "bridge")
            .await
            .unwrap();
        assert_eq!(removed, 2);
        assert_eq!(blocks().await, 0);
        let kept: Vec<RawEvent> = truth
            .into_iter()
            .filter(|e| e.visitor.as_deref() != Some("u:bridge"))
            .collect();
        assert_eq!(ask().await, expected(&kept));
    }
}
