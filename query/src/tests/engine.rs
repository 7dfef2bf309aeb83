//! The column engine against the reference: random sites, random queries,
//! random zones; every answer equal.

use crate::engine::{self, Block, Builder, SiteEvents};
use crate::reference::evaluate;
use crate::reference::RawEvent;
use crate::tests::t;
use crate::{random, Query};
use chrono::Duration;
use chrono_tz::Tz;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

const ZONES: [Tz; 5] = [
    chrono_tz::UTC,
    chrono_tz::Europe::Berlin,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Asia::Kathmandu,
    chrono_tz::America::St_Johns,
];

#[test]
fn random_queries_answer_as_the_reference() {
    let (mut compared, mut with_goals, mut with_revenue) = (0, 0, 0);
    for seed in 0..40 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Around Europe's switch to summer time (the 31st) or the US's
        // back to winter time.
        let start = if seed % 2 == 0 {
            t("2024-03-30T00:00:00Z")
        } else {
            t("2024-11-02T00:00:00Z")
        };
        let scattered = rng.random_range(0..300);
        let mut events = random::events(&mut rng, start, scattered);
        let first = events.iter().map(|e| e.timestamp).min();
        events.shuffle(&mut rng);
        let columns = SiteEvents::build(&events);
        let from_blocks = through_blocks(&events);
        let goals = random::goals(&mut rng);
        for i in 0..70 {
            let request = random::query(&mut rng, "s", start);
            let Ok(query) = Query::parse(&request).and_then(|q| q.bind_goals(goals.clone())) else {
                continue;
            };
            let tz = *ZONES.choose(&mut rng).unwrap();
            let now = start + Duration::minutes(rng.random_range(0..6000));
            let range = query.resolve(now, tz, first);
            let expected = evaluate(&query, range, tz, &events).unwrap();
            let got = engine::evaluate(&query, range, tz, &columns).unwrap();
            // Rows in a hash map rather than a dense array, and the events
            // split in three parts: the same.
            let sparse = engine::evaluate_with(&query, range, tz, &[(&columns, None)], 0, 1).unwrap();
            assert_eq!(
                sparse.to_json(),
                expected.to_json(),
                "sparse: seed {seed} query {i}: {request}"
            );
            let sparse = engine::evaluate_with(&query, range, tz, &[(&columns, None)], 0, 3).unwrap();
            assert_eq!(
                sparse.to_json(),
                expected.to_json(),
                "sparse, 3 parts: seed {seed} query {i}: {request}"
            );
            let sparse = engine::evaluate_with(&query, range, tz, &[(&columns, None)], 1 << 18, 3).unwrap();
            assert_eq!(
                sparse.to_json(),
                expected.to_json(),
                "sparse: seed {seed} query {i}: {request}"
            );
            assert_eq!(
                got.to_json(),
                expected.to_json(),
                "seed {seed} query {i} in {tz} at {now}: {request}"
            );
            let blocks = engine::evaluate(&query, range, tz, &from_blocks).unwrap();
            assert_eq!(
                blocks.to_json(),
                expected.to_json(),
                "through day blocks: seed {seed} query {i}: {request}"
            );
            compared += 1;
            with_goals += usize::from(request.to_string().contains("event:goal") && !got.results.is_empty());
            let json = got.to_json().to_string();
            with_revenue += usize::from(json.contains("\"currency\"") && !json.contains("\"value\":0,"));
        }
    }
    assert!(compared > 1000, "only {compared} valid random queries");
    assert!(with_goals > 200, "only {with_goals} answered goal queries");
    assert!(with_revenue > 50, "only {with_revenue} answers with revenue");
}

/// The columns built as a read from stored day blocks builds them: each
/// UTC day's events in a block of their own, encoded and decoded, then
/// the blocks pushed in reverse order.
fn through_blocks(events: &[RawEvent]) -> SiteEvents {
    let mut days: BTreeMap<_, Builder> = BTreeMap::new();
    for e in events {
        days.entry(e.timestamp.date_naive()).or_default().push(e);
    }
    assert!(days.len() > 1, "the events span one day");
    let mut builder = Builder::default();
    let mut pushed = 0;
    for (_, day) in days.into_iter().rev() {
        let bytes = day.into_block().encode().unwrap();
        let block = Block::decode(&bytes).unwrap();
        pushed += block.len();
        builder.push_block(&block, |_, _| {}).unwrap();
    }
    assert_eq!(pushed, events.len());
    builder.finish()
}

#[test]
fn a_damaged_block_is_refused_whole() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let events = random::events(&mut rng, t("2024-03-30T00:00:00Z"), 50);
    let mut day = Builder::default();
    for e in &events {
        day.push(e);
    }
    let bytes = day.into_block().encode().unwrap();
    assert!(Block::decode(&bytes).is_ok());
    let mut other_version = bytes.clone();
    other_version[0] = 9;
    assert_eq!(Block::decode(&other_version), Err(engine::BlockError::Version(9)));
    for cut in [0, 1, 3, 5, bytes.len() / 2, bytes.len() - 1] {
        assert!(Block::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    // A length claimed past what any block may hold allocates nothing.
    let mut huge = bytes.clone();
    huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(Block::decode(&huge), Err(engine::BlockError::Compressed(_))));
}

#[test]
fn an_empty_site_answers_one_zero_row() {
    let q =
        Query::parse(&serde_json::json!({"site_id": "s", "metrics": ["visitors", "bounce_rate"], "date_range": "7d"}))
            .unwrap();
    let range = q.resolve(t("2024-01-10T00:00:00Z"), chrono_tz::UTC, None);
    let got = engine::evaluate(&q, range, chrono_tz::UTC, &SiteEvents::build(&[])).unwrap();
    assert_eq!(
        got.to_json()["results"],
        serde_json::json!([{"dimensions": [], "metrics": [0, 0]}])
    );
}
