//! Goals and funnels through the real router: the admin API manages them
//! (every refusal a 4xx naming its field), the query API converts on them,
//! `/api/v2/funnel` counts steps inline and saved, and readers need a key
//! for the site.

use analytics_core::access::{keys, sites};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::db::temp_sqlite;
use testkit::inproc::Running;

async fn send(c: &reqwest::Client, method: &str, url: String, body: Option<Value>, key: Option<&str>) -> (u16, Value) {
    let mut req = match method {
        "GET" => c.get(url),
        "DELETE" => c.delete(url),
        _ => c.post(url),
    };
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn fields(v: &Value) -> Vec<String> {
    v["details"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| d["field"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn goals_convert_and_funnels_count_steps() {
    let api = Running::embedded().await;
    let (c, base) = (reqwest::Client::new(), api.base.as_str());
    let post = |path: &str, body: Value| send(&c, "POST", format!("{base}{path}"), Some(body), None);
    assert_eq!(post("/api/admin/sites", json!({"site_id": "shop"})).await.0, 201);

    // Goals: added, refused with the field at fault, listed.
    let (status, v) = post(
        "/api/admin/sites/shop/goals",
        json!({"name": "Pricing", "page": "/pricing*"}),
    )
    .await;
    assert_eq!(
        (status, v.clone()),
        (201, json!({"name": "Pricing", "page": "/pricing*"}))
    );
    let (status, _) = post(
        "/api/admin/sites/shop/goals",
        json!({"name": "Signup", "event": "signup"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, v) = post(
        "/api/admin/sites/shop/goals",
        json!({"name": "Pro", "event": "signup", "prop": {"plan": "pro"}}),
    )
    .await;
    assert_eq!((status, v["prop"].clone()), (201, json!({"plan": "pro"})), "{v}");
    assert_eq!(
        post("/api/admin/sites/shop/goals", json!({"name": "Signup", "page": "/"}))
            .await
            .0,
        409
    );
    for (body, field) in [
        (json!({"name": "Bad", "page": "pricing"}), "page"),
        (json!({"name": "Bad"}), "page"),
        (json!({"name": "", "event": "x"}), "name"),
        (json!({"name": "Bad", "page": "/", "prop": {"a": "b"}}), "prop"),
        (
            json!({"name": "Bad", "event": "x", "prop": {"a": "b", "c": "d"}}),
            "prop",
        ),
    ] {
        let (status, v) = post("/api/admin/sites/shop/goals", body.clone()).await;
        assert_eq!((status, fields(&v)), (400, vec![field.to_owned()]), "{body}: {v}");
    }
    assert_eq!(
        post("/api/admin/sites/nope/goals", json!({"name": "A", "page": "/"}))
            .await
            .0,
        404
    );
    let (status, v) = send(&c, "GET", format!("{base}/api/v2/goals?site_id=shop"), None, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        v["goals"],
        json!([{"name": "Pricing", "page": "/pricing*"}, {"name": "Pro", "event": "signup", "prop": {"plan": "pro"}},
               {"name": "Signup", "event": "signup"}])
    );

    // a: pricing, then signs up on the pro plan; b: pricing; c: home only.
    let event = |user: &str, kind: &str, path: &str, ts: &str, props: Value| json!({"site_id": "shop", "event_type": kind, "path": path, "user_id": user, "timestamp": ts, "props": props});
    for e in [
        event("a", "page_view", "/", "2025-11-14T10:00:00Z", json!({})),
        event("a", "page_view", "/pricing", "2025-11-14T10:01:00Z", json!({})),
        event(
            "a",
            "signup",
            "/pricing",
            "2025-11-14T10:02:00Z",
            json!({"plan": "pro", "revenue_amount": 19.9, "revenue_currency": "EUR"}),
        ),
        event("b", "page_view", "/", "2025-11-14T11:00:00Z", json!({})),
        event("b", "page_view", "/pricing", "2025-11-14T11:01:00Z", json!({})),
        event("c", "page_view", "/", "2025-11-14T12:00:00Z", json!({})),
    ] {
        let r = c.post(format!("{base}/events")).json(&e).send().await.unwrap();
        assert_eq!(r.status(), 202);
    }
    let range = json!(["2025-11-14", "2025-11-14"]);
    let goals_query = json!({"site_id": "shop", "metrics": ["visitors", "events", "conversion_rate"],
                             "date_range": range, "dimensions": ["event:goal"]});
    let deadline = Instant::now() + Duration::from_secs(20);
    let v = loop {
        let (status, v) = post("/api/v2/query", goals_query.clone()).await;
        assert_eq!(status, 200, "{v}");
        if v["results"].as_array().is_some_and(|r| r.len() == 3) {
            break v;
        }
        assert!(Instant::now() < deadline, "the events never arrived: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        v["results"],
        json!([{"dimensions": ["Pricing"], "metrics": [2, 2, 66.67]},
               {"dimensions": ["Pro"], "metrics": [1, 1, 33.33]},
               {"dimensions": ["Signup"], "metrics": [1, 1, 33.33]}])
    );
    // An unknown goal is named; goal metrics without a goal too.
    let (status, v) = post(
        "/api/v2/query",
        json!({"site_id": "shop", "metrics": ["visitors", "group_conversion_rate"], "date_range": range,
               "filters": [["is", "event:goal", ["Nope"]]]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(fields(&v), ["metrics[1]"], "{v}");
    let (status, v) = post(
        "/api/v2/query",
        json!({"site_id": "shop", "metrics": ["visitors"], "date_range": range,
               "filters": [["is", "event:goal", ["Nope"]]]}),
    )
    .await;
    assert_eq!((status, fields(&v)), (400, vec!["filters[0][2][0]".to_owned()]), "{v}");
    // As CSV.
    let csv = c
        .post(format!("{base}/api/v2/query"))
        .header("accept", "text/csv")
        .json(&goals_query)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv,
        "event:goal,visitors,events,conversion_rate\nPricing,2,2,66.67\nPro,1,1,33.33\nSignup,1,1,33.33\n"
    );

    // A revenue goal: its currency, its conversions' revenue.
    let (status, v) = post(
        "/api/admin/sites/shop/goals",
        json!({"name": "Revenue", "event": "signup", "currency": "eur"}),
    )
    .await;
    assert_eq!((status, v["currency"].clone()), (201, json!("EUR")), "{v}");
    let (status, v) = post(
        "/api/admin/sites/shop/goals",
        json!({"name": "R2", "page": "/", "currency": "EUR"}),
    )
    .await;
    assert_eq!((status, fields(&v)), (400, vec!["currency".to_owned()]), "{v}");
    let (status, v) = post(
        "/api/v2/query",
        json!({"site_id": "shop", "metrics": ["events", "total_revenue", "average_revenue"], "date_range": range,
               "filters": [["is", "event:goal", ["Revenue"]]]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["results"],
        json!([{"dimensions": [], "metrics": [1, {"value": 19.9, "currency": "EUR"}, {"value": 19.9, "currency": "EUR"}]}])
    );
    let (status, _) = send(
        &c,
        "DELETE",
        format!("{base}/api/admin/sites/shop/goals/Revenue"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 204);

    // A funnel inline, then saved and run by name.
    let steps = json!([{"name": "Home", "page": "/"}, {"goal": "Pricing"}, {"goal": "Signup"}]);
    let (status, v) = post(
        "/api/v2/funnel",
        json!({"site_id": "shop", "date_range": range, "steps": steps}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let names_and_visitors = |v: &Value| -> Vec<(String, u64)> {
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap().to_owned(), s["visitors"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(
        names_and_visitors(&v),
        [
            ("Home".to_owned(), 3),
            ("Pricing".to_owned(), 2),
            ("Signup".to_owned(), 1)
        ]
    );
    assert_eq!(
        (
            v["steps"][2]["conversion_rate"].clone(),
            v["steps"][1]["dropoff"].clone()
        ),
        (json!(33.33), json!(1))
    );
    let (status, _) = post(
        "/api/admin/sites/shop/funnels",
        json!({"name": "Checkout", "steps": steps}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, v) = post(
        "/api/admin/sites/shop/funnels",
        json!({"name": "Broken", "steps": [{"goal": "Nope"}, {"page": "/"}]}),
    )
    .await;
    assert_eq!((status, fields(&v)), (400, vec!["steps[0].goal".to_owned()]), "{v}");
    let (status, v) = post(
        "/api/v2/funnel",
        json!({"site_id": "shop", "date_range": range, "funnel": "Checkout"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(names_and_visitors(&v)[2], ("Signup".to_owned(), 1));
    let (status, v) = send(&c, "GET", format!("{base}/api/v2/funnels?site_id=shop"), None, None).await;
    assert_eq!(
        (status, v["funnels"][0]["name"].clone()),
        (200, json!("Checkout")),
        "{v}"
    );
    let (status, v) = post(
        "/api/v2/funnel",
        json!({"site_id": "shop", "date_range": range, "funnel": "Nope"}),
    )
    .await;
    assert_eq!((status, fields(&v)), (400, vec!["funnel".to_owned()]), "{v}");
    let (status, v) = post(
        "/api/v2/funnel",
        json!({"site_id": "shop", "date_range": range, "steps": [{"page": "/"}]}),
    )
    .await;
    assert_eq!((status, fields(&v)), (400, vec!["steps".to_owned()]), "{v}");

    // Removing a goal: the saved funnel naming it is refused, naming the step.
    let (status, _) = send(
        &c,
        "DELETE",
        format!("{base}/api/admin/sites/shop/goals/Signup"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(
        &c,
        "DELETE",
        format!("{base}/api/admin/sites/shop/goals/Signup"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, v) = post(
        "/api/v2/funnel",
        json!({"site_id": "shop", "date_range": range, "funnel": "Checkout"}),
    )
    .await;
    assert_eq!((status, fields(&v)), (400, vec!["steps[2].goal".to_owned()]), "{v}");
    let (status, _) = send(
        &c,
        "DELETE",
        format!("{base}/api/admin/sites/shop/funnels/Checkout"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 204);
    api.shutdown().await;
}

#[tokio::test]
async fn goal_and_funnel_reads_need_a_key_for_the_site() {
    let c = reqwest::Client::new();
    let url = format!("sqlite://{}?mode=rwc", temp_sqlite().display());
    let api = Running::api(&[
        ("database-url", &url),
        ("http-addr", "0.0.0.0:0"),
        ("key-cache-seconds", "0"),
    ])
    .await;
    let base = api.base.replace("0.0.0.0", "127.0.0.1");
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    for s in ["mine", "theirs"] {
        sites::add(&db, s, &[]).await.unwrap();
    }
    let mine = keys::create(&db, "mine", keys::Scope::Read, &["mine".to_string()])
        .await
        .unwrap();
    let funnel = |site: &str| json!({"site_id": site, "date_range": "7d", "steps": [{"page": "/"}, {"page": "/a"}]});
    let post = |body: Value, key: Option<String>| {
        let c = c.clone();
        let url = format!("{base}/api/v2/funnel");
        async move { send(&c, "POST", url, Some(body), key.as_deref()).await }
    };
    let mine_key = Some(mine.clone());
    assert_eq!(post(funnel("mine"), None).await.0, 401);
    assert_eq!(post(funnel("theirs"), mine_key.clone()).await.0, 403);
    // A saved funnel's existence is not told to a key that may not read the site.
    let (status, _) = post(
        json!({"site_id": "theirs", "date_range": "7d", "funnel": "x"}),
        mine_key.clone(),
    )
    .await;
    assert_eq!(status, 403);
    let (status, v) = post(funnel("mine"), mine_key.clone()).await;
    assert_eq!((status, v["steps"][0]["visitors"].clone()), (200, json!(0)), "{v}");
    let get = |path: &str| send(&c, "GET", format!("{base}{path}"), None, Some(&mine));
    assert_eq!(get("/api/v2/goals?site_id=theirs").await.0, 403);
    assert_eq!(get("/api/v2/goals?site_id=mine").await.0, 200);
    assert_eq!(get("/api/v2/funnels?site_id=theirs").await.0, 403);
    // The admin API is not a reader's.
    let (status, _) = send(
        &c,
        "POST",
        format!("{base}/api/admin/sites/mine/goals"),
        Some(json!({"name": "A", "page": "/"})),
        Some(&mine),
    )
    .await;
    assert_eq!(status, 403);
    api.shutdown().await;
}
