//! Views of segments (an older one with changed visitors left out, a newer
//! one holding them) against the reference over all events: random sites,
//! random changes after a random hour, random queries and funnels.

use crate::engine::{self, split_off, SiteEvents, View};
use crate::funnel::Funnel;
use crate::reference::{evaluate, RawEvent};
use crate::tests::t;
use crate::{random, Query};
use chrono::{DateTime, Duration, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::sync::Arc;

/// The view a cache builds when the events from `changed` on differ from
/// those its columns were built from: `old` is what was there before
/// (every event before `changed`, some after), `all` what is there now.
fn view(old: &[RawEvent], all: &[RawEvent], changed: DateTime<Utc>) -> View {
    let base = SiteEvents::build(old);
    let cut = changed;
    let recent: Vec<&RawEvent> = all.iter().filter(|e| e.timestamp >= cut).collect();
    let visitors: HashSet<&str> = recent.iter().filter_map(|e| e.visitor.as_deref()).collect();
    let (exclusion, mut events) = split_off(&base, &visitors, cut);
    events.extend(recent.into_iter().cloned());
    let seed = events.len() as u64;
    events.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    View {
        segments: vec![
            (Arc::new(base), Some(Arc::new(exclusion))),
            (Arc::new(SiteEvents::build(&events)), None),
        ],
    }
}

/// A random site, and what it held before a random hour's changes.
fn site(rng: &mut ChaCha8Rng, start: DateTime<Utc>) -> (Vec<RawEvent>, Vec<RawEvent>, DateTime<Utc>) {
    let scattered = rng.random_range(0..300);
    let all = random::events(rng, start, scattered);
    let changed = start + Duration::hours(rng.random_range(1..72));
    let old: Vec<RawEvent> = all
        .iter()
        .filter(|e| e.timestamp < changed || rng.random_bool(0.3))
        .cloned()
        .collect();
    (old, all, changed)
}

#[test]
fn views_answer_queries_as_the_reference_over_all_events() {
    let (mut compared, mut split, mut differs_without) = (0, 0, 0);
    for seed in 0..40 {
        let mut rng = ChaCha8Rng::seed_from_u64(5000 + seed);
        let start = t("2024-10-26T00:00:00Z");
        let (old, all, changed) = site(&mut rng, start);
        let view = view(&old, &all, changed);
        let first = all.iter().map(|e| e.timestamp).min();
        split += usize::from(view.segments.iter().all(|(s, _)| !s.is_empty()));
        // Without the exclusion the older segment counts the changed
        // visitors twice: the test can tell.
        let unexcluded = View {
            segments: view.segments.iter().map(|(s, _)| (s.clone(), None)).collect(),
        };
        let goals = random::goals(&mut rng);
        for i in 0..50 {
            let request = random::query(&mut rng, "s", start);
            let Ok(query) = Query::parse(&request).and_then(|q| q.bind_goals(goals.clone())) else {
                continue;
            };
            let tz = chrono_tz::Europe::Berlin;
            let now = start + Duration::minutes(rng.random_range(0..6000));
            let range = query.resolve(now, tz, first);
            let expected = evaluate(&query, range, tz, &all).unwrap().to_json();
            let got = engine::evaluate_view(&query, range, tz, &view).unwrap().to_json();
            assert_eq!(
                got, expected,
                "seed {seed} query {i} at {now}, changed {changed}: {request}"
            );
            let without = engine::evaluate_view(&query, range, tz, &unexcluded).unwrap().to_json();
            differs_without += usize::from(without != expected);
            compared += 1;
        }
    }
    eprintln!("{compared} queries, {split} split sites, {differs_without} answers needing the exclusion");
    assert!(compared > 800, "only {compared} valid random queries");
    assert!(split > 30, "only {split} sites with two non-empty segments");
    assert!(
        differs_without > 200,
        "only {differs_without} answers need the exclusion"
    );
}

#[test]
fn views_answer_funnels_as_the_reference_over_all_events() {
    let (mut compared, mut converted) = (0, 0);
    for seed in 0..40 {
        let mut rng = ChaCha8Rng::seed_from_u64(6000 + seed);
        let start = t("2024-03-30T00:00:00Z");
        let (old, all, changed) = site(&mut rng, start);
        let view = view(&old, &all, changed);
        let first = all.iter().map(|e| e.timestamp).min();
        let goals = random::goals(&mut rng);
        for i in 0..30 {
            let request = random::funnel(&mut rng, "s", start);
            let Ok(funnel) = Funnel::parse(&request, None).and_then(|f| f.bind_goals(goals.clone())) else {
                continue;
            };
            let now = start + Duration::minutes(rng.random_range(0..6000));
            let range = funnel.query().resolve(now, chrono_tz::UTC, first);
            let expected = crate::funnel::evaluate(&funnel, range, chrono_tz::UTC, &all).unwrap();
            let got = engine::funnel_view(&funnel, range, chrono_tz::UTC, &view).unwrap();
            assert_eq!(got, expected, "seed {seed} funnel {i}: {request}");
            compared += 1;
            converted += usize::from(expected.steps.last().is_some_and(|s| s.visitors > 0));
        }
    }
    eprintln!("{compared} funnels, {converted} converting");
    assert!(compared > 600, "only {compared} valid random funnels");
    assert!(
        converted > 50,
        "only {converted} funnels with visitors at the last step"
    );
}

#[test]
fn visitor_names_are_found_by_name_and_order_the_visits() {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let events = random::events(&mut rng, t("2024-03-30T00:00:00Z"), 300);
    let s = SiteEvents::build(&events);
    let names: HashSet<&str> = events.iter().filter_map(|e| e.visitor.as_deref()).collect();
    assert_eq!(s.visitors.len(), names.len());
    for name in &names {
        let code = s.visitors.code(name).unwrap();
        assert_eq!(s.visitors.text(code), *name);
    }
    for missing in ["", "u:", "u:user10", "c:0", "zzz"] {
        assert_eq!(s.visitors.code(missing), None, "{missing}");
    }
    assert!(s.visit_visitor.windows(2).all(|w| w[0] <= w[1]));
    let texts: Vec<&str> = s.visitors.texts().collect();
    assert!(texts.windows(2).all(|w| w[0] < w[1]));
}
