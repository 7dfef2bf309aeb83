//! Hand-worked examples of the reference semantics. Each expected value is derived in the comments.

use chrono_tz::Tz;
use chrono_tz::{Asia::Kathmandu, Europe::Berlin, UTC};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};

use super::{event, pv, query, t, with};
use crate::reference::{evaluate, sessionize, EvalError, RawEvent, Response};

/// Runs a query for a site in `tz` at instant `now`; `all` starts at the earliest event.
fn run_at(request: Value, tz: Tz, now: &str, events: &[RawEvent]) -> Response {
    let q = query(request);
    let first = events.iter().map(|e| e.timestamp).min();
    let range = q.resolve(t(now), tz, first);
    evaluate(&q, range, tz, events).unwrap()
}

/// Runs a query over 1 May 2024 in UTC with the given metrics and extra keys; returns `results`.
fn results(metrics: &[&str], extra: Value, events: &[RawEvent]) -> Value {
    let mut request = json!({"site_id": "s", "metrics": metrics, "date_range": ["2024-05-01", "2024-05-01"]});
    if let (Value::Object(r), Value::Object(e)) = (&mut request, extra) {
        r.extend(e);
    }
    run_at(request, UTC, "2024-05-02T00:00:00Z", events).to_json()["results"].clone()
}

/// The metrics of an aggregate (no dimensions) query.
fn aggregate(metrics: &[&str], filters: Value, events: &[RawEvent]) -> Value {
    results(metrics, json!({"filters": filters}), events)[0]["metrics"].clone()
}

const ALL_VISIT_METRICS: [&str; 7] = [
    "visitors",
    "visits",
    "pageviews",
    "events",
    "bounce_rate",
    "visit_duration",
    "views_per_visit",
];

#[test]
fn a_31_minute_gap_splits_a_visit_and_29_minutes_joins() {
    let events = [
        pv(1, "2024-05-01T10:00:00Z", "a", "/"),
        pv(2, "2024-05-01T10:29:00Z", "a", "/b"), // 29 min later: same visit
        pv(3, "2024-05-01T11:00:00Z", "a", "/c"), // 31 min after 10:29: a new visit
    ];
    // Visit 1 = {1, 2}: two pageviews, not bounced, 29 * 60 = 1740 s. Visit 2 = {3}: one pageview, bounced, 0 s.
    // visitors 1, visits 2, pageviews 3, events 3, bounce rate 1/2 = 50, duration (1740 + 0) / 2 = 870,
    // views per visit 3 / 2 = 1.5.
    assert_eq!(
        aggregate(&ALL_VISIT_METRICS, json!([]), &events),
        json!([1, 2, 3, 3, 50, 870, 1.5])
    );

    let sessions = sessionize(&events).unwrap();
    assert_eq!(sessions.visits.len(), 2);
    assert_eq!(sessions.visits[0].events, [0, 1]);
    assert_eq!(sessions.visits[0].entry_page.as_deref(), Some("/"));
    assert_eq!(sessions.visits[0].exit_page.as_deref(), Some("/b"));
    assert_eq!(sessions.visit_of, [Some(0), Some(0), Some(1)]);

    // Exactly 30 minutes still joins.
    let events = [
        pv(1, "2024-05-01T10:00:00Z", "a", "/"),
        pv(2, "2024-05-01T10:30:00Z", "a", "/"),
    ];
    assert_eq!(
        aggregate(&["visits", "visit_duration"], json!([]), &events),
        json!([1, 1800])
    );
}

#[test]
fn visits_are_built_over_all_events_not_only_those_in_range() {
    // 23:50 on 30 April and 00:10 on 1 May are one visit (20 minutes apart) of 1200 s that started on 30 April.
    // Over 1 May it has one kept event; its entry page (/april) and duration come from the whole visit, and it did
    // not bounce (two pageviews).
    let events = [
        pv(1, "2024-04-30T23:50:00Z", "a", "/april"),
        pv(2, "2024-05-01T00:10:00Z", "a", "/may"),
    ];
    assert_eq!(
        aggregate(
            &["visits", "pageviews", "bounce_rate", "visit_duration"],
            json!([]),
            &events
        ),
        json!([1, 1, 0, 1200])
    );
    assert_eq!(
        results(&["visits"], json!({"dimensions": ["visit:entry_page"]}), &events),
        json!([{"metrics": [1], "dimensions": ["/april"]}])
    );
}

fn late_arrival_events() -> Vec<RawEvent> {
    vec![
        pv(10, "2024-05-01T09:00:00Z", "a", "/"),
        with(event(11, "2024-05-01T09:05:00Z", Some("a"), "Signup", "/"), |e| {
            e.props.insert("plan".into(), "pro".into());
        }),
        with(pv(20, "2024-05-01T10:00:00Z", "b", "/x"), |e| {
            e.source = "Google".into()
        }),
        pv(21, "2024-05-01T10:40:00Z", "b", "/y"),
        // The late event: received after the others, it lies between b's two pageviews and joins them.
        event(22, "2024-05-01T10:20:00Z", Some("b"), "Signup", "/x"),
        with(pv(30, "2024-05-01T12:00:00Z", "c", "/"), |e| e.source = "Google".into()),
        pv(31, "2024-05-01T13:00:00Z", "c", "/pricing"),
        event(40, "2024-05-01T14:00:00Z", None, "page_view", "/"),
        // Same instant as 31: the event id orders them.
        pv(32, "2024-05-01T13:00:00Z", "c", "/about"),
    ]
}

#[test]
fn a_late_arriving_event_in_the_middle_of_the_input_gives_the_in_order_answer() {
    let events = late_arrival_events();
    // Visits: a {10, 11}: 1 pageview + 1 custom event, not bounced, 300 s.
    //         b {20, 22, 21}: gaps 20 and 20 minutes, one visit, 2 pageviews, not bounced, 2400 s.
    //         c {30}: bounced, 0 s; c {31, 32}: 60 minutes later, 2 pageviews, not bounced, 0 s (same instant).
    //         event 40 has no visitor: a pageview and an event, no visit.
    // visitors 3, visits 4, pageviews 1 + 2 + 1 + 2 + 1 = 7, events 9, bounce 1/4 = 25,
    // duration (300 + 2400 + 0 + 0) / 4 = 675, views per visit (7 - 1 without a visit) / 4 = 1.5.
    let expected = json!([3, 4, 7, 9, 25, 675, 1.5]);
    assert_eq!(aggregate(&ALL_VISIT_METRICS, json!([]), &events), expected);

    // Without the late event b has two bounced visits: visits 5, bounce 3/5 = 60, duration 300 / 5 = 60.
    let without: Vec<RawEvent> = events.iter().filter(|e| e.event_id != 22).cloned().collect();
    assert_eq!(
        aggregate(&ALL_VISIT_METRICS, json!([]), &without),
        json!([3, 5, 7, 8, 60, 60, 1.2])
    );

    // Exit pages: a's visit and c's first visit exit on "/"; b's on /y; c's second visit: 31 and 32 share a
    // timestamp, 32 has the larger id so it is last: /about.
    let by_exit = results(&["visits"], json!({"dimensions": ["visit:exit_page"]}), &events);
    assert_eq!(
        by_exit,
        json!([
            {"metrics": [2], "dimensions": ["/"]},
            {"metrics": [1], "dimensions": ["/about"]},
            {"metrics": [1], "dimensions": ["/y"]},
        ])
    );

    // Any input order gives the same responses, for several queries.
    let requests = [
        json!({"metrics": ALL_VISIT_METRICS}),
        json!({"metrics": ["visits", "bounce_rate"], "dimensions": ["visit:entry_page", "visit:source"]}),
        json!({"metrics": ["events", "visitors"], "dimensions": ["event:props:plan", "time:hour"]}),
        json!({"metrics": ["visitors", "percentage"], "dimensions": ["visit:exit_page"],
               "filters": [["is_not", "visit:source", ["Google"]]]}),
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for extra in requests {
        let in_order = results(&["visitors"], extra.clone(), &events);
        for _ in 0..20 {
            let mut shuffled = events.clone();
            shuffled.shuffle(&mut rng);
            assert_eq!(results(&["visitors"], extra.clone(), &shuffled), in_order, "{extra}");
        }
    }
}

fn two_visits() -> Vec<RawEvent> {
    vec![
        // a: /home then /pricing.
        pv(1, "2024-05-01T10:00:00Z", "a", "/home"),
        pv(2, "2024-05-01T10:05:00Z", "a", "/pricing"),
        // b: /home only.
        pv(3, "2024-05-01T11:00:00Z", "b", "/home"),
    ]
}

#[test]
fn event_filters_keep_events_visit_filters_keep_whole_visits() {
    let events = two_visits();
    let metrics = ["visitors", "visits", "pageviews", "bounce_rate"];
    // Event filter: only event 2 is kept: 1 visitor, 1 visit (a's, not bounced), 1 pageview.
    assert_eq!(
        aggregate(&metrics, json!([["is", "event:page", ["/pricing"]]]), &events),
        json!([1, 1, 1, 0])
    );
    // Visit filter on the exit page: a's whole visit: 1 visitor, 1 visit, 2 pageviews.
    assert_eq!(
        aggregate(&metrics, json!([["is", "visit:exit_page", ["/pricing"]]]), &events),
        json!([1, 1, 2, 0])
    );
    // Both visits entered on /home: everything, 2 visitors, 3 pageviews, b bounced: 1/2 = 50.
    assert_eq!(
        aggregate(&metrics, json!([["is", "visit:entry_page", ["/home"]]]), &events),
        json!([2, 2, 3, 50])
    );
    // Event filter on /home: events 1 and 3; bounce is a property of the whole visit, so a still did not bounce.
    assert_eq!(
        aggregate(&metrics, json!([["is", "event:page", ["/home"]]]), &events),
        json!([2, 2, 2, 50])
    );
    // Both kinds together: the visits that exited on /pricing, their /home events: event 1 only.
    assert_eq!(
        aggregate(
            &metrics,
            json!([["is", "visit:exit_page", ["/pricing"]], ["is", "event:page", ["/home"]]]),
            &events
        ),
        json!([1, 1, 1, 0])
    );
}

fn countries() -> Vec<RawEvent> {
    let de = |e: RawEvent| with(e, |e| e.country = "DE".into());
    let fr = |e: RawEvent| with(e, |e| e.country = "FR".into());
    vec![
        de(pv(1, "2024-05-01T10:00:00Z", "v1", "/blog/a")),
        pv(2, "2024-05-01T10:01:00Z", "v1", "/about"), // the visit's country is its first event's: DE
        fr(pv(3, "2024-05-01T11:00:00Z", "v2", "/blog/b")),
        pv(4, "2024-05-01T11:01:00Z", "v2", "/pricing"),
        fr(pv(5, "2024-05-01T12:00:00Z", "v3", "/blog/c")),
    ]
}

#[test]
fn not_and_or_nest() {
    let events = countries();
    let metrics = ["visitors", "visits", "events"];
    // DE visits, or events whose page does not contain "blog": v1's 1 and 2, v2's 4. 2 visitors, 2 visits, 3 events.
    let either = json!([
        "or",
        [
            ["is", "visit:country", ["DE"]],
            ["not", ["contains", "event:page", ["blog"]]]
        ]
    ]);
    assert_eq!(aggregate(&metrics, json!([either.clone()]), &events), json!([2, 2, 3]));
    // The complement: events 3 and 5, of v2 and v3.
    assert_eq!(aggregate(&metrics, json!([["not", either]]), &events), json!([2, 2, 2]));
    // and of an or and a not: FR visits' blog events, except v3's: event 3.
    let nested = json!([
        "and",
        [
            ["or", [["is", "visit:country", ["FR"]], ["is", "visit:country", ["XX"]]]],
            ["contains", "event:page", ["blog"]],
            ["not", ["and", [["is", "event:page", ["/blog/c"]]]]],
        ]
    ]);
    assert_eq!(aggregate(&metrics, json!([nested]), &events), json!([1, 1, 1]));
    // Top-level filters are and-ed: FR visits and /pricing: event 4.
    assert_eq!(
        aggregate(
            &metrics,
            json!([
                ["is", "visit:country", ["FR"]],
                ["is", "event:page", ["/pricing", "/nope"]]
            ]),
            &events
        ),
        json!([1, 1, 1])
    );
    // is_not with several clauses: none of them. Not DE and not FR: nothing.
    assert_eq!(
        aggregate(&metrics, json!([["is_not", "visit:country", ["DE", "FR"]]]), &events),
        json!([0, 0, 0])
    );
}

#[test]
fn a_missing_value_satisfies_no_condition_but_not_still_negates() {
    let events = vec![
        pv(1, "2024-05-01T10:00:00Z", "a", "/"),
        // b's only visit has no pageview: no entry page.
        event(2, "2024-05-01T10:00:00Z", Some("b"), "Download", "/file"),
        // No visitor: no visit, so no visit values.
        event(3, "2024-05-01T10:00:00Z", None, "page_view", "/"),
    ];
    let metrics = ["events"];
    // is_not "/" on the entry page: a's entry is "/", b's does not exist, event 3 has no visit: nothing kept.
    assert_eq!(
        aggregate(&metrics, json!([["is_not", "visit:entry_page", ["/"]]]), &events),
        json!([0])
    );
    // not(is "/"): the condition is false for events 2 and 3, so not keeps them.
    assert_eq!(
        aggregate(&metrics, json!([["not", ["is", "visit:entry_page", ["/"]]]]), &events),
        json!([2])
    );
    // An empty visit:source ("unknown") is a value: a's and b's visits match, event 3 (no visit) does not.
    assert_eq!(
        aggregate(&metrics, json!([["is", "visit:source", [""]]]), &events),
        json!([2])
    );
    // Breakdowns leave out missing values: by entry page only a's visit; by source a's and b's visits.
    assert_eq!(
        results(
            &["visits", "events"],
            json!({"dimensions": ["visit:entry_page"]}),
            &events
        ),
        json!([{"metrics": [1, 1], "dimensions": ["/"]}])
    );
    assert_eq!(
        results(&["visits", "events"], json!({"dimensions": ["visit:source"]}), &events),
        json!([{"metrics": [2, 2], "dimensions": [""]}])
    );
    // The event without a visitor counts in events and pageviews only.
    assert_eq!(
        aggregate(&["visitors", "visits", "pageviews", "events"], json!([]), &events),
        json!([2, 2, 2, 3])
    );
}

#[test]
fn case_insensitive_contains_is_and_matches() {
    let events = vec![
        pv(1, "2024-05-01T10:00:00Z", "a", "/Blog/Post"),
        pv(2, "2024-05-01T10:00:00Z", "b", "/blog/other"),
        pv(3, "2024-05-01T10:00:00Z", "c", "/BLOG"),
        pv(4, "2024-05-01T10:00:00Z", "d", "/news"),
    ];
    let count = |filter: Value| aggregate(&["pageviews"], json!([filter]), &events);
    // Case-sensitive by default: only /blog/other contains "blog".
    assert_eq!(count(json!(["contains", "event:page", ["blog"]])), json!([1]));
    assert_eq!(
        count(json!(["contains", "event:page", ["blog"], {"case_sensitive": true}])),
        json!([1])
    );
    // Lowercased: /Blog/Post, /blog/other, /BLOG.
    assert_eq!(
        count(json!(["contains", "event:page", ["blog"], {"case_sensitive": false}])),
        json!([3])
    );
    assert_eq!(
        count(json!(["contains", "event:page", ["BLOG"], {"case_sensitive": false}])),
        json!([3])
    );
    assert_eq!(
        count(json!(["contains_not", "event:page", ["blog"], {"case_sensitive": false}])),
        json!([1])
    );
    assert_eq!(count(json!(["is", "event:page", ["/NEWS"]])), json!([0]));
    assert_eq!(
        count(json!(["is", "event:page", ["/NEWS"], {"case_sensitive": false}])),
        json!([1])
    );
    // Regexes match anywhere unless anchored; case-insensitive when asked.
    assert_eq!(count(json!(["matches", "event:page", ["^/blog"]])), json!([1]));
    assert_eq!(
        count(json!(["matches", "event:page", ["^/blog"], {"case_sensitive": false}])),
        json!([3])
    );
    assert_eq!(count(json!(["matches", "event:page", ["o"]])), json!([2]));
    assert_eq!(
        count(json!(["matches_not", "event:page", ["^/[a-z]+$", "Post$"]])),
        json!([2])
    );
}

#[test]
fn a_missing_custom_property_is_none() {
    let prop = |e: RawEvent, v: &str| {
        with(e, |e| {
            e.props.insert("plan".into(), v.into());
        })
    };
    let events = vec![
        prop(event(1, "2024-05-01T10:00:00Z", Some("a"), "Signup", "/"), "pro"),
        prop(event(2, "2024-05-01T10:01:00Z", Some("b"), "Signup", "/"), "free"),
        pv(3, "2024-05-01T10:02:00Z", "c", "/"),
        with(pv(4, "2024-05-01T10:03:00Z", "d", "/"), |e| {
            e.props.insert("other".into(), "x".into());
        }),
    ];
    // (none): events 3 and 4 (2); free and pro one each, tied, then by value ascending.
    assert_eq!(
        results(&["events"], json!({"dimensions": ["event:props:plan"]}), &events),
        json!([
            {"metrics": [2], "dimensions": ["(none)"]},
            {"metrics": [1], "dimensions": ["free"]},
            {"metrics": [1], "dimensions": ["pro"]},
        ])
    );
    assert_eq!(
        aggregate(&["events"], json!([["is", "event:props:plan", ["(none)"]]]), &events),
        json!([2])
    );
    assert_eq!(
        aggregate(
            &["events"],
            json!([["is_not", "event:props:plan", ["(none)"]]]),
            &events
        ),
        json!([2])
    );
    assert_eq!(
        aggregate(&["events"], json!([["contains", "event:props:plan", ["r"]]]), &events),
        json!([2])
    );
}

#[test]
fn kathmandu_time_day_boundaries() {
    // Local midnight in Kathmandu (+05:45) is 18:15Z the day before.
    let events = vec![
        pv(1, "2024-06-14T18:14:59Z", "a", "/"), // 14 June 23:59:59 local: before the range
        pv(2, "2024-06-14T18:15:00Z", "b", "/"), // 15 June 00:00:00
        pv(3, "2024-06-15T18:14:59Z", "c", "/"), // 15 June 23:59:59
        pv(4, "2024-06-15T18:15:00Z", "d", "/"), // 16 June 00:00:00
        pv(5, "2024-06-16T18:15:00Z", "e", "/"), // 17 June: after the range
        pv(6, "2024-06-08T18:14:59Z", "f", "/"), // 8 June 23:59:59
        pv(7, "2024-06-08T18:15:00Z", "g", "/"), // 9 June 00:00:00
    ];
    let r = run_at(
        json!({"site_id": "s", "metrics": ["visitors"], "date_range": ["2024-06-15", "2024-06-16"],
               "dimensions": ["time:day"], "include": {"time_labels": true, "total_rows": true}}),
        Kathmandu,
        "2030-01-01T00:00:00Z",
        &events,
    );
    assert_eq!(
        r.to_json(),
        json!({
            "results": [
                {"metrics": [2], "dimensions": ["2024-06-15"]},
                {"metrics": [1], "dimensions": ["2024-06-16"]},
            ],
            "meta": {"time_labels": ["2024-06-15", "2024-06-16"], "total_rows": 2},
            "query": {
                "site_id": "s",
                "metrics": ["visitors"],
                "date_range": ["2024-06-15T00:00:00+05:45", "2024-06-16T23:59:59+05:45"],
                "filters": [],
                "dimensions": ["time:day"],
                "order_by": [["time:day", "asc"], ["visitors", "desc"]],
                "include": {"time_labels": true, "total_rows": true},
                "pagination": {"limit": 10000, "offset": 0},
            },
        })
    );
    // day at 20:00Z on 15 June (01:45 on the 16th locally): events 4 only.
    let day = json!({"site_id": "s", "metrics": ["visitors"], "date_range": "day"});
    assert_eq!(
        run_at(day.clone(), Kathmandu, "2024-06-15T20:00:00Z", &events).to_json()["results"][0]["metrics"],
        json!([1])
    );
    // 7d then is 9 ..= 15 June, [18:15Z on 8 June, 18:15Z on 15 June): events 7, 1, 2 and 3.
    let week = json!({"site_id": "s", "metrics": ["visitors"], "date_range": "7d"});
    assert_eq!(
        run_at(week, Kathmandu, "2024-06-15T20:00:00Z", &events).to_json()["results"][0]["metrics"],
        json!([4])
    );
    // At 18:14:59Z on the 15th it is still the 15th locally: day = events 2 and 3.
    assert_eq!(
        run_at(day, Kathmandu, "2024-06-15T18:14:59Z", &events).to_json()["results"][0]["metrics"],
        json!([2])
    );
}

#[test]
fn berlin_dst_day_boundaries() {
    let events = vec![
        pv(1, "2024-10-21T21:59:59Z", "a", "/"),  // 21 Oct 23:59:59 CEST
        pv(2, "2024-10-21T22:00:00Z", "b", "/"),  // 22 Oct 00:00 CEST
        pv(3, "2024-10-26T21:59:59Z", "c", "/"),  // 26 Oct 23:59:59 CEST
        pv(4, "2024-10-26T22:00:00Z", "d", "/"),  // 27 Oct 00:00 CEST
        pv(5, "2024-10-27T00:30:00Z", "e", "/"),  // 27 Oct 02:30 CEST
        pv(6, "2024-10-27T01:30:00Z", "f", "/"),  // 27 Oct 02:30 CET (the repeated hour)
        pv(7, "2024-10-27T22:59:59Z", "g", "/"),  // 27 Oct 23:59:59 CET
        pv(8, "2024-10-27T23:00:00Z", "h", "/"),  // 28 Oct 00:00 CET
        pv(9, "2024-10-28T22:59:59Z", "i", "/"),  // 28 Oct 23:59:59 CET
        pv(10, "2024-10-28T23:00:00Z", "j", "/"), // 29 Oct 00:00 CET
    ];
    let by_day = run_at(
        json!({"site_id": "s", "metrics": ["visitors"], "date_range": ["2024-10-26", "2024-10-28"],
               "dimensions": ["time:day"]}),
        Berlin,
        "2030-01-01T00:00:00Z",
        &events,
    );
    // 26 Oct: 3; 27 Oct (25 hours): 4, 5, 6, 7; 28 Oct: 8, 9.
    assert_eq!(
        by_day.to_json()["results"],
        json!([
            {"metrics": [1], "dimensions": ["2024-10-26"]},
            {"metrics": [4], "dimensions": ["2024-10-27"]},
            {"metrics": [2], "dimensions": ["2024-10-28"]},
        ])
    );
    // day on the 27th, with time (hourly for one day): the two 02:30s share the 02:00 bucket.
    let hourly = run_at(
        json!({"site_id": "s", "metrics": ["visitors"], "date_range": "day", "dimensions": ["time"],
               "include": {"time_labels": true}}),
        Berlin,
        "2024-10-27T12:00:00Z",
        &events,
    )
    .to_json();
    assert_eq!(
        hourly["results"],
        json!([
            {"metrics": [1], "dimensions": ["2024-10-27 00:00:00"]},
            {"metrics": [2], "dimensions": ["2024-10-27 02:00:00"]},
            {"metrics": [1], "dimensions": ["2024-10-27 23:00:00"]},
        ])
    );
    assert_eq!(hourly["meta"]["time_labels"].as_array().map(Vec::len), Some(24));
    assert_eq!(
        hourly["query"]["date_range"],
        json!(["2024-10-27T00:00:00+02:00", "2024-10-27T23:59:59+01:00"])
    );
    // 7d on 29 Oct (10:00 local): 22 ..= 28 Oct: events 2 to 9.
    let week = json!({"site_id": "s", "metrics": ["visitors"], "date_range": "7d"});
    assert_eq!(
        run_at(week, Berlin, "2024-10-29T09:00:00Z", &events).to_json()["results"][0]["metrics"],
        json!([8])
    );
}

#[test]
fn percentage_ordering_and_pagination() {
    // One visitor per source entry: Google 3, DuckDuckGo 2, unknown ("") 1, Twitter 1; 7 visitors in all.
    let sources = ["Google", "Google", "Google", "DuckDuckGo", "DuckDuckGo", "", "Twitter"];
    let events: Vec<RawEvent> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            with(pv(i as u128, "2024-05-01T10:00:00Z", &format!("v{i}"), "/"), |e| {
                e.source = (*s).into()
            })
        })
        .collect();
    // 3/7 = 42.857 -> 42.9; 2/7 = 28.571 -> 28.6; 1/7 = 14.286 -> 14.3. Default order: visitors descending, then
    // source ascending ("" before "Twitter").
    let all = results(
        &["visitors", "percentage"],
        json!({"dimensions": ["visit:source"]}),
        &events,
    );
    assert_eq!(
        all,
        json!([
            {"metrics": [3, 42.9], "dimensions": ["Google"]},
            {"metrics": [2, 28.6], "dimensions": ["DuckDuckGo"]},
            {"metrics": [1, 14.3], "dimensions": [""]},
            {"metrics": [1, 14.3], "dimensions": ["Twitter"]},
        ])
    );
    // The denominator keeps the filters: without Google, 4 visitors: 2/4 = 50.0, 1/4 = 25.0.
    let filtered = results(
        &["percentage"],
        json!({"dimensions": ["visit:source"], "filters": [["is_not", "visit:source", ["Google"]]]}),
        &events,
    );
    assert_eq!(filtered[0], json!({"metrics": [50.0], "dimensions": ["DuckDuckGo"]}));
    // Page 2 of 2 rows per page, with the total.
    let page = run_at(
        json!({"site_id": "s", "metrics": ["visitors"], "date_range": ["2024-05-01", "2024-05-01"],
               "dimensions": ["visit:source"], "pagination": {"limit": 2, "offset": 1},
               "include": {"total_rows": true}}),
        UTC,
        "2030-01-01T00:00:00Z",
        &events,
    )
    .to_json();
    assert_eq!(
        page["results"],
        json!([{"metrics": [2], "dimensions": ["DuckDuckGo"]}, {"metrics": [1], "dimensions": [""]}])
    );
    assert_eq!(page["meta"], json!({"total_rows": 4}));
    // Explicit order on the dimension.
    let by_name = results(
        &["visitors"],
        json!({"dimensions": ["visit:source"], "order_by": [["visit:source", "desc"]]}),
        &events,
    );
    let names: Vec<&Value> = by_name
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["dimensions"][0])
        .collect();
    assert_eq!(
        names,
        [&json!("Twitter"), &json!("Google"), &json!("DuckDuckGo"), &json!("")]
    );
    // An offset past the end: no rows.
    let past = results(
        &["visitors"],
        json!({"dimensions": ["visit:source"], "pagination": {"offset": 4}}),
        &events,
    );
    assert_eq!(past, json!([]));
}

#[test]
fn rounding_is_half_up() {
    // 8 visits of 8 visitors, one bounced (a single pageview), the others 2 pageviews 10 s apart, except one of 15 s.
    // bounce 1/8 = 12.5 -> 13; duration (6 * 10 + 15 + 0) / 8 = 9.375 -> 9; views per visit 15 / 8 = 1.875 -> 1.88.
    let mut events = vec![pv(0, "2024-05-01T10:00:00Z", "bouncer", "/")];
    for i in 1..8u128 {
        let v = format!("v{i}");
        events.push(pv(i * 10, "2024-05-01T10:00:00Z", &v, "/"));
        let second = if i == 1 {
            "2024-05-01T10:00:15Z"
        } else {
            "2024-05-01T10:00:10Z"
        };
        events.push(pv(i * 10 + 1, second, &v, "/b"));
    }
    assert_eq!(
        aggregate(
            &["visits", "bounce_rate", "visit_duration", "views_per_visit"],
            json!([]),
            &events
        ),
        json!([8, 13, 9, 1.88])
    );
    // 2 pageviews in 3 visits: 0.667 -> 0.67. Durations are truncated to whole seconds per visit: a 1.9 s -> 1,
    // b 2 s, c (one event) 0 s; mean 3 / 3 = 1.
    let events = vec![
        pv(1, "2024-05-01T10:00:00Z", "a", "/"),
        event(2, "2024-05-01T10:00:01.900Z", Some("a"), "Click", "/"),
        pv(3, "2024-05-01T10:00:00Z", "b", "/"),
        event(4, "2024-05-01T10:00:02Z", Some("b"), "Click", "/"),
        event(5, "2024-05-01T10:00:00Z", Some("c"), "Click", "/"),
    ];
    assert_eq!(
        aggregate(&["visits", "visit_duration", "views_per_visit"], json!([]), &events),
        json!([3, 1, 0.67])
    );
}

#[test]
fn an_empty_site_has_one_zero_row_and_no_breakdown_rows() {
    let r = run_at(
        json!({"site_id": "s", "metrics": ["visitors", "bounce_rate", "views_per_visit", "visit_duration"],
               "date_range": "day", "include": {"imports": true}}),
        UTC,
        "2024-05-01T12:00:00Z",
        &[],
    )
    .to_json();
    assert_eq!(r["results"], json!([{"metrics": [0, 0, 0.0, 0], "dimensions": []}]));
    assert_eq!(r["meta"], json!({"imports_included": false}));
    assert_eq!(
        results(&["visitors"], json!({"dimensions": ["event:page"]}), &[]),
        json!([])
    );
}

#[test]
fn session_metrics_by_time_count_a_visit_in_each_bucket() {
    // One visit from 23:50 on 1 May to 00:10 on 2 May (1200 s, 2 pageviews): it is in both days' rows, with the
    // whole visit's duration, and one pageview each.
    let events = vec![
        pv(1, "2024-05-01T23:50:00Z", "a", "/"),
        pv(2, "2024-05-02T00:10:00Z", "a", "/b"),
    ];
    let r = run_at(
        json!({"site_id": "s", "metrics": ["visits", "visit_duration", "views_per_visit"],
               "date_range": ["2024-05-01", "2024-05-02"], "dimensions": ["time:day"]}),
        UTC,
        "2030-01-01T00:00:00Z",
        &events,
    );
    assert_eq!(
        r.to_json()["results"],
        json!([
            {"metrics": [1, 1200, 1.0], "dimensions": ["2024-05-01"]},
            {"metrics": [1, 1200, 1.0], "dimensions": ["2024-05-02"]},
        ])
    );
}

#[test]
fn event_dimensions_and_several_dimensions() {
    let events = vec![
        with(pv(1, "2024-05-01T10:00:00Z", "a", "/"), |e| {
            e.browser = "Firefox".into()
        }),
        pv(2, "2024-05-01T10:01:00Z", "a", "/docs"),
        with(pv(3, "2024-05-01T10:00:00Z", "b", "/"), |e| e.browser = "Chrome".into()),
        with(event(4, "2024-05-01T10:02:00Z", Some("b"), "Signup", "/"), |e| {
            e.hostname = "app.example.com".into()
        }),
    ];
    // By page and browser (the visit's first event's): ("/", Chrome) b: 1 visitor 2 events (3, 4);
    // ("/", Firefox) a: 1 visitor 1 event; ("/docs", Firefox) a: 1 visitor 1 event. Ordered by visitors descending
    // (all 1), then dimensions ascending.
    assert_eq!(
        results(
            &["visitors", "events"],
            json!({"dimensions": ["event:page", "visit:browser"]}),
            &events
        ),
        json!([
            {"metrics": [1, 2], "dimensions": ["/", "Chrome"]},
            {"metrics": [1, 1], "dimensions": ["/", "Firefox"]},
            {"metrics": [1, 1], "dimensions": ["/docs", "Firefox"]},
        ])
    );
    assert_eq!(
        results(
            &["events"],
            json!({"dimensions": ["event:name"], "order_by": [["events", "asc"]]}),
            &events
        ),
        json!([{"metrics": [1], "dimensions": ["Signup"]}, {"metrics": [3], "dimensions": ["page_view"]}])
    );
    assert_eq!(
        results(&["visitors"], json!({"dimensions": ["event:hostname"]}), &events),
        json!([{"metrics": [2], "dimensions": ["example.com"]}, {"metrics": [1], "dimensions": ["app.example.com"]}])
    );
}

#[test]
fn duplicate_event_ids_and_bad_ranges_are_errors() {
    let q = query(json!({"site_id": "s", "metrics": ["visitors"], "date_range": "day"}));
    let events = [
        pv(1, "2024-05-01T10:00:00Z", "a", "/"),
        pv(1, "2024-05-01T10:01:00Z", "b", "/"),
    ];
    let range = q.resolve(t("2024-05-01T12:00:00Z"), UTC, None);
    assert_eq!(evaluate(&q, range, UTC, &events), Err(EvalError::DuplicateEventId(1)));
    let backwards = crate::ResolvedRange {
        start: range.end,
        end: range.start,
    };
    assert_eq!(evaluate(&q, backwards, UTC, &[]), Err(EvalError::InvalidRange));
}

/// Random events over two days: 6 visitors (and some without), 4 pages, 3 sources, 2 plans, minutes apart.
fn random_events(seed: u64) -> Vec<RawEvent> {
    use rand::Rng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let start = t("2024-05-01T00:00:00Z");
    (0..300u128)
        .map(|id| {
            let visitor = rng.random_range(0..7);
            let mut e = RawEvent {
                event_id: id,
                timestamp: start + chrono::Duration::seconds(rng.random_range(0..2 * 86_400)),
                name: if rng.random_bool(0.7) {
                    "page_view".into()
                } else {
                    "Click".into()
                },
                path: ["/", "/blog", "/Blog/x", "/pricing"][rng.random_range(0..4)].into(),
                visitor: (visitor < 6).then(|| format!("v{visitor}")),
                source: ["", "Google", "Twitter"][rng.random_range(0..3)].into(),
                ..RawEvent::default()
            };
            if rng.random_bool(0.5) {
                e.props
                    .insert("plan".into(), ["free", "pro"][rng.random_range(0..2)].into());
            }
            e
        })
        .collect()
}

#[test]
fn random_inputs_order_independence_and_partitions() {
    let requests = [
        json!({"metrics": ALL_VISIT_METRICS, "dimensions": ["visit:source", "time:hour"]}),
        json!({"metrics": ["events", "visitors", "percentage"], "dimensions": ["event:page", "event:props:plan"]}),
        json!({"metrics": ["visits", "bounce_rate"], "dimensions": ["visit:entry_page", "visit:exit_page"],
               "filters": [["or", [["contains", "event:page", ["blog"], {"case_sensitive": false}],
                                   ["not", ["is", "visit:source", ["Google"]]]]]]}),
    ];
    let run = |extra: &Value, events: &[RawEvent]| {
        let mut request = json!({"site_id": "s", "date_range": ["2024-05-01", "2024-05-02"]});
        if let (Value::Object(r), Value::Object(e)) = (&mut request, extra.clone()) {
            r.extend(e);
        }
        run_at(request, Berlin, "2030-01-01T00:00:00Z", events).to_json()
    };
    for seed in 0..5 {
        let events = random_events(seed);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 100);
        for extra in &requests {
            let expected = run(extra, &events);
            let mut shuffled = events.clone();
            shuffled.shuffle(&mut rng);
            assert_eq!(run(extra, &shuffled), expected, "seed {seed}: {extra}");
        }
        // Every in-range event has exactly one page, so the page rows' events add up to the total.
        let total = |filters: Value| {
            run(&json!({"metrics": ["events"], "filters": filters}), &events)["results"][0]["metrics"][0]
                .as_u64()
                .unwrap()
        };
        let by_page = run(&json!({"metrics": ["events"], "dimensions": ["event:page"]}), &events);
        let sum: u64 = by_page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["metrics"][0].as_u64().unwrap())
            .sum();
        assert_eq!(sum, total(json!([])));
        // A filter and its negation split the in-range events, whatever the filter (missing values included).
        for f in [
            json!(["is_not", "visit:entry_page", ["/"]]),
            json!(["contains", "event:props:plan", ["o"]]),
            json!([
                "or",
                [["is", "visit:source", ["Google"]], ["matches", "event:page", ["^/b"]]]
            ]),
        ] {
            assert_eq!(
                total(json!([f.clone()])) + total(json!([["not", f]])),
                total(json!([])),
                "seed {seed}"
            );
        }
    }
}
