//! `analytics-admin` as an operator runs it, against embedded mode's
//! SQLite file and the api bound off loopback: a site registered, a key
//! created (its last line), used, listed without its secret, revoked; a
//! shared link; a user deleted.

use serde_json::json;
use std::time::Duration;
use testkit::db::temp_sqlite;
use testkit::process::{free_port, run_ok, Service};

/// `api::auth::REGISTRY_EVERY`: how often the api reloads the registered sites.
const REGISTRY_EVERY: Duration = Duration::from_secs(5);

fn admin(url: &str, args: &[&str]) -> String {
    run_ok("analytics-admin", args, &[("DATABASE_URL", url)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_manages_access_with_analytics_admin() {
    let url = format!("sqlite://{}?mode=rwc", temp_sqlite().display());
    admin(&url, &["sites", "add", "shop", "--domain", "www.Shop.example"]);
    let listed = admin(&url, &["sites", "list"]);
    assert!(listed.contains("shop\tregistered\tdomains: shop.example"), "{listed}");
    let out = admin(
        &url,
        &["keys", "create", "--name", "dash", "--scope", "read", "--site", "shop"],
    );
    let key = out.trim_end().lines().last().unwrap().to_string();
    assert!(
        key.starts_with("ak_") && key.len() == 52,
        "the key is the last line: {out}"
    );
    let keys = admin(&url, &["keys", "list"]);
    assert!(keys.contains("dash\tak_") && !keys.contains(&key[12..]), "{keys}");

    // The api off loopback: keys required.
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let mut api = Service::start(
        "analytics-api",
        &[
            ("DATABASE_URL", &url),
            ("HTTP_ADDR", &listen),
            ("READ_AUTH", "keys"),
            ("INGEST_AUTH", "registered"),
            ("KEY_CACHE_SECONDS", "0"),
        ],
    );
    api.wait_ready().await;
    let base = format!("http://127.0.0.1:{port}");
    let c = reqwest::Client::new();
    let ev = json!({"site_id": "shop", "event_type": "page_view", "path": "/", "user_id": "alice", "timestamp": "2025-11-15T05:00:00Z"});
    assert_eq!(
        c.post(format!("{}/events", base))
            .json(&ev)
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    let stats = format!("{}/stats?site_id=shop&date=2025-11-15", base);
    assert_eq!(c.get(&stats).send().await.unwrap().status(), 401);
    let r = c.get(&stats).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["unique_users"], 1);

    let link = admin(&url, &["links", "create", "--site", "shop"]);
    let path = link.trim_end().lines().last().unwrap();
    assert!(path.starts_with("/share/sl_"), "{link}");
    let deleted = admin(&url, &["users", "delete", "--site", "shop", "--user", "alice"]);
    assert!(deleted.contains("1 events"), "{deleted}");
    let r = c.get(&stats).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["unique_users"], 0);
    admin(&url, &["keys", "revoke", "dash"]);
    assert_eq!(c.get(&stats).bearer_auth(&key).send().await.unwrap().status(), 401);
    let removed = admin(&url, &["sites", "remove", "shop"]);
    assert!(removed.contains("site shop removed"), "{removed}");
    // Ingest learns of the removal at its next registry reload.
    let deadline = std::time::Instant::now() + REGISTRY_EVERY + Duration::from_secs(5);
    loop {
        let status = c
            .post(format!("{}/events", base))
            .json(&ev)
            .send()
            .await
            .unwrap()
            .status();
        if status == 403 {
            break;
        }
        assert_eq!(status, 202);
        assert!(std::time::Instant::now() < deadline, "a removed site is still accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
