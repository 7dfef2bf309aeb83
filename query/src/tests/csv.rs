//! Responses as CSV.

use crate::reference::evaluate;
use crate::tests::t;
use crate::Query;
use chrono::Duration;

#[test]
fn a_response_as_csv_quotes_what_needs_it() {
    use crate::reference::RawEvent;
    let at = |s: &str| t(s);
    let e = |id: u128, path: &str, visitor: &str| RawEvent {
        event_id: id,
        timestamp: at("2024-01-01T10:00:00Z") + Duration::minutes(id as i64),
        name: "page_view".into(),
        path: path.into(),
        visitor: Some(visitor.into()),
        ..RawEvent::default()
    };
    let events = [e(1, "/a,b", "v1"), e(2, "/say \"hi\"", "v2"), e(3, "/a,b", "v3")];
    let q = Query::parse(
        &serde_json::json!({"site_id": "s", "metrics": ["visitors", "percentage"],
        "dimensions": ["event:page"], "date_range": ["2024-01-01", "2024-01-01"]}),
    )
    .unwrap();
    let range = q.resolve(t("2024-01-02T00:00:00Z"), chrono_tz::UTC, None);
    let response = evaluate(&q, range, chrono_tz::UTC, &events).unwrap();
    let text = String::from_utf8(crate::csv::to_csv(&q, &response)).unwrap();
    assert_eq!(
        text,
        "event:page,visitors,percentage\n\"/a,b\",2,66.7\n\"/say \"\"hi\"\"\",1,33.3\n"
    );
}
