//! Access control against the real router: keys for reads (401 without,
//! 403 for another site's, 200 with the right one), `/sites` filtered by
//! key, revocation, the admin API, the dashboard's login, logout and shared
//! links, ingest for registered sites only, the security headers and CORS
//! on ingest alone. Kafka mode (PostgreSQL), and embedded mode on loopback
//! (open) and off it (keys).

use analytics_core::access::{keys, links, sites};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::check::metric;
use testkit::db::temp_sqlite;
use testkit::inproc::{Running, Stack};

const KEYS_REQUIRED: [(&str, &str); 3] = [
    ("read-auth", "keys"),
    ("ingest-auth", "registered"),
    ("key-cache-seconds", "0"),
];

fn event(site: &str, user: &str) -> Value {
    json!({"site_id": site, "event_type": "page_view", "path": "/", "user_id": user, "timestamp": "2025-11-15T05:00:00Z"})
}

async fn get(c: &reqwest::Client, url: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = c.get(url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A GET with a `Cookie` header: its status and JSON body (null if none).
async fn with_cookie(c: &reqwest::Client, url: &str, cookie: &str) -> (u16, Value) {
    let r = c.get(url).header("cookie", cookie).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` of a Set-Cookie header, and the header whole.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<(String, String)> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| (v.split(';').next().unwrap().to_string(), v.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_mode_needs_keys_and_registered_sites() {
    let stack = Stack::start_with(1, &KEYS_REQUIRED, &[]).await;
    let db = stack.db.connect().await;
    let base = stack.api.base.clone();
    let c = reqwest::Client::new();
    let stats = |site: &str| format!("{base}/stats?site_id={site}&date=2025-11-15");

    // No key: 401, with the scheme named.
    let r = c.get(stats("a")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");

    // Ingest: unregistered sites are refused, naming the field.
    let r = c
        .post(format!("{base}/events"))
        .json(&event("a", "u1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["details"][0]["field"], "site_id", "{body}");
    let r = c
        .post(format!("{base}/events/batch"))
        .json(&json!([event("a", "u1")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["details"][0]["field"], "[0].site_id", "{body}");
    let refused = metric(
        &format!("{}/metrics", stack.api.ops),
        "analytics_events_rejected_total{reason=\"unknown_site\"}",
    )
    .await;
    assert_eq!(refused, 2.0);

    sites::add(&db, "a", &["a.example".into()]).await.unwrap();
    sites::add(&db, "b", &[]).await.unwrap();
    let reader_a = keys::create(&db, "reader-a", keys::Scope::Read, &["a".into()])
        .await
        .unwrap();
    let reader_all = keys::create(&db, "reader-all", keys::Scope::Read, &[]).await.unwrap();
    let admin = keys::create(&db, "admin", keys::Scope::Admin, &[]).await.unwrap();
    let ingest_a = keys::create(&db, "ingest-a", keys::Scope::Ingest, &["a".into()])
        .await
        .unwrap();

    // Registered now: accepted (the api reloads its registry on a miss).
    for (site, user) in [("a", "u1"), ("a", "u2"), ("b", "u3")] {
        let r = c
            .post(format!("{base}/events"))
            .json(&event(site, user))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{site}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, s) = get(&c, &stats("a"), Some(&reader_a)).await;
        assert_eq!(status, 200, "{s}");
        if s["total_views"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        get(&c, &stats("b"), Some(&reader_a)).await.0,
        403,
        "a key scoped to a reads only a"
    );
    assert_eq!(get(&c, &stats("b"), Some(&reader_all)).await.0, 200);
    assert_eq!(
        get(&c, &stats("a"), Some(&ingest_a)).await.0,
        403,
        "an ingest key does not read"
    );
    assert_eq!(
        get(
            &c,
            &stats("a"),
            Some("ak_00000000_0000000000000000000000000000000000000000")
        )
        .await
        .0,
        401
    );
    for path in ["timeseries", "breakdown", "live"] {
        let extra = if path == "breakdown" { "&by=path" } else { "" };
        let url = if path == "live" {
            format!("{base}/stats/live?site_id=b")
        } else {
            format!("{base}/stats/{path}?site_id=b&date=2025-11-15{extra}")
        };
        assert_eq!(get(&c, &url, Some(&reader_a)).await.0, 403, "{path}");
        assert_eq!(get(&c, &url, Some(&reader_all)).await.0, 200, "{path}");
    }

    // /session says who the page is, without a secret.
    assert_eq!(get(&c, &format!("{base}/session"), None).await.1["kind"], "none");
    let (_, who) = get(&c, &format!("{base}/session"), Some(&reader_a)).await;
    assert_eq!(
        (who["kind"].clone(), who["name"].clone(), who["sites"].clone()),
        (json!("key"), json!("reader-a"), json!(["a"]))
    );

    // /sites lists only what the key may read.
    assert_eq!(
        get(&c, &format!("{base}/sites"), Some(&reader_a)).await.1,
        json!({"sites": ["a"], "timezones": {"a": "UTC"}})
    );
    assert_eq!(
        get(&c, &format!("{base}/sites"), Some(&reader_all)).await.1,
        json!({"sites": ["a", "b"], "timezones": {"a": "UTC", "b": "UTC"}})
    );
    assert_eq!(get(&c, &format!("{base}/sites"), None).await.0, 401);

    // The admin API: an admin key only; keys listed without their secret.
    assert_eq!(
        get(&c, &format!("{base}/api/admin/keys"), Some(&reader_all)).await.0,
        403
    );
    let (status, listed) = get(&c, &format!("{base}/api/admin/keys"), Some(&admin)).await;
    assert_eq!(status, 200);
    let text = listed.to_string();
    assert!(!text.contains(&reader_all[12..]), "a secret was listed: {text}");
    assert_eq!(listed["keys"].as_array().unwrap().len(), 4);
    let r = c
        .post(format!("{base}/api/admin/sites"))
        .bearer_auth(&admin)
        .json(&json!({"site_id": "c", "domains": ["c.example"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .post(format!("{base}/events"))
        .json(&event("c", "u9"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "a site added over the admin API takes events at once");
    let r = c
        .post(format!("{base}/api/admin/keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "made-over-http", "scope": "read", "sites": ["c"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let made: Value = r.json().await.unwrap();
    let made_key = made["key"].as_str().unwrap().to_string();
    assert_eq!(
        get(&c, &format!("{base}/sites"), Some(&made_key)).await.1,
        json!({"sites": ["c"], "timezones": {"c": "UTC"}})
    );

    // Revoked: 401 at once (the cache is off here; KEY_CACHE_SECONDS bounds it).
    keys::revoke(&db, "reader-a").await.unwrap();
    assert_eq!(get(&c, &stats("a"), Some(&reader_a)).await.0, 401);
    let r = c
        .delete(format!("{base}/api/admin/keys/made-over-http"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(get(&c, &format!("{base}/sites"), Some(&made_key)).await.0, 401);

    // The dashboard's login: a session cookie, HttpOnly and SameSite=Strict.
    let nc = no_redirects();
    let r = nc
        .post(format!("{base}/login"))
        .form(&[("key", reader_all.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (session, header) = set_cookie(&r, "analytics_session").unwrap();
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Strict"),
        "{header}"
    );
    assert!(!header.contains("Secure"), "not over TLS: {header}");
    assert_eq!(with_cookie(&nc, &stats("b"), &session).await.0, 200);
    let r = nc
        .post(format!("{base}/login"))
        .form(&[("key", ingest_a.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an ingest key does not log in");
    let r = nc
        .post(format!("{base}/logout"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (cleared, header) = set_cookie(&r, "analytics_session").unwrap();
    assert_eq!(cleared, "analytics_session=");
    assert!(header.contains("Max-Age=0"));
    // A forged or expired-looking cookie is nobody.
    assert_eq!(
        with_cookie(&nc, &stats("b"), "analytics_session=admin.9999999999.00")
            .await
            .0,
        401
    );

    // A shared link: that site, read-only, until revoked.
    let token = links::create(&db, "a").await.unwrap();
    let r = nc.get(format!("{base}/share/{token}")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/?site=a");
    let (share, _) = set_cookie(&r, "analytics_share").unwrap();
    let (_, who) = with_cookie(&nc, &format!("{base}/session"), &share).await;
    assert_eq!(
        (who["kind"].clone(), who["sites"].clone()),
        (json!("link"), json!(["a"]))
    );
    assert_eq!(with_cookie(&nc, &stats("a"), &share).await.0, 200);
    assert_eq!(with_cookie(&nc, &stats("b"), &share).await.0, 403);
    assert_eq!(
        with_cookie(&nc, &format!("{base}/sites"), &share).await.1,
        json!({"sites": ["a"], "timezones": {"a": "UTC"}})
    );
    links::revoke(&db, &token).await.unwrap();
    assert_eq!(with_cookie(&nc, &stats("a"), &share).await.0, 401);
    assert_eq!(
        nc.get(format!("{base}/share/{token}")).send().await.unwrap().status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_key_can_be_required_as_well_as_registration() {
    let stack = Stack::start_with(
        1,
        &[
            ("read-auth", "keys"),
            ("ingest-auth", "registered-and-key"),
            ("key-cache-seconds", "0"),
        ],
        &[],
    )
    .await;
    let db = stack.db.connect().await;
    sites::add(&db, "a", &[]).await.unwrap();
    sites::add(&db, "b", &[]).await.unwrap();
    let ingest_a = keys::create(&db, "ingest-a", keys::Scope::Ingest, &["a".into()])
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let post = |site: &'static str, key: Option<String>| {
        let mut req = c.post(format!("{}/events", stack.api.base)).json(&event(site, "u"));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post("a", None).await, 401);
    assert_eq!(post("a", Some(ingest_a.clone())).await, 202);
    assert_eq!(post("b", Some(ingest_a.clone())).await, 403, "the key does not cover b");
    assert_eq!(post("z", Some(ingest_a)).await, 403, "z is not registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_on_loopback_is_open_and_off_loopback_needs_keys() {
    // Loopback: the seed's flow, no key anywhere.
    let open = Running::embedded().await;
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/events", open.base))
        .json(&event("anything", "u"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        get(
            &c,
            &format!("{}/stats?site_id=anything&date=2025-11-15", open.base),
            None
        )
        .await
        .0,
        200
    );

    // Every address: keys, registered sites, as in Kafka mode.
    let file = temp_sqlite();
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let exposed = Running::api(&[
        ("database-url", &url),
        ("http-addr", "0.0.0.0:0"),
        ("key-cache-seconds", "0"),
    ])
    .await;
    let base = exposed.base.replace("0.0.0.0", "127.0.0.1");
    let stats = format!("{base}/stats?site_id=s&date=2025-11-15");
    assert_eq!(get(&c, &stats, None).await.0, 401);
    assert_eq!(
        c.post(format!("{base}/events"))
            .json(&event("s", "u"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    sites::add(&db, "s", &[]).await.unwrap();
    let key = keys::create(&db, "reader", keys::Scope::Read, &[]).await.unwrap();
    assert_eq!(
        c.post(format!("{base}/events"))
            .json(&event("s", "u"))
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    let (status, s) = get(&c, &stats, Some(&key)).await;
    assert_eq!((status, s["total_views"].clone()), (200, json!(1)), "{s}");
}

#[tokio::test]
async fn security_headers_everywhere_and_cors_on_ingest_only() {
    let api = Running::embedded().await;
    let c = reqwest::Client::new();
    for path in ["/", "/login", "/stats?site_id=s", "/healthz", "/assets/app.js"] {
        let r = c.get(format!("{}{path}", api.base)).send().await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
    let preflight = |path: &str| {
        c.request(reqwest::Method::OPTIONS, format!("{}{path}", api.base))
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    for path in ["/events", "/events/batch"] {
        let r = preflight(path).await.unwrap();
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{path}");
    }
    let r = preflight("/stats").await.unwrap();
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "CORS leaked to reads"
    );
    let r = c
        .post(format!("{}/events", api.base))
        .header("origin", "https://shop.example")
        .json(&event("s", "u"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

/// A request to the admin API with `key` (none: an open api), its status
/// and JSON body.
async fn admin_call(req: reqwest::RequestBuilder, key: Option<&str>) -> (u16, Value) {
    let req = match key {
        Some(k) => req.bearer_auth(k),
        None => req,
    };
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Sites' time zones over `/api/admin/sites` at `base`: UTC by default,
/// set on creation, changed with PATCH, refused with a 400 naming
/// `timezone` and the value, and listed; `/sites` still lists ids (and
/// names their zones).
async fn admin_api_manages_time_zones(base: &str, key: Option<&str>) {
    let c = reqwest::Client::new();
    let sites_url = format!("{base}/api/admin/sites");
    let (status, plain) = admin_call(c.post(&sites_url).json(&json!({"site_id": "plain"})), key).await;
    assert_eq!((status, plain["timezone"].clone()), (201, json!("UTC")), "{plain}");
    let (status, berlin) = admin_call(
        c.post(&sites_url)
            .json(&json!({"site_id": "berlin", "domains": ["berlin.example"], "timezone": "Europe/Berlin"})),
        key,
    )
    .await;
    assert_eq!(status, 201, "{berlin}");
    assert_eq!(
        (
            berlin["site_id"].clone(),
            berlin["timezone"].clone(),
            berlin["domains"].clone()
        ),
        (json!("berlin"), json!("Europe/Berlin"), json!(["berlin.example"]))
    );

    // A bad zone: 400 naming the field and the value; nothing registered.
    let (status, bad) = admin_call(
        c.post(&sites_url)
            .json(&json!({"site_id": "mars", "timezone": "Mars/Olympus"})),
        key,
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["details"][0]["field"], "timezone", "{bad}");
    let message = bad["details"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`Mars/Olympus` is not an IANA time zone"), "{bad}");
    assert!(
        bad["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("timezone: `Mars/Olympus`"),
        "{bad}"
    );

    // Changed with PATCH; a bad zone or an unknown site refused.
    let (status, changed) = admin_call(
        c.patch(format!("{sites_url}/berlin"))
            .json(&json!({"timezone": "Asia/Kathmandu"})),
        key,
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["timezone"].clone(), changed["domains"].clone()),
        (json!("Asia/Kathmandu"), json!(["berlin.example"]))
    );
    let (status, bad) = admin_call(
        c.patch(format!("{sites_url}/berlin"))
            .json(&json!({"timezone": "asia/kathmandu"})),
        key,
    )
    .await;
    assert_eq!(
        (status, bad["details"][0]["field"].clone()),
        (400, json!("timezone")),
        "{bad}"
    );
    assert!(
        bad["error"]
            .as_str()
            .unwrap_or_default()
            .contains("did you mean `Asia/Kathmandu`?"),
        "{bad}"
    );
    let (status, missing) = admin_call(
        c.patch(format!("{sites_url}/nowhere"))
            .json(&json!({"timezone": "UTC"})),
        key,
    )
    .await;
    assert_eq!(status, 404, "{missing}");
    let (status, _) = admin_call(c.patch(format!("{sites_url}/berlin")).json(&json!({})), key).await;
    assert_eq!(status, 422, "PATCH needs a timezone");

    // Added again without a zone: it keeps its own.
    let (status, again) = admin_call(
        c.post(&sites_url)
            .json(&json!({"site_id": "berlin", "domains": ["de.example"]})),
        key,
    )
    .await;
    assert_eq!(
        (status, again["timezone"].clone()),
        (201, json!("Asia/Kathmandu")),
        "{again}"
    );

    // Listed with their zones.
    let (status, listed) = admin_call(c.get(&sites_url), key).await;
    assert_eq!(status, 200);
    let zones: Vec<(Value, Value)> = listed["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["site_id"].clone(), s["timezone"].clone()))
        .collect();
    assert_eq!(
        zones,
        [
            (json!("berlin"), json!("Asia/Kathmandu")),
            (json!("plain"), json!("UTC"))
        ],
        "{listed}"
    );
    let (status, public) = admin_call(c.get(format!("{base}/sites")), key).await;
    assert_eq!(
        (status, public),
        (
            200,
            json!({"sites": ["berlin", "plain"], "timezones": {"berlin": "Asia/Kathmandu", "plain": "UTC"}})
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_manages_time_zones_on_postgres_with_an_admin_key() {
    let stack = Stack::start_with(1, &KEYS_REQUIRED, &[]).await;
    let db = stack.db.connect().await;
    let admin = keys::create(&db, "admin", keys::Scope::Admin, &[]).await.unwrap();
    admin_api_manages_time_zones(&stack.api.base, Some(&admin)).await;
    let (status, _) = admin_call(
        reqwest::Client::new()
            .patch(format!("{}/api/admin/sites/plain", stack.api.base))
            .json(&json!({"timezone": "UTC"})),
        None,
    )
    .await;
    assert_eq!(status, 401, "an admin key is required");
    assert_eq!(sites::timezone(&db, "berlin").await.unwrap().name(), "Asia/Kathmandu");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_manages_time_zones_in_embedded_mode() {
    let api = Running::embedded().await;
    admin_api_manages_time_zones(&api.base, None).await;
}

/// `GET /sites` until it lists `n` sites (ingest is asynchronous): its body.
async fn sites_until(c: &reqwest::Client, base: &str, n: usize, key: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, v) = get(c, &format!("{base}/sites"), key).await;
        if status == 200 && v["sites"].as_array().map_or(0, Vec::len) == n {
            return v;
        }
        assert!(Instant::now() < deadline, "/sites never listed {n} sites: {status} {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /sites` keeps `{"sites": [ids]}` and adds `"timezones"`: each listed
/// site's IANA zone (the registered one, UTC for a site with data only), a
/// change over the admin API shown at once, and only for the sites the
/// caller may read (embedded mode, open on loopback, keys off it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_names_each_readable_sites_time_zone() {
    let api = Running::embedded().await;
    let (c, base) = (reqwest::Client::new(), api.base.as_str());
    for body in [
        json!({"site_id": "ktm", "timezone": "Asia/Kathmandu"}),
        json!({"site_id": "nl", "timezone": "America/St_Johns"}),
        json!({"site_id": "plain"}),
    ] {
        let (status, v) = admin_call(c.post(format!("{base}/api/admin/sites")).json(&body), None).await;
        assert_eq!(status, 201, "{v}");
    }
    // A site that only has data (open ingest on loopback) is in UTC.
    let r = c
        .post(format!("{base}/events"))
        .json(&event("loose", "u"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let listed = sites_until(&c, base, 4, None).await;
    assert_eq!(
        listed,
        json!({
            "sites": ["ktm", "loose", "nl", "plain"],
            "timezones": {"ktm": "Asia/Kathmandu", "loose": "UTC", "nl": "America/St_Johns", "plain": "UTC"}
        })
    );

    // A new zone shows at once.
    let (status, v) = admin_call(
        c.patch(format!("{base}/api/admin/sites/plain"))
            .json(&json!({"timezone": "Europe/Berlin"})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = get(&c, &format!("{base}/sites"), None).await;
    assert_eq!(status, 200);
    assert_eq!(v["sites"], json!(["ktm", "loose", "nl", "plain"]), "{v}");
    assert_eq!(v["timezones"]["plain"], "Europe/Berlin", "{v}");

    // Off loopback: a key limited to one site sees that site and its zone only.
    let file = temp_sqlite();
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let exposed = Running::api(&[
        ("database-url", &url),
        ("http-addr", "0.0.0.0:0"),
        ("key-cache-seconds", "0"),
    ])
    .await;
    let base = exposed.base.replace("0.0.0.0", "127.0.0.1");
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    sites::add_in(&db, "ktm", &[], Some(chrono_tz::Asia::Kathmandu))
        .await
        .unwrap();
    sites::add(&db, "other", &[]).await.unwrap();
    let only_ktm = keys::create(&db, "ktm-reader", keys::Scope::Read, &["ktm".to_string()])
        .await
        .unwrap();
    let every = keys::create(&db, "reader", keys::Scope::Read, &[]).await.unwrap();
    assert_eq!(get(&c, &format!("{base}/sites"), None).await.0, 401);
    assert_eq!(
        get(&c, &format!("{base}/sites"), Some(&only_ktm)).await,
        (200, json!({"sites": ["ktm"], "timezones": {"ktm": "Asia/Kathmandu"}}))
    );
    assert_eq!(
        get(&c, &format!("{base}/sites"), Some(&every)).await,
        (
            200,
            json!({"sites": ["ktm", "other"], "timezones": {"ktm": "Asia/Kathmandu", "other": "UTC"}})
        )
    );
}
