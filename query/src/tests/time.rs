use chrono_tz::Tz;
use chrono_tz::{America::Santiago, Asia::Kathmandu, Asia::Kolkata, Europe::Berlin, UTC};
use serde_json::json;

use super::{query, t};
use crate::dimension::TimeDimension;
use crate::time::{local_day_start, Granularity, ResolvedRange};

fn resolve(date_range: serde_json::Value, now: &str, tz: Tz, first_event: Option<&str>) -> ResolvedRange {
    query(json!({"site_id": "s", "metrics": ["visitors"], "date_range": date_range})).resolve(
        t(now),
        tz,
        first_event.map(t),
    )
}

fn range(start: &str, end: &str) -> ResolvedRange {
    ResolvedRange {
        start: t(start),
        end: t(end),
    }
}

#[test]
fn berlin_day_across_dst() {
    // Spring forward, 2024-03-31: local midnight is 00:00+01:00 (23:00Z the day before); the next midnight is
    // 00:00+02:00 (22:00Z). The day lasts 23 hours.
    let r = resolve(json!("day"), "2024-03-31T12:00:00Z", Berlin, None);
    assert_eq!(r, range("2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z"));
    assert_eq!(
        r.to_json(Berlin),
        json!(["2024-03-31T00:00:00+01:00", "2024-03-31T23:59:59+02:00"])
    );
    // Fall back, 2024-10-27: from 00:00+02:00 (22:00Z) to 00:00+01:00 the next day (23:00Z): 25 hours.
    let r = resolve(json!("day"), "2024-10-27T12:00:00Z", Berlin, None);
    assert_eq!(r, range("2024-10-26T22:00:00Z", "2024-10-27T23:00:00Z"));
    // 22:30Z on 2024-10-27 is 23:30+01:00, still the 27th locally.
    let r = resolve(json!("day"), "2024-10-27T22:30:00Z", Berlin, None);
    assert_eq!(r, range("2024-10-26T22:00:00Z", "2024-10-27T23:00:00Z"));
}

#[test]
fn berlin_7d_ends_before_today() {
    // now = 2024-04-02 12:00+02:00, so today is 2024-04-02 and 7d is 2024-03-26 ..= 2024-04-01: from
    // 00:00+01:00 on the 26th (23:00Z on the 25th) to 00:00+02:00 on 2 April (22:00Z on 1 April), DST in between.
    let r = resolve(json!("7d"), "2024-04-02T10:00:00Z", Berlin, None);
    assert_eq!(r, range("2024-03-25T23:00:00Z", "2024-04-01T22:00:00Z"));
    assert_eq!((r.end - r.start).num_hours(), 7 * 24 - 1);
}

#[test]
fn kathmandu_and_kolkata_days() {
    // 20:00Z on 15 June is 01:45 on 16 June in Kathmandu (+05:45): today is the 16th, which starts at 18:15Z on
    // the 15th.
    let r = resolve(json!("day"), "2024-06-15T20:00:00Z", Kathmandu, None);
    assert_eq!(r, range("2024-06-15T18:15:00Z", "2024-06-16T18:15:00Z"));
    assert_eq!(
        r.to_json(Kathmandu),
        json!(["2024-06-16T00:00:00+05:45", "2024-06-16T23:59:59+05:45"])
    );
    // 7d: 9 ..= 15 June.
    let r = resolve(json!("7d"), "2024-06-15T20:00:00Z", Kathmandu, None);
    assert_eq!(r, range("2024-06-08T18:15:00Z", "2024-06-15T18:15:00Z"));
    // +05:30: the same instant is 01:30 on the 16th in Kolkata.
    let r = resolve(json!("day"), "2024-06-15T20:00:00Z", Kolkata, None);
    assert_eq!(r, range("2024-06-15T18:30:00Z", "2024-06-16T18:30:00Z"));
}

#[test]
fn named_periods_in_utc() {
    let now = "2024-05-15T12:00:00Z";
    let day = |d: &str| format!("{d}T00:00:00Z");
    let check = |period: &str, start: &str, end: &str| {
        assert_eq!(
            resolve(json!(period), now, UTC, None),
            range(&day(start), &day(end)),
            "{period}"
        );
    };
    check("day", "2024-05-15", "2024-05-16");
    check("7d", "2024-05-08", "2024-05-15");
    check("28d", "2024-04-17", "2024-05-15");
    check("30d", "2024-04-15", "2024-05-15");
    // 91 days before 15 May 2024: 30 to 15 April, 31 more to 15 March, 30 more to 14 February (leap year).
    check("91d", "2024-02-14", "2024-05-15");
    check("month", "2024-05-01", "2024-05-16");
    check("6mo", "2023-12-01", "2024-05-16");
    check("12mo", "2023-06-01", "2024-05-16");
    check("year", "2024-01-01", "2024-05-16");
    // all: from the first event's local day; today alone without events or with a first event in the future.
    assert_eq!(
        resolve(json!("all"), now, UTC, Some("2023-02-03T10:00:00Z")),
        range("2023-02-03T00:00:00Z", "2024-05-16T00:00:00Z")
    );
    assert_eq!(
        resolve(json!("all"), now, UTC, None),
        range("2024-05-15T00:00:00Z", "2024-05-16T00:00:00Z")
    );
    assert_eq!(
        resolve(json!("all"), now, UTC, Some("2024-06-01T00:00:00Z")),
        range("2024-05-15T00:00:00Z", "2024-05-16T00:00:00Z")
    );
    // In Kathmandu the first event (20:00Z) was already on 4 February locally.
    assert_eq!(
        resolve(json!("all"), now, Kathmandu, Some("2023-02-03T20:00:00Z")),
        range("2023-02-03T18:15:00Z", "2024-05-15T18:15:00Z")
    );
}

#[test]
fn explicit_ranges() {
    // Dates are local days, both included.
    assert_eq!(
        resolve(
            json!(["2024-03-30", "2024-03-31"]),
            "2030-01-01T00:00:00Z",
            Berlin,
            None
        ),
        range("2024-03-29T23:00:00Z", "2024-03-31T22:00:00Z")
    );
    // Datetimes carry their own offsets; the end second is included.
    let r = resolve(
        json!(["2024-01-01T12:00:00+02:00", "2024-01-01T15:59:59+02:00"]),
        "2030-01-01T00:00:00Z",
        Berlin,
        None,
    );
    assert_eq!(r, range("2024-01-01T10:00:00Z", "2024-01-01T14:00:00Z"));
    assert_eq!(
        r.to_json(Berlin),
        json!(["2024-01-01T11:00:00+01:00", "2024-01-01T14:59:59+01:00"])
    );
}

#[test]
fn a_day_whose_midnight_does_not_exist_starts_when_the_gap_ends() {
    // Chile moves its clocks from 00:00-04:00 to 01:00-03:00 on 8 September 2024 (04:00Z): the 8th starts at
    // 04:00Z and lasts 23 hours; the 7th lasts 24.
    assert_eq!(
        local_day_start(Santiago, "2024-09-08".parse().unwrap()),
        t("2024-09-08T04:00:00Z")
    );
    assert_eq!(
        local_day_start(Santiago, "2024-09-07".parse().unwrap()),
        t("2024-09-07T04:00:00Z")
    );
    assert_eq!(
        local_day_start(Santiago, "2024-09-09".parse().unwrap()),
        t("2024-09-09T03:00:00Z")
    );
}

#[test]
fn bucket_labels() {
    // Kathmandu: 18:15Z is local midnight.
    let day = Granularity::Day;
    assert_eq!(day.label(Kathmandu, t("2024-06-14T18:14:59Z")), "2024-06-14");
    assert_eq!(day.label(Kathmandu, t("2024-06-14T18:15:00Z")), "2024-06-15");
    assert_eq!(
        Granularity::Hour.label(Kathmandu, t("2024-06-14T18:15:00Z")),
        "2024-06-15 00:00:00"
    );
    assert_eq!(
        Granularity::Hour.label(Kathmandu, t("2024-06-14T19:14:59Z")),
        "2024-06-15 00:00:00"
    );
    assert_eq!(
        Granularity::Hour.label(Kathmandu, t("2024-06-14T19:15:00Z")),
        "2024-06-15 01:00:00"
    );
    // 16 June 2024 is a Sunday (week of Monday the 10th); the 17th is a Monday.
    assert_eq!(
        Granularity::Week.label(Kathmandu, t("2024-06-15T18:15:00Z")),
        "2024-06-10"
    );
    assert_eq!(
        Granularity::Week.label(Kathmandu, t("2024-06-16T18:15:00Z")),
        "2024-06-17"
    );
    assert_eq!(
        Granularity::Month.label(Kathmandu, t("2024-06-30T18:15:00Z")),
        "2024-07-01"
    );
    // Berlin fall-back: 00:30Z and 01:30Z are both 02:30 locally, one hour bucket.
    assert_eq!(
        Granularity::Hour.label(Berlin, t("2024-10-27T00:30:00Z")),
        "2024-10-27 02:00:00"
    );
    assert_eq!(
        Granularity::Hour.label(Berlin, t("2024-10-27T01:30:00Z")),
        "2024-10-27 02:00:00"
    );
}

#[test]
fn time_labels_cover_the_range() {
    let hours = |tz: Tz, now: &str| Granularity::Hour.labels(tz, resolve(json!("day"), now, tz, None));
    // 25-hour day: 24 labels, 02:00 once.
    let fall = hours(Berlin, "2024-10-27T12:00:00Z");
    assert_eq!(fall.len(), 24);
    assert_eq!(fall.iter().filter(|l| *l == "2024-10-27 02:00:00").count(), 1);
    // 23-hour day: no 02:00.
    let spring = hours(Berlin, "2024-03-31T12:00:00Z");
    assert_eq!(spring.len(), 23);
    assert!(!spring.contains(&"2024-03-31 02:00:00".to_owned()));
    assert_eq!(spring.first().map(String::as_str), Some("2024-03-31 00:00:00"));
    assert_eq!(spring.last().map(String::as_str), Some("2024-03-31 23:00:00"));
    let kathmandu = hours(Kathmandu, "2024-06-15T20:00:00Z");
    assert_eq!(kathmandu.len(), 24);
    assert_eq!(kathmandu.first().map(String::as_str), Some("2024-06-16 00:00:00"));
    assert_eq!(kathmandu.last().map(String::as_str), Some("2024-06-16 23:00:00"));

    let any = "2030-01-01T00:00:00Z";
    let weeks = Granularity::Week.labels(UTC, resolve(json!(["2024-05-01", "2024-05-14"]), any, UTC, None));
    assert_eq!(weeks, ["2024-04-29", "2024-05-06", "2024-05-13"]);
    let months = Granularity::Month.labels(UTC, resolve(json!(["2024-01-30", "2024-03-02"]), any, UTC, None));
    assert_eq!(months, ["2024-01-01", "2024-02-01", "2024-03-01"]);
    let days = Granularity::Day.labels(Berlin, resolve(json!(["2024-03-30", "2024-04-01"]), any, Berlin, None));
    assert_eq!(days, ["2024-03-30", "2024-03-31", "2024-04-01"]);
    // A datetime range within one hour still has that hour's label.
    let short = resolve(json!(["2024-01-01T12:10:00Z", "2024-01-01T12:20:00Z"]), any, UTC, None);
    assert_eq!(Granularity::Hour.labels(UTC, short), ["2024-01-01 12:00:00"]);
}

#[test]
fn auto_time_is_hourly_for_at_most_a_day() {
    let auto = |r: ResolvedRange, tz: Tz| Granularity::for_dimension(TimeDimension::Auto, r, tz);
    assert_eq!(
        auto(resolve(json!("day"), "2024-10-27T12:00:00Z", Berlin, None), Berlin),
        Granularity::Hour
    );
    assert_eq!(
        auto(resolve(json!("day"), "2024-03-31T12:00:00Z", Berlin, None), Berlin),
        Granularity::Hour
    );
    assert_eq!(
        auto(resolve(json!("7d"), "2024-03-31T12:00:00Z", Berlin, None), Berlin),
        Granularity::Day
    );
    assert_eq!(
        auto(range("2024-01-01T10:00:00Z", "2024-01-02T10:00:00Z"), UTC),
        Granularity::Hour
    );
    assert_eq!(
        auto(range("2024-01-01T10:00:00Z", "2024-01-02T10:00:01Z"), UTC),
        Granularity::Day
    );
    assert_eq!(
        Granularity::for_dimension(
            TimeDimension::Week,
            range("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"),
            UTC
        ),
        Granularity::Week
    );
}
