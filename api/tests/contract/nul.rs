//! A NUL character anywhere a client names something (a path parameter,
//! a query parameter, a field of a JSON body) on the reading and admin
//! routes: a 400 naming the field, on PostgreSQL (which refuses a NUL in
//! any text: before, some of these answered 500), and nothing else changed.

use analytics_core::access::{keys, sites};
use reqwest::Method;
use serde_json::{json, Value};
use testkit::inproc::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_any_named_thing_is_a_400_naming_the_field() {
    let stack = Stack::start_with(1, &[("read-auth", "keys"), ("key-cache-seconds", "0")], &[]).await;
    let db = stack.db.connect().await;
    sites::add(&db, "s", &[]).await.unwrap();
    let admin = keys::create(&db, "admin", keys::Scope::Admin, &[]).await.unwrap();
    let (c, base) = (reqwest::Client::new(), stack.api.base.as_str());
    let query = json!({"site_id": "s\u{0}", "metrics": ["visitors"], "date_range": "all"});
    let funnel = json!({"site_id": "s\u{0}", "steps": [{"page": "/"}, {"page": "/a"}], "date_range": "all"});
    let goal = json!({"name": "g\u{0}", "page": "/"});
    let cases: Vec<(Method, String, Option<Value>, &str)> = vec![
        (Method::GET, "/api/v2/goals?site_id=s%00".into(), None, "site_id"),
        (Method::GET, "/api/v2/funnels?site_id=%00".into(), None, "site_id"),
        (
            Method::GET,
            "/stats?site_id=s%00&date=2025-11-15".into(),
            None,
            "site_id",
        ),
        (Method::GET, "/stats/live?site_id=s%00".into(), None, "site_id"),
        (Method::GET, "/api/export/events?site_id=s%00".into(), None, "site_id"),
        (Method::POST, "/api/v2/query".into(), Some(query), "site_id"),
        (Method::POST, "/api/v2/funnel".into(), Some(funnel), "site_id"),
        (Method::GET, "/api/admin/sites/s%00/goals".into(), None, "site"),
        (Method::POST, "/api/admin/sites/s/goals".into(), Some(goal), "name"),
        (Method::DELETE, "/api/admin/sites/s/goals/g%00".into(), None, "name"),
        (Method::DELETE, "/api/admin/sites/s/funnels/f%00".into(), None, "name"),
        (Method::DELETE, "/api/admin/sites/s%00".into(), None, "site"),
        (
            Method::PATCH,
            "/api/admin/sites/s%00".into(),
            Some(json!({"timezone": "UTC"})),
            "site",
        ),
        (Method::DELETE, "/api/admin/keys/k%00".into(), None, "name"),
        (Method::DELETE, "/api/admin/links/%00".into(), None, "id"),
        (
            Method::POST,
            "/api/admin/keys".into(),
            Some(json!({"name": "k", "scope": "read", "sites": ["s", "t\u{0}"]})),
            "sites[1]",
        ),
        (
            Method::POST,
            "/api/admin/links".into(),
            Some(json!({"site_id": "\u{0}"})),
            "site_id",
        ),
        (
            Method::POST,
            "/api/admin/users/delete".into(),
            Some(json!({"site_id": "s", "user_id": "a\u{0}b"})),
            "user_id",
        ),
        (Method::GET, "/share/t%00".into(), None, "token"),
    ];
    for (method, path, body, field) in cases {
        let mut req = c.request(method.clone(), format!("{base}{path}")).bearer_auth(&admin);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 400, "{method} {path}: {v}");
        assert_eq!(v["details"][0]["field"], json!(field), "{method} {path}: {v}");
        assert!(v["details"][0]["message"].as_str().unwrap().contains("NUL"), "{v}");
    }
    // Nothing changed, and the same requests without the NUL answer.
    for path in ["/api/v2/goals?site_id=s", "/api/admin/sites/s/goals", "/api/admin/keys"] {
        let r = c.get(format!("{base}{path}")).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(!v.to_string().contains("\\u0000"), "{path}: {v}");
    }
    let r = c
        .post(format!("{base}/api/admin/users/delete"))
        .bearer_auth(&admin)
        .json(&json!({"site_id": "s", "user_id": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "an ordinary id still answers");
    assert_eq!(keys::list(&db).await.unwrap().len(), 1, "no key was made");
    assert!(sites::list(&db)
        .await
        .unwrap()
        .iter()
        .any(|s| s.site_id == "s" && s.registered));
}
