//! Goals by hand: patterns, conversions and both conversion rates.

use crate::goal::{pattern_regex, wildcard_matches};
use crate::reference::evaluate;
use crate::tests::{event, pv, query, t, with};
use crate::Goal;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

#[test]
fn wildcards_stay_in_a_segment_unless_doubled() {
    for (pattern, path, expected) in [
        ("/blog/*", "/blog/a", true),
        ("/blog/*", "/blog/", true),
        ("/blog/*", "/blog", false),
        ("/blog/*", "/blog/a/b", false),
        ("/blog/**", "/blog/a/b", true),
        ("/blog**", "/blog", true),
        ("/*/edit", "/post/edit", true),
        ("/*/edit", "/a/b/edit", false),
        ("/pricing", "/Pricing", false),
        ("/a.b", "/aXb", false),
        ("/(x)+", "/(x)+", true),
    ] {
        assert_eq!(wildcard_matches(pattern, path), expected, "{pattern} on {path}");
    }
}

#[test]
fn the_regex_of_a_pattern_matches_as_the_pattern() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let atoms = ["/", "a", "b", ".", "*", "**", "+"];
    let chars = ["/", "a", "b", ".", "+", "\n"];
    for _ in 0..20_000 {
        let pattern: String = (0..rand::Rng::random_range(&mut rng, 0..6))
            .map(|_| *atoms.choose(&mut rng).unwrap())
            .collect();
        let path: String = (0..rand::Rng::random_range(&mut rng, 0..7))
            .map(|_| *chars.choose(&mut rng).unwrap())
            .collect();
        let regex = regex::Regex::new(&pattern_regex(&pattern)).unwrap();
        assert_eq!(
            regex.is_match(&path),
            wildcard_matches(&pattern, &path),
            "{pattern:?} on {path:?}"
        );
    }
}

#[test]
fn goal_definitions_are_checked() {
    assert_eq!(Goal::page("", "/").unwrap_err().field, "name");
    assert_eq!(Goal::page("Home", "home").unwrap_err().field, "page");
    assert_eq!(Goal::page("Home", "/***").unwrap_err().field, "page");
    assert_eq!(Goal::event("Buy", " ", None).unwrap_err().field, "event");
    assert_eq!(
        Goal::event("Buy", "buy", Some(("", "x"))).unwrap_err().field,
        "prop_key"
    );
    assert_eq!(Goal::event(&"x".repeat(300), "buy", None).unwrap_err().field, "name");
}

#[test]
fn conversions_and_rates_by_hand() {
    let events = vec![
        // a: converts on Pricing twice and on Pro purchase.
        pv(1, "2024-01-01T10:00:00Z", "a", "/"),
        pv(2, "2024-01-01T10:01:00Z", "a", "/pricing"),
        pv(3, "2024-01-01T10:02:00Z", "a", "/pricing/team"),
        with(
            event(4, "2024-01-01T10:03:00Z", Some("a"), "purchase", "/pricing"),
            |e| {
                e.props.insert("plan".into(), "pro".into());
            },
        ),
        // b: Pricing once, a purchase without the plan (Any purchase only).
        with(pv(5, "2024-01-01T11:00:00Z", "b", "/pricing"), |e| {
            e.source = "Google".into()
        }),
        event(6, "2024-01-01T11:01:00Z", Some("b"), "purchase", "/pricing"),
        // c, d: no conversion.
        with(pv(7, "2024-01-01T12:00:00Z", "c", "/"), |e| e.source = "Google".into()),
        pv(8, "2024-01-01T13:00:00Z", "d", "/blog"),
    ];
    let goals = vec![
        Goal::page("Pricing", "/pricing*").unwrap(),
        Goal::event("Any purchase", "purchase", None).unwrap(),
        Goal::event("Pro purchase", "purchase", Some(("plan", "pro"))).unwrap(),
        Goal::page("Never", "/nowhere").unwrap(),
    ];
    let range = |q: &crate::Query| q.resolve(t("2024-01-02T00:00:00Z"), chrono_tz::UTC, None);
    let run = |v: serde_json::Value| {
        let q = query(v).bind_goals(goals.clone()).unwrap();
        evaluate(&q, range(&q), chrono_tz::UTC, &events).unwrap().to_json()["results"].clone()
    };
    // Every goal with conversions is a row; the rate is of all 4 visitors.
    assert_eq!(
        run(
            json!({"site_id": "s", "metrics": ["visitors", "events", "conversion_rate"], "date_range": ["2024-01-01", "2024-01-01"],
                   "dimensions": ["event:goal"]})
        ),
        json!([
            {"dimensions": ["Any purchase"], "metrics": [2, 2, 50.0]},
            {"dimensions": ["Pricing"], "metrics": [2, 2, 50.0]},
            {"dimensions": ["Pro purchase"], "metrics": [1, 1, 25.0]},
        ])
    );
    // By source: group rates divide by the source's visitors (Google: b, c).
    assert_eq!(
        run(
            json!({"site_id": "s", "metrics": ["visitors", "conversion_rate", "group_conversion_rate"],
                   "date_range": ["2024-01-01", "2024-01-01"], "dimensions": ["visit:source"],
                   "filters": [["is", "event:goal", ["Pricing"]]]})
        ),
        json!([
            {"dimensions": ["", ], "metrics": [1, 25.0, 50.0]},
            {"dimensions": ["Google"], "metrics": [1, 25.0, 50.0]},
        ])
    );
    // is_not keeps the events of no named goal: c's and d's pageviews,
    // a's first and a's /pricing/team (`*` stays in its segment).
    assert_eq!(
        run(
            json!({"site_id": "s", "metrics": ["visitors", "events"], "date_range": ["2024-01-01", "2024-01-01"],
                   "filters": [["is_not", "event:goal", ["Pricing", "Any purchase"]]]})
        ),
        json!([{"dimensions": [], "metrics": [3, 4]}])
    );
    // Other filters stay in the conversion rate's base: of c and b (Google), b converted.
    assert_eq!(
        run(
            json!({"site_id": "s", "metrics": ["conversion_rate"], "date_range": ["2024-01-01", "2024-01-01"],
                   "filters": [["is", "visit:source", ["Google"]], ["contains", "event:goal", ["purchase"]]]})
        ),
        json!([{"dimensions": [], "metrics": [50.0]}])
    );
}

#[test]
fn revenue_adds_up_in_the_goal_currency() {
    use crate::goal::parse_amount;
    assert_eq!(parse_amount("12.5"), Some(12_500_000));
    assert_eq!(parse_amount(" -0.0000019 "), Some(-1));
    assert_eq!(parse_amount("3"), Some(3_000_000));
    for bad in ["", "1e3", ".5", "1.2.3", "€5", "--1"] {
        assert_eq!(parse_amount(bad), None, "{bad}");
    }
    let buy = |id: u128, visitor: &str, amount: &str, currency: &str, plan: &str| {
        with(
            event(id, "2024-01-01T10:00:00Z", Some(visitor), "purchase", "/checkout"),
            |e| {
                e.props.insert("revenue_amount".into(), amount.into());
                e.props.insert("revenue_currency".into(), currency.into());
                e.props.insert("plan".into(), plan.into());
            },
        )
    };
    let events = vec![
        buy(1, "a", "10.5", "EUR", "pro"),
        buy(2, "b", "4", "EUR", "free"),
        // Another currency than the goal's, and an amount that is not one: no revenue.
        buy(3, "c", "99", "USD", "pro"),
        buy(4, "d", "lots", "EUR", "pro"),
    ];
    let goals = vec![
        Goal::event("Purchase", "purchase", None)
            .unwrap()
            .with_currency("eur")
            .unwrap(),
        Goal::event("Pro", "purchase", Some(("plan", "pro")))
            .unwrap()
            .with_currency("EUR")
            .unwrap(),
        Goal::event("In dollars", "purchase", None)
            .unwrap()
            .with_currency("USD")
            .unwrap(),
    ];
    assert_eq!(
        Goal::page("P", "/").unwrap().with_currency("EUR").unwrap_err().field,
        "currency"
    );
    assert_eq!(
        Goal::event("E", "e", None)
            .unwrap()
            .with_currency("EURO")
            .unwrap_err()
            .field,
        "currency"
    );
    let q = |v: serde_json::Value| {
        let q = query(v).bind_goals(goals.clone()).unwrap();
        let range = q.resolve(t("2024-01-02T00:00:00Z"), chrono_tz::UTC, None);
        evaluate(&q, range, chrono_tz::UTC, &events).unwrap().to_json()["results"].clone()
    };
    assert_eq!(
        q(
            json!({"site_id": "s", "metrics": ["events", "total_revenue", "average_revenue"],
                 "date_range": ["2024-01-01", "2024-01-01"], "dimensions": ["event:goal"]})
        ),
        json!([
            {"dimensions": ["In dollars"], "metrics": [4, {"value": 99, "currency": "USD"}, {"value": 99, "currency": "USD"}]},
            {"dimensions": ["Purchase"], "metrics": [4, {"value": 14.5, "currency": "EUR"}, {"value": 7.25, "currency": "EUR"}]},
            {"dimensions": ["Pro"], "metrics": [3, {"value": 10.5, "currency": "EUR"}, {"value": 10.5, "currency": "EUR"}]},
        ])
    );
    // Without the goal dimension every revenue goal is in play: two
    // currencies, so no single figure.
    assert_eq!(
        q(
            json!({"site_id": "s", "metrics": ["total_revenue"], "date_range": ["2024-01-01", "2024-01-01"],
                 "filters": [["is", "event:goal", ["Purchase"]]]})
        ),
        json!([{"dimensions": [], "metrics": [null]}])
    );
}
