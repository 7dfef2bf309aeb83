//! Funnels: the column engine against the brute force on random data, and
//! the brute force by hand.

use crate::engine::{self, SiteEvents};
use crate::funnel::{evaluate, Funnel};
use crate::tests::{event, pv, t};
use crate::{random, Goal};
use chrono::Duration;
use chrono_tz::Tz;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

const ZONES: [Tz; 3] = [chrono_tz::UTC, chrono_tz::Europe::Berlin, chrono_tz::Asia::Kathmandu];

#[test]
fn random_funnels_answer_as_the_brute_force() {
    let (mut compared, mut converted) = (0, 0);
    for seed in 0..40 {
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
        let start = t("2024-03-30T00:00:00Z");
        let scattered = rng.random_range(0..300);
        let mut events = random::events(&mut rng, start, scattered);
        let first = events.iter().map(|e| e.timestamp).min();
        // Arrival order is not the events' order.
        events.shuffle(&mut rng);
        let columns = SiteEvents::build(&events);
        let goals = random::goals(&mut rng);
        for i in 0..40 {
            let request = random::funnel(&mut rng, "s", start);
            let Ok(funnel) = Funnel::parse(&request, None).and_then(|f| f.bind_goals(goals.clone())) else {
                continue;
            };
            let tz = *ZONES.choose(&mut rng).unwrap();
            let now = start + Duration::minutes(rng.random_range(0..6000));
            let range = funnel.query().resolve(now, tz, first);
            let expected = evaluate(&funnel, range, tz, &events).unwrap();
            let got = engine::funnel(&funnel, range, tz, &columns).unwrap();
            assert_eq!(got, expected, "seed {seed} funnel {i}: {request}");
            compared += 1;
            converted += usize::from(expected.steps.last().is_some_and(|s| s.visitors > 0));
        }
    }
    assert!(compared > 800, "only {compared} valid random funnels");
    assert!(
        converted > 100,
        "only {converted} funnels with visitors at the last step"
    );
}

#[test]
fn steps_count_in_order_within_a_visit() {
    let events = vec![
        // a: / then /pricing then signup, in one visit: all three steps.
        pv(1, "2024-01-01T10:00:00Z", "a", "/"),
        pv(2, "2024-01-01T10:05:00Z", "a", "/pricing"),
        event(3, "2024-01-01T10:06:00Z", Some("a"), "signup", "/pricing"),
        // b: /pricing before /, then signup: step 1 at 11:05, no /pricing after it.
        pv(4, "2024-01-01T11:00:00Z", "b", "/pricing"),
        pv(5, "2024-01-01T11:05:00Z", "b", "/"),
        event(6, "2024-01-01T11:06:00Z", Some("b"), "signup", "/"),
        // c: / in one visit, /pricing and signup in the next (over 30 min later).
        pv(7, "2024-01-01T12:00:00Z", "c", "/"),
        pv(8, "2024-01-01T13:00:00Z", "c", "/pricing"),
        event(9, "2024-01-01T13:01:00Z", Some("c"), "signup", "/pricing"),
        // d: / and /pricing; then, in a later visit, the whole funnel.
        pv(10, "2024-01-01T14:00:00Z", "d", "/"),
        pv(11, "2024-01-01T14:01:00Z", "d", "/pricing"),
        pv(12, "2024-01-01T16:00:00Z", "d", "/"),
        pv(13, "2024-01-01T16:01:00Z", "d", "/pricing"),
        event(14, "2024-01-01T16:02:00Z", Some("d"), "signup", "/pricing"),
        // No visitor: in no visit.
        event(15, "2024-01-01T17:00:00Z", None, "page_view", "/"),
    ];
    let goals = vec![Goal::event("Signup", "signup", None).unwrap()];
    let request = json!({"site_id": "s", "date_range": ["2024-01-01", "2024-01-01"],
                         "steps": [{"page": "/"}, {"name": "Pricing", "page": "/pricing*"}, {"goal": "Signup"}]});
    let f = Funnel::parse(&request, None).unwrap().bind_goals(goals).unwrap();
    let range = f.query().resolve(t("2024-01-02T00:00:00Z"), chrono_tz::UTC, None);
    let got = evaluate(&f, range, chrono_tz::UTC, &events).unwrap().to_json();
    assert_eq!(
        got["steps"],
        json!([
            {"name": "/", "visitors": 4, "conversion_rate": 100.0, "conversion_rate_step": 100.0,
             "dropoff": 0, "dropoff_percentage": 0.0},
            {"name": "Pricing", "visitors": 2, "conversion_rate": 50.0, "conversion_rate_step": 50.0,
             "dropoff": 2, "dropoff_percentage": 50.0},
            {"name": "Signup", "visitors": 2, "conversion_rate": 50.0, "conversion_rate_step": 100.0,
             "dropoff": 0, "dropoff_percentage": 0.0},
        ])
    );
    assert_eq!(got["visitors"], json!(4));
    // The same from the columns, events in any order.
    let mut shuffled = events.clone();
    shuffled.reverse();
    let columns = SiteEvents::build(&shuffled);
    assert_eq!(
        engine::funnel(&f, range, chrono_tz::UTC, &columns).unwrap().to_json(),
        got
    );
}

#[test]
fn bad_funnels_name_their_parts() {
    let errs = |v: serde_json::Value| match Funnel::parse(&v, None) {
        Ok(_) => panic!("should be invalid: {v}"),
        Err(e) => e.messages(),
    };
    assert_eq!(
        errs(json!({"site_id": "s", "date_range": "7d", "steps": [{"page": "/"}]})),
        ["steps: a funnel has 2 to 8 steps, found 1"]
    );
    let e = errs(
        json!({"site_id": "s", "date_range": "1d", "filters": [["is", "visit:nope", ["x"]]],
                        "steps": [{"page": "nope"}, {"goal": 3}, {"event": "x", "page": "/"}, {"event": "b", "prop": 1}],
                        "extra": 1}),
    );
    for expected in [
        "extra: unknown key \"extra\"",
        "date_range: unknown period \"1d\"; expected one of day, 7d, 28d, 30d, 91d, month, 6mo, 12mo, year, all",
        "filters[0][1]: unknown dimension \"visit:nope\"",
        "steps[0].page: a path pattern starts with \"/\", found \"nope\"",
        "steps[1].goal: expected a string, found a number",
        "steps[3].prop: expected {\"key\": \"value\"}",
    ] {
        assert!(e.iter().any(|x| x == expected), "missing {expected:?} in {e:#?}");
    }
    assert!(e.iter().any(|x| x.starts_with("steps[2]: a step is")), "{e:#?}");
    let f = Funnel::parse(
        &json!({"site_id": "s", "date_range": "7d", "steps": [{"goal": "Nope"}, {"page": "/"}]}),
        None,
    )
    .unwrap();
    assert_eq!(
        f.bind_goals(Vec::new()).unwrap_err().messages(),
        ["steps[0].goal: the goal \"Nope\" is not configured for this site"]
    );
}
