//! Every rule of the event contract, each through the real router
//! (embedded mode, its own SQLite file): the status, the JSON error, the
//! field it names, and that nothing else was lost or counted.

use flate2::{write::GzEncoder, Compression};
use serde_json::{json, Value};
use std::io::Write;
use testkit::inproc::Running;

struct Api {
    svc: Running,
    client: reqwest::Client,
}

async fn api() -> Api {
    Api {
        svc: Running::embedded().await,
        client: reqwest::Client::new(),
    }
}

impl Api {
    async fn raw(&self, path: &str, content_type: Option<&str>, encoding: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut req = self.client.post(format!("{}{path}", self.svc.base)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(enc) = encoding {
            req = req.header("content-encoding", enc);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.raw(path, Some("application/json"), None, serde_json::to_vec(body).unwrap())
            .await
    }

    async fn stats(&self, query: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}/stats?{query}", self.svc.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn total_events(&self) -> i64 {
        self.stats("site_id=s&date=2025-11-15").await.1["total_events"]
            .as_i64()
            .unwrap()
    }
}

fn event() -> Value {
    json!({"site_id":"s","event_type":"page_view","path":"/home","user_id":"u1","timestamp":"2025-11-15T05:00:00Z"})
}

fn with(field: &str, value: Value) -> Value {
    let mut e = event();
    e[field] = value;
    e
}

fn without(field: &str) -> Value {
    let mut e = event();
    e.as_object_mut().unwrap().remove(field);
    e
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A 400 whose details name `field`, with a message containing `says`.
fn assert_invalid((status, body): (u16, Value), field: &str, says: &str) {
    assert_eq!(status, 400, "{body}");
    let details = body["details"].as_array().unwrap();
    assert!(
        details
            .iter()
            .any(|d| d["field"] == field && d["message"].as_str().unwrap().contains(says)),
        "no `{field}` detail saying `{says}` in {body}"
    );
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
}

#[tokio::test]
async fn valid_event_is_accepted_with_a_v7_id_and_counted() {
    let a = api().await;
    let (status, body) = a.post("/events", &event()).await;
    assert_eq!(status, 202);
    assert_eq!(body["message"], "Event accepted");
    let id = uuid::Uuid::parse_str(body["event_id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    let (_, stats) = a.stats("site_id=s&date=2025-11-15").await;
    assert_eq!(stats["total_views"], 1);
    assert_eq!(stats["unique_users"], 1);
    assert_eq!(stats["top_paths"], json!([{"path":"/home","views":1}]));
}

#[tokio::test]
async fn missing_site_id() {
    assert_invalid(
        api().await.post("/events", &without("site_id")).await,
        "site_id",
        "required",
    );
}

#[tokio::test]
async fn empty_site_id() {
    assert_invalid(
        api().await.post("/events", &with("site_id", json!(""))).await,
        "site_id",
        "empty",
    );
}

#[tokio::test]
async fn too_long_site_id() {
    let a = api().await;
    assert_invalid(
        a.post("/events", &with("site_id", json!("x".repeat(101)))).await,
        "site_id",
        "at most 100",
    );
    assert_eq!(a.post("/events", &with("site_id", json!("x".repeat(100)))).await.0, 202);
}

#[tokio::test]
async fn wrong_type_for_a_field() {
    assert_invalid(
        api().await.post("/events", &with("site_id", json!(42))).await,
        "site_id",
        "invalid type",
    );
}

#[tokio::test]
async fn bad_event_type_characters() {
    let a = api().await;
    assert_invalid(
        a.post("/events", &with("event_type", json!("page view!"))).await,
        "event_type",
        "letters, digits",
    );
    assert_invalid(
        a.post("/events", &with("event_type", json!("x".repeat(51)))).await,
        "event_type",
        "at most 50",
    );
    assert_eq!(
        a.post("/events", &with("event_type", json!("video:play.v2-x_y")))
            .await
            .0,
        202
    );
}

#[tokio::test]
async fn path_too_long() {
    let a = api().await;
    assert_invalid(
        a.post("/events", &with("path", json!(format!("/{}", "a".repeat(2048)))))
            .await,
        "path",
        "at most 2048",
    );
    assert_eq!(
        a.post("/events", &with("path", json!(format!("/{}", "a".repeat(2047)))))
            .await
            .0,
        202
    );
}

#[tokio::test]
async fn user_id_too_long() {
    assert_invalid(
        api()
            .await
            .post("/events", &with("user_id", json!("u".repeat(101))))
            .await,
        "user_id",
        "at most 100",
    );
}

#[tokio::test]
async fn bad_timestamp() {
    let a = api().await;
    assert_invalid(
        a.post("/events", &with("timestamp", json!("2025-11-15 05:00"))).await,
        "timestamp",
        "RFC 3339",
    );
    assert_invalid(
        a.post("/events", &with("timestamp", json!("2025-13-40T00:00:00Z")))
            .await,
        "timestamp",
        "RFC 3339",
    );
}

#[tokio::test]
async fn far_future_timestamp() {
    let a = api().await;
    let future = (chrono::Utc::now() + chrono::Duration::minutes(11)).to_rfc3339();
    assert_invalid(
        a.post("/events", &with("timestamp", json!(future))).await,
        "timestamp",
        "future",
    );
    let near = (chrono::Utc::now() + chrono::Duration::minutes(9)).to_rfc3339();
    assert_eq!(a.post("/events", &with("timestamp", json!(near))).await.0, 202);
}

#[tokio::test]
async fn missing_timestamp_means_now() {
    let a = api().await;
    assert_eq!(a.post("/events", &without("timestamp")).await.0, 202);
    let today = chrono::Utc::now().date_naive();
    let (_, stats) = a.stats(&format!("site_id=s&date={today}")).await;
    assert_eq!(stats["total_views"], 1);
}

#[tokio::test]
async fn unknown_field() {
    assert_invalid(
        api().await.post("/events", &with("colour", json!("red"))).await,
        "colour",
        "unknown field",
    );
}

#[tokio::test]
async fn invalid_event_id() {
    assert_invalid(
        api()
            .await
            .post("/events", &with("event_id", json!("not-a-uuid")))
            .await,
        "event_id",
        "UUID",
    );
}

#[tokio::test]
async fn props_must_be_strings_or_numbers() {
    let a = api().await;
    assert_invalid(
        a.post("/events", &with("props", json!({"a": {"b": 1}}))).await,
        "props.a",
        "string or a number",
    );
    assert_eq!(
        a.post("/events", &with("props", json!({"plan": "pro", "n": 3.5})))
            .await
            .0,
        202
    );
}

#[tokio::test]
async fn non_json_body() {
    let (status, body) = api()
        .await
        .raw("/events", Some("application/json"), None, b"{not json".to_vec())
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("key must be a string"),
        "{body}"
    );
}

#[tokio::test]
async fn wrong_content_type() {
    let a = api().await;
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let (status, body) = a.raw("/events", ct, None, serde_json::to_vec(&event()).unwrap()).await;
        assert_eq!(status, 415, "{ct:?}");
        assert_eq!(body["error"], "Content-Type must be application/json");
    }
    assert_eq!(
        a.raw(
            "/events",
            Some("application/json; charset=utf-8"),
            None,
            serde_json::to_vec(&event()).unwrap()
        )
        .await
        .0,
        202
    );
}

#[tokio::test]
async fn body_over_the_limit() {
    let a = api().await;
    let big = with("props", json!({"pad": "x".repeat(1000)}));
    let batch = Value::Array(vec![big; 1000]); // about 1.1 MB
    let (status, body) = a.post("/events/batch", &batch).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().unwrap().contains("exceeds"));
    let single = a
        .raw("/events", Some("application/json"), None, vec![b' '; 70_000])
        .await;
    assert_eq!(single.0, 413);
    assert_eq!(a.total_events().await, 0);
}

#[tokio::test]
async fn batch_over_1000_events() {
    let a = api().await;
    let (status, body) = a.post("/events/batch", &Value::Array(vec![event(); 1001])).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().unwrap().contains("1001 events"));
    assert_eq!(
        a.post("/events/batch", &Value::Array(vec![event(); 1000])).await,
        (202, json!({"accepted": 1000}))
    );
}

#[tokio::test]
async fn batch_with_one_bad_event_accepts_nothing() {
    let a = api().await;
    let mut batch = vec![event(); 5];
    batch[3] = with("event_type", json!("bad type"));
    let (status, body) = a.post("/events/batch", &Value::Array(batch)).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("index 3"), "{body}");
    assert_eq!(body["details"][0]["field"], "[3].event_type");
    let mut batch = vec![event(); 3];
    batch[1] = with("oops", json!(1));
    assert_invalid(
        a.post("/events/batch", &Value::Array(batch)).await,
        "[1].oops",
        "unknown field",
    );
    assert_eq!(a.total_events().await, 0, "nothing of a rejected batch may be counted");
}

#[tokio::test]
async fn batch_must_be_a_non_empty_array() {
    let a = api().await;
    assert_eq!(a.post("/events/batch", &json!([])).await.0, 400);
    assert_eq!(a.post("/events/batch", &event()).await.0, 400);
}

#[tokio::test]
async fn gzip_bodies() {
    let a = api().await;
    let one = gzip(&serde_json::to_vec(&event()).unwrap());
    assert_eq!(
        a.raw("/events", Some("application/json"), Some("gzip"), one).await.0,
        202
    );
    let many = gzip(&serde_json::to_vec(&vec![event(); 10]).unwrap());
    assert_eq!(
        a.raw("/events/batch", Some("application/json"), Some("gzip"), many)
            .await,
        (202, json!({"accepted": 10}))
    );
    assert_eq!(a.total_events().await, 11);
}

#[tokio::test]
async fn gzip_bomb_and_broken_gzip() {
    let a = api().await;
    let bomb = gzip(&vec![b' '; 20 * 1024 * 1024]); // 20 MiB of spaces, ~20 kB compressed
    let (status, body) = a
        .raw("/events/batch", Some("application/json"), Some("gzip"), bomb)
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().unwrap().contains("decompressed"));
    assert_eq!(
        a.raw("/events", Some("application/json"), Some("gzip"), b"plain".to_vec())
            .await
            .0,
        400
    );
    assert_eq!(
        a.raw("/events", Some("application/json"), Some("br"), b"{}".to_vec())
            .await
            .0,
        415
    );
}

#[tokio::test]
async fn resending_an_event_id_counts_once() {
    let a = api().await;
    let e = with("event_id", json!("0192f0c4-3b1a-7c00-8000-00000000abcd"));
    for _ in 0..3 {
        let (status, body) = a.post("/events", &e).await;
        assert_eq!(status, 202);
        assert_eq!(body["event_id"], "0192f0c4-3b1a-7c00-8000-00000000abcd");
    }
    assert_eq!(a.post("/events/batch", &Value::Array(vec![e.clone(), e])).await.0, 202);
    assert_eq!(a.total_events().await, 1);
}

#[tokio::test]
async fn garbage_never_gets_a_500_and_the_server_keeps_serving() {
    let a = api().await;
    let garbage: [&[u8]; 6] = [b"", b"null", b"[]", b"\xff\xfe\x00", b"{\"site_id\":", b"[1,2,3]"];
    for g in garbage {
        for path in ["/events", "/events/batch"] {
            let (status, _) = a.raw(path, Some("application/json"), None, g.to_vec()).await;
            assert_eq!(status, 400, "{path} with {g:?}");
        }
    }
    assert_eq!(a.post("/events", &event()).await.0, 202);
}

#[tokio::test]
async fn stats_parameters_are_validated() {
    let a = api().await;
    let cases = [
        ("date=2025-11-15", "site_id"),
        ("site_id=&date=2025-11-15", "site_id"),
        ("site_id=s&date=15-11-2025", "date"),
        ("site_id=s&from=2025-11-16&to=2025-11-15", "to"),
        ("site_id=s&from=2025-11-15", "to"),
        ("site_id=s&date=2025-11-15&limit=0", "limit"),
        ("site_id=s&date=2025-11-15&limit=101", "limit"),
        ("site_id=s&date=2025-11-15&limit=ten", "limit"),
        ("site_id=s&from=2023-01-01&to=2025-01-01", "to"),
        ("site_id=s&date=2025-11-15&colour=red", "colour"),
    ];
    for (query, field) in cases {
        let (status, body) = a.stats(query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["details"].as_array().unwrap().iter().any(|d| d["field"] == field),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn stats_semantics_views_users_and_ties() {
    let a = api().await;
    let mk = |t: &str, path: &str, user: &str, ts: &str| json!({"site_id":"s","event_type":t,"path":path,"user_id":user,"timestamp":ts});
    let batch = json!([
        mk("page_view", "/b", "u1", "2025-11-15T00:00:00Z"),
        mk("page_view", "/a", "u2", "2025-11-15T23:59:59Z"),
        mk("click", "/c", "u3", "2025-11-15T12:00:00Z"),
        mk("page_view", "/z", "", "2025-11-15T12:00:00Z"),
        mk("page_view", "/a", "u1", "2025-11-16T00:00:00Z"),
        mk("page_view", "/late", "u1", "2025-11-14T23:59:59-01:00"),
    ]);
    assert_eq!(a.post("/events/batch", &batch).await.0, 202);
    let (_, day) = a.stats("site_id=s&date=2025-11-15").await;
    // The -01:00 event is 00:59:59 UTC on the 15th; ties rank by path.
    assert_eq!(day["total_views"], 4);
    assert_eq!(day["total_events"], 5);
    assert_eq!(day["unique_users"], 3);
    assert_eq!(
        day["top_paths"],
        json!([{"path":"/a","views":1},{"path":"/b","views":1},{"path":"/late","views":1},{"path":"/z","views":1}])
    );
    let (_, range) = a.stats("site_id=s&from=2025-11-15&to=2025-11-16&limit=1").await;
    assert_eq!(range["total_views"], 5);
    assert_eq!(range["unique_users"], 3, "distinct over the range, not a sum of days");
    assert_eq!(range["top_paths"], json!([{"path":"/a","views":2}]));
}

#[tokio::test]
async fn control_characters_are_refused_in_every_text_field_and_nothing_is_counted() {
    let a = api().await;
    for field in ["site_id", "path", "user_id", "referrer"] {
        assert_invalid(a.post("/events", &with(field, json!("a\u{0}b"))).await, field, "U+0000");
        assert_invalid(
            a.post("/events", &with(field, json!("a\u{1b}[31mb"))).await,
            field,
            "U+001B",
        );
    }
    // Props: a value may hold line breaks and tabs, not NUL; a key nothing.
    assert_invalid(
        a.post("/events", &with("props", json!({"note": "x\u{0}"}))).await,
        "props.note",
        "U+0000",
    );
    assert_invalid(
        a.post("/events", &with("props", json!({"k\u{0}": "x"}))).await,
        "props",
        "U+0000",
    );
    // Batches name the index, and accept nothing.
    let (status, body) = a
        .post("/events/batch", &json!([event(), with("path", json!("/\u{7}"))]))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["details"][0]["field"], "[1].path");
    assert_eq!(a.total_events().await, 0);
    // Tabs, and line breaks in prop values, are fine.
    let mut ok = with("path", json!("/tab\there"));
    ok["props"] = json!({"note": "two\nlines\r\n", "n": 1});
    assert_eq!(a.post("/events", &ok).await.0, 202);
    assert_eq!(a.total_events().await, 1);
    // The read side: a control character in a query parameter is a 400.
    let (status, body) = a.stats("site_id=%00&date=2025-11-15").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["details"][0]["field"], "site_id");
}

#[tokio::test]
async fn timestamps_outside_the_years_or_the_age_bound_are_refused() {
    let a = api().await;
    assert_invalid(
        a.post("/events", &with("timestamp", json!("0000-01-01T00:00:00+01:00")))
            .await,
        "timestamp",
        "years 0001 to 9999",
    );
    assert_invalid(
        a.post("/events", &with("timestamp", json!("1970-01-01T00:00:00Z")))
            .await,
        "timestamp",
        "days in the past",
    );
    // Year 1 is a valid year, but older than the default bound.
    assert_invalid(
        a.post("/events", &with("timestamp", json!("0001-01-01T00:00:00Z")))
            .await,
        "timestamp",
        "days in the past",
    );
    // Nanoseconds are cut to the microseconds both stores hold; a leap
    // second is the second after it.
    let (status, _) = a
        .post("/events", &with("timestamp", json!("2025-11-15T05:00:00.123456789Z")))
        .await;
    assert_eq!(status, 202);
    let (status, _) = a
        .post("/events", &with("timestamp", json!("2025-11-15T23:59:60Z")))
        .await;
    assert_eq!(status, 202);
    let (_, day) = a.stats("site_id=s&date=2025-11-16").await;
    assert_eq!(day["total_events"], 1, "the leap second counts on the next day: {day}");
}

#[tokio::test]
async fn history_is_accepted_when_the_age_bound_is_off() {
    let api = Running::api(&[
        (
            "database-url",
            &format!("sqlite://{}?mode=rwc", testkit::db::temp_sqlite().display()),
        ),
        ("event-max-age-days", "0"),
    ])
    .await;
    let a = Api {
        svc: api,
        client: reqwest::Client::new(),
    };
    let (status, body) = a
        .post("/events", &with("timestamp", json!("1970-01-01T00:00:00Z")))
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, _) = a
        .post("/events", &with("timestamp", json!("0001-01-01T00:00:00Z")))
        .await;
    assert_eq!(status, 202);
    let (_, day) = a.stats("site_id=s&date=1970-01-01").await;
    assert_eq!(day["total_events"], 1);
}

#[tokio::test]
async fn two_sites_may_send_the_same_event_id_and_both_count() {
    let a = api().await;
    let id = "0192f0c4-3b1a-7c00-8000-00000000beef";
    let mut first = event();
    first["event_id"] = json!(id);
    let mut other_site = first.clone();
    other_site["site_id"] = json!("t");
    assert_eq!(a.post("/events", &first).await.0, 202);
    assert_eq!(a.post("/events", &other_site).await.0, 202);
    // Resending within a site is still a no-op.
    assert_eq!(a.post("/events", &other_site).await.0, 202);
    assert_eq!(a.total_events().await, 1);
    let (_, t) = a.stats("site_id=t&date=2025-11-15").await;
    assert_eq!(t["total_events"], 1, "{t}");
    // In one batch too.
    let mut third = first.clone();
    third["site_id"] = json!("u");
    assert_eq!(a.post("/events/batch", &json!([first, third])).await.0, 202);
    let (_, u) = a.stats("site_id=u&date=2025-11-15").await;
    assert_eq!(u["total_events"], 1, "{u}");
    assert_eq!(a.total_events().await, 1);
}
