use serde_json::json;

use super::{errors, query};
use crate::dimension::{Dimension, EventDimension, TimeDimension, VisitDimension};
use crate::filter::{Filter, FilterDimension, Operator};
use crate::request::{Direction, OrderBy, OrderKey, Pagination};
use crate::time::{DateRangeSpec, NamedPeriod};
use crate::{Metric, Query};

#[test]
fn minimal_query_gets_documented_defaults() {
    let q = query(json!({"site_id": "example.com", "metrics": ["visitors"], "date_range": "7d"}));
    assert_eq!(q.site_id(), "example.com");
    assert_eq!(q.metrics(), &[Metric::Visitors]);
    assert_eq!(q.date_range(), DateRangeSpec::Named(NamedPeriod::LastDays(7)));
    assert!(q.dimensions().is_empty());
    assert!(q.filters().is_empty());
    // Default order: the first metric, descending.
    assert_eq!(
        q.order_by(),
        &[OrderBy {
            key: OrderKey::Metric(Metric::Visitors),
            direction: Direction::Desc
        }]
    );
    assert_eq!(
        q.pagination(),
        Pagination {
            limit: 10_000,
            offset: 0
        }
    );
    assert_eq!(q.include(), Default::default());
    assert_eq!(
        q.to_json(),
        json!({
            "site_id": "example.com",
            "metrics": ["visitors"],
            "date_range": "7d",
            "filters": [],
            "dimensions": [],
            "order_by": [["visitors", "desc"]],
            "include": {},
            "pagination": {"limit": 10000, "offset": 0},
        })
    );
}

#[test]
fn default_order_puts_the_time_dimension_first() {
    let q = query(json!({
        "site_id": "s", "metrics": ["pageviews", "visitors"], "date_range": "day",
        "dimensions": ["visit:source", "time:hour"],
    }));
    assert_eq!(
        q.order_by(),
        &[
            OrderBy {
                key: OrderKey::Dimension(Dimension::Time(TimeDimension::Hour)),
                direction: Direction::Asc
            },
            OrderBy {
                key: OrderKey::Metric(Metric::Pageviews),
                direction: Direction::Desc
            },
        ]
    );
}

#[test]
fn every_named_period_and_explicit_ranges_parse() {
    for name in ["day", "7d", "28d", "30d", "91d", "month", "6mo", "12mo", "year", "all"] {
        let q = query(json!({"site_id": "s", "metrics": ["visits"], "date_range": name}));
        assert_eq!(q.date_range().to_json(), json!(name));
    }
    let q = query(json!({"site_id": "s", "metrics": ["visits"], "date_range": ["2024-01-01", "2024-01-31"]}));
    assert!(matches!(q.date_range(), DateRangeSpec::Dates(..)));
    let q = query(json!({
        "site_id": "s", "metrics": ["visits"],
        "date_range": ["2024-01-01T12:00:00+02:00", "2024-01-01T15:59:59+02:00"],
    }));
    assert!(matches!(q.date_range(), DateRangeSpec::DateTimes(..)));
    // A single day is a valid custom range.
    query(json!({"site_id": "s", "metrics": ["visits"], "date_range": ["2024-01-01", "2024-01-01"]}));
}

#[test]
fn every_bad_part_is_named() {
    let errs = errors(json!({
        "site_id": "s",
        "metrics": ["visitors", "scroll_depth", "foo", "visitors"],
        "date_range": "1d",
        "dimensions": ["visit:city", "visit:region", "visit:nope", "event:props:"],
        "filters": [
            ["is", "visit:city", ["4347778"]],
            ["is", "time:day", ["2024-01-01"]],
            ["matches", "event:page", ["^/ok$", "(unclosed"]],
            ["has_done", ["is", "event:name", ["Signup"]]],
            ["equals", "event:page", ["/"]],
            ["is", "event:page", "/"],
            ["is", "event:page", []],
            ["is", "event:page", ["/", 3]],
            ["contains", "event:page", ["/"], {"case_sensitive": "no", "fuzzy": true}],
            ["is", "segment", ["1"]],
        ],
        "include": {"total_rows": true, "foo": true, "time_labels": 1},
        "pagination": {"limit": 0, "offset": -1, "page": 2},
        "interval": "date",
    }));
    let expected = [
        "interval: unknown key \"interval\"",
        "metrics[1]: unsupported metric \"scroll_depth\"",
        "metrics[2]: unknown metric \"foo\"",
        "metrics[3]: duplicate metric \"visitors\"",
        "date_range: unknown period \"1d\"; expected one of day, 7d, 28d, 30d, 91d, month, 6mo, 12mo, year, all",
        "dimensions[0]: unsupported dimension \"visit:city\"",
        "dimensions[1]: unsupported dimension \"visit:region\"",
        "dimensions[2]: unknown dimension \"visit:nope\"",
        "dimensions[3]: custom property dimension \"event:props:\" has an empty key",
        "filters[0][1]: unsupported dimension \"visit:city\"",
        "filters[1][1]: time dimension \"time:day\" cannot be filtered on: set date_range instead",
        "filters[3][0]: unsupported filter operator \"has_done\"",
        "filters[4][0]: unknown filter operator \"equals\"",
        "filters[5][2]: expected a list of clauses, found a string",
        "filters[6][2]: the list of clauses must not be empty",
        "filters[7][2][1]: a clause must be a string, found a number",
        "filters[8][3].case_sensitive: expected a boolean, found a string",
        "filters[8][3].fuzzy: unknown filter modifier \"fuzzy\"",
        "filters[9][1]: unsupported filter dimension \"segment\"",
        "include.foo: unknown include option \"foo\"",
        "include.time_labels: expected a boolean, found a number",
        "pagination.limit: expected an integer from 1 to 10000, found 0",
        "pagination.offset: expected a non-negative integer, found -1",
        "pagination.page: unknown pagination option \"page\"",
    ];
    for e in expected {
        assert!(errs.iter().any(|x| x == e), "missing error {e:?} in {errs:#?}");
    }
    // The bad regex is reported naming its filter and clause.
    assert!(
        errs.iter()
            .any(|x| x.starts_with("filters[2][2][1]: invalid regular expression \"(unclosed\"")),
        "{errs:#?}"
    );
    assert_eq!(errs.len(), expected.len() + 1, "{errs:#?}");
}

#[test]
fn required_keys_and_types() {
    assert_eq!(
        errors(json!({})),
        [
            "site_id: is required",
            "metrics: is required",
            "date_range: is required"
        ]
    );
    assert_eq!(errors(json!([1])), ["the query must be a JSON object, found an array"]);
    assert_eq!(
        errors(json!({"site_id": "", "metrics": [], "date_range": "day"})),
        ["site_id: must not be empty", "metrics: must not be empty"]
    );
    assert_eq!(
        errors(json!({"site_id": 1, "metrics": "visitors", "date_range": 7})),
        [
            "site_id: expected a string, found a number",
            "metrics: expected an array of metric names, found a string",
            "date_range: expected a period name or a two-element array, found a number",
        ]
    );
    assert_eq!(
        errors(json!({"site_id": "s", "metrics": ["visits"], "date_range": "day", "dimensions": null, "filters": {}})),
        [
            "dimensions: expected an array of dimension names, found null",
            "filters: expected an array, found an object"
        ]
    );
}

#[test]
fn date_range_errors() {
    let bad = |range: serde_json::Value| errors(json!({"site_id": "s", "metrics": ["visits"], "date_range": range}));
    assert_eq!(
        bad(json!(["2024-02-01", "2024-01-01"])),
        ["date_range: the start date is after the end date"]
    );
    assert_eq!(
        bad(json!(["2024-01-01T12:00:00Z", "2024-01-01T11:00:00Z"])),
        ["date_range: the start is after the end"]
    );
    let mixed = bad(json!(["2024-01-01", "2024-01-01T11:00:00Z"]));
    assert!(mixed[0].starts_with("date_range: expected two dates") && mixed[0].ends_with("one date and one datetime"));
    // No offset, a non-existent day, a one-digit month: each named by position.
    let bad_parts = bad(json!(["2024-01-01T10:00:00", "2024-02-30"]));
    assert!(
        bad_parts[0].ends_with("date_range[0] \"2024-01-01T10:00:00\", date_range[1] \"2024-02-30\""),
        "{bad_parts:?}"
    );
    let short = bad(json!(["2024-1-01", "2024-01-02"]));
    assert!(short[0].ends_with("date_range[0] \"2024-1-01\""), "{short:?}");
    assert_eq!(
        bad(json!(["2024-01-01"])),
        ["date_range: expected a period name or a two-element array, found an array"]
    );
    assert_eq!(
        bad(json!([1, 2])),
        ["date_range: expected two ISO 8601 dates or datetimes as strings"]
    );
}

#[test]
fn cross_part_rules() {
    // percentage needs dimensions.
    assert_eq!(
        errors(json!({"site_id": "s", "metrics": ["visitors", "percentage"], "date_range": "day"})),
        ["metrics[1]: metric \"percentage\" requires non-empty dimensions"]
    );
    query(json!({"site_id": "s", "metrics": ["percentage"], "date_range": "day", "dimensions": ["visit:os"]}));
    // Session metrics cannot be mixed with event dimensions, but can with visit and time dimensions and event
    // filters.
    assert_eq!(
        errors(json!({
            "site_id": "s", "metrics": ["visitors", "bounce_rate", "visit_duration"], "date_range": "day",
            "dimensions": ["time:day", "event:props:plan"],
        })),
        [
            "metrics[1]: session metric \"bounce_rate\" cannot be mixed with event dimension \"event:props:plan\"",
            "metrics[2]: session metric \"visit_duration\" cannot be mixed with event dimension \"event:props:plan\"",
        ]
    );
    query(json!({
        "site_id": "s", "metrics": ["bounce_rate", "views_per_visit"], "date_range": "day",
        "dimensions": ["time:day", "visit:entry_page"], "filters": [["is", "event:page", ["/"]]],
    }));
    // time_labels needs a time dimension; only one time dimension.
    assert_eq!(
        errors(json!({"site_id": "s", "metrics": ["visits"], "date_range": "day", "include": {"time_labels": true}})),
        ["include.time_labels: requires a time dimension"]
    );
    assert_eq!(
        errors(json!({"site_id": "s", "metrics": ["visits"], "date_range": "day", "dimensions": ["time", "time:day"]})),
        ["dimensions[1]: only one time dimension is allowed, \"time:day\" is a second"]
    );
    assert_eq!(
        errors(json!({"site_id": "s", "metrics": ["visits"], "date_range": "day",
                    "dimensions": ["event:page", "event:page"]})),
        ["dimensions[1]: duplicate dimension \"event:page\""]
    );
}

#[test]
fn order_by_must_name_the_query_s_metrics_and_dimensions() {
    let errs = errors(json!({
        "site_id": "s", "metrics": ["visitors"], "date_range": "day", "dimensions": ["visit:os"],
        "order_by": [["visitors", "up"], ["pageviews", "asc"], ["visit:browser", "desc"], "x", ["visit:os", "asc"],
                     ["visit:os", "desc"]],
    }));
    assert_eq!(
        errs,
        [
            "order_by[0][1]: expected \"asc\" or \"desc\", found \"up\"",
            "order_by[1][0]: \"pageviews\" is not among the query's metrics or dimensions",
            "order_by[2][0]: \"visit:browser\" is not among the query's metrics or dimensions",
            "order_by[3]: expected a [metric_or_dimension, \"asc\"|\"desc\"] pair",
            "order_by[5][0]: \"visit:os\" is ordered on twice",
        ]
    );
    let q = query(json!({
        "site_id": "s", "metrics": ["visitors"], "date_range": "day", "dimensions": ["visit:os"],
        "order_by": [["visit:os", "asc"]],
    }));
    assert_eq!(
        q.order_by(),
        &[OrderBy {
            key: OrderKey::Dimension(Dimension::Visit(VisitDimension::Os)),
            direction: Direction::Asc
        }]
    );
}

#[test]
fn filter_shapes_and_limits() {
    fn with_filters(filters: serde_json::Value) -> serde_json::Value {
        json!({"site_id": "s", "metrics": ["visits"], "date_range": "day", "filters": filters})
    }
    assert_eq!(
        errors(with_filters(json!([["and", []]]))),
        ["filters[0][1]: \"and\" needs at least one filter"]
    );
    assert_eq!(
        errors(with_filters(json!([["or", [["is", "event:page", ["/"]]], "extra"]]))),
        ["filters[0]: \"or\" takes exactly one list of filters: [\"or\", [...]]"]
    );
    assert_eq!(
        errors(with_filters(json!([[
            "not",
            ["is", "event:page", ["/"]],
            ["is", "event:page", ["/"]]
        ]]))),
        ["filters[0]: \"not\" takes exactly one filter: [\"not\", filter]"]
    );
    assert_eq!(
        errors(with_filters(json!([[
            "not",
            ["or", [["is", "event:page", ["/"]], ["is", "visit:town", ["x"]]]]
        ]]))),
        ["filters[0][1][1][1][1]: unknown dimension \"visit:town\""]
    );
    assert_eq!(
        errors(with_filters(json!(["is"]))),
        ["filters[0]: a filter must be an array, found a string"]
    );
    assert_eq!(
        errors(with_filters(json!([[]]))),
        ["filters[0]: a filter must not be empty"]
    );
    assert_eq!(
        errors(with_filters(json!([["is", "event:page"]]))),
        ["filters[0]: \"is\" takes a dimension, a list of clauses and optional modifiers"]
    );

    // Nesting: 16 levels are fine, 17 are not.
    let mut nested = json!(["is", "event:page", ["/"]]);
    for _ in 0..15 {
        nested = json!(["not", nested]);
    }
    query(with_filters(json!([nested.clone()])));
    let deeper = json!(["not", nested]);
    let errs = errors(with_filters(json!([deeper])));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].ends_with(": filters are nested deeper than 16 levels"),
        "{errs:?}"
    );
    assert!(errs[0].starts_with("filters[0][1][1]"), "{errs:?}");

    // Size: more than 256 nodes in all is refused, once.
    let many: Vec<serde_json::Value> = (0..300)
        .map(|i| json!(["is", "event:page", [format!("/{i}")]]))
        .collect();
    assert_eq!(
        errors(with_filters(json!(many))),
        ["filters[256]: the query has more than 256 filters"]
    );
    let clauses: Vec<String> = (0..10_001).map(|i| format!("/{i}")).collect();
    assert_eq!(
        errors(with_filters(json!([["is", "event:page", clauses]]))),
        ["filters[0][2]: the query's filters have more than 10000 clauses"]
    );
}

#[test]
fn filters_are_typed() {
    let q = query(json!({
        "site_id": "s", "metrics": ["visits"], "date_range": "day",
        "filters": [
            ["contains", "event:props:plan", ["Pro"], {"case_sensitive": false}],
            ["or", [["is_not", "visit:country", ["DE", "FR"]], ["not", ["matches", "event:page", ["^/a"]]]]],
        ],
    }));
    let Filter::Condition(c) = &q.filters()[0] else {
        panic!("a condition")
    };
    assert_eq!(c.op(), Operator::Contains);
    assert_eq!(
        c.dimension(),
        &FilterDimension::Event(EventDimension::Prop("plan".into()))
    );
    assert_eq!(c.clauses(), ["Pro"]);
    assert!(!c.case_sensitive());
    let Filter::Or(children) = &q.filters()[1] else {
        panic!("an or")
    };
    assert_eq!(children.len(), 2);
    assert!(matches!(&children[1], Filter::Not(inner) if matches!(**inner, Filter::Condition(_))));
    assert_eq!(q.filters()[1].conditions().len(), 2);
}

#[test]
fn normalized_json_round_trips() {
    let request = json!({
        "site_id": "example.com",
        "metrics": ["visitors", "percentage", "events"],
        "date_range": ["2024-01-01T12:00:00+02:00", "2024-01-01T15:59:59+02:00"],
        "dimensions": ["time:week", "visit:utm_source", "event:props:plan"],
        "filters": [
            ["is", "visit:country", ["DE"], {"case_sensitive": true}],
            ["and", [["contains", "event:page", ["blog"], {"case_sensitive": false}],
                     ["not", ["matches_not", "event:hostname", ["^www\\."]]]]],
        ],
        "order_by": [["events", "asc"], ["visit:utm_source", "desc"]],
        "include": {"total_rows": true, "time_labels": true, "imports": false},
        "pagination": {"offset": 20, "limit": 10},
    });
    let q = query(request);
    let normalized = q.to_json();
    assert_eq!(
        normalized,
        json!({
            "site_id": "example.com",
            "metrics": ["visitors", "percentage", "events"],
            "date_range": ["2024-01-01T12:00:00+02:00", "2024-01-01T15:59:59+02:00"],
            "filters": [
                ["is", "visit:country", ["DE"]],
                ["and", [["contains", "event:page", ["blog"], {"case_sensitive": false}],
                         ["not", ["matches_not", "event:hostname", ["^www\\."]]]]],
            ],
            "dimensions": ["time:week", "visit:utm_source", "event:props:plan"],
            "order_by": [["events", "asc"], ["visit:utm_source", "desc"]],
            "include": {"time_labels": true, "total_rows": true},
            "pagination": {"limit": 10, "offset": 20},
        })
    );
    assert_eq!(Query::parse(&normalized).unwrap(), q);
    assert_eq!(Query::parse(&normalized).unwrap().to_json(), normalized);
}

#[test]
fn goal_metrics_need_a_goal_and_goal_filters_known_goals() {
    use crate::Goal;
    let errs = errors(
        json!({"site_id": "s", "metrics": ["visitors", "conversion_rate", "group_conversion_rate"],
                              "date_range": "7d"}),
    );
    assert!(
        errs.contains(
            &"metrics[1]: metric \"conversion_rate\" requires an \"event:goal\" filter or dimension".to_owned()
        ),
        "{errs:?}"
    );
    assert!(
        errs.contains(&"metrics[2]: metric \"group_conversion_rate\" requires non-empty dimensions".to_owned()),
        "{errs:?}"
    );
    // A goal dimension is enough for both; session metrics still cannot
    // be mixed with it.
    query(
        json!({"site_id": "s", "metrics": ["conversion_rate", "group_conversion_rate"], "date_range": "7d",
                 "dimensions": ["event:goal"]}),
    );
    let errs = errors(json!({"site_id": "s", "metrics": ["bounce_rate"], "date_range": "7d",
                              "dimensions": ["event:goal"]}));
    assert_eq!(
        errs,
        ["metrics[0]: session metric \"bounce_rate\" cannot be mixed with event dimension \"event:goal\""]
    );

    let goals = vec![
        Goal::page("Pricing", "/pricing*").unwrap(),
        Goal::event("Signup", "signup", None).unwrap(),
    ];
    let q = query(
        json!({"site_id": "s", "metrics": ["conversion_rate"], "date_range": "7d",
                         "filters": [["is", "visit:source", ["Google"]],
                                     ["or", [["is", "event:goal", ["Pricing"]],
                                             ["not", ["is_not", "event:goal", ["Signup", "signup", "Nope"]]]]],
                                     ["is", "event:goal", ["pricing"], {"case_sensitive": false}],
                                     ["contains", "event:goal", ["Nothing matches, that is fine"]]]}),
    );
    let errs = q.clone().bind_goals(goals.clone()).unwrap_err().messages();
    assert_eq!(
        errs,
        [
            "filters[1][1][1][1][2][1]: the goal \"signup\" is not configured for this site",
            "filters[1][1][1][1][2][2]: the goal \"Nope\" is not configured for this site",
        ]
    );
    // Known names bind; the goals then belong to the query.
    let q = query(json!({"site_id": "s", "metrics": ["visitors"], "date_range": "7d",
                         "filters": [["is", "event:goal", ["Signup", "pricing"], {"case_sensitive": false}]]}));
    assert_eq!(q.bind_goals(goals.clone()).unwrap().goals(), &goals[..]);
}
