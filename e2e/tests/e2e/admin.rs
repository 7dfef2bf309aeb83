//! `analytics-admin` as an operator runs it, against embedded mode's
//! SQLite file and the api bound off loopback: a site registered, a key
//! created (its last line), used, listed without its secret, revoked; a
//! shared link; a user deleted; sites' time zones set, changed, refused
//! when not IANA names, and listed; goals and funnels added, refused,
//! listed and removed (SQLite and PostgreSQL).

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

/// `analytics-admin` run to fail: its exit status and standard error.
fn admin_fails(url: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(testkit::process::bin("analytics-admin"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", url)
        .args(args)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The line of `sites list` for `site`.
fn listed(url: &str, site: &str) -> String {
    let all = admin(url, &["sites", "list"]);
    all.lines()
        .find(|l| l.starts_with(&format!("{site}\t")))
        .unwrap_or_else(|| panic!("no {site} in {all}"))
        .to_string()
}

/// Issue 23's zones from the shell: `sites add --timezone` (UTC without
/// it), `sites set-timezone`, a bad zone refused naming `timezone` and the
/// value (exit 1, nothing changed), and `sites list` showing each.
fn an_operator_sets_time_zones(url: &str) {
    let out = admin(url, &["sites", "add", "plain"]);
    assert!(out.contains("time zone UTC"), "{out}");
    let out = admin(
        url,
        &[
            "sites",
            "add",
            "berlin",
            "--timezone",
            "Europe/Berlin",
            "--domain",
            "berlin.example",
        ],
    );
    assert!(
        out.contains("site berlin registered") && out.contains("time zone Europe/Berlin"),
        "{out}"
    );
    assert_eq!(
        listed(url, "berlin"),
        "berlin\tregistered\tdomains: berlin.example\tusers: 0\ttimezone: Europe/Berlin"
    );
    assert!(listed(url, "plain").ends_with("\ttimezone: UTC"));

    let out = admin(url, &["sites", "set-timezone", "berlin", "Asia/Kathmandu"]);
    assert!(out.contains("site berlin is now in time zone Asia/Kathmandu"), "{out}");
    assert!(listed(url, "berlin").ends_with("\ttimezone: Asia/Kathmandu"));
    // Added again without a zone: domains added, the zone kept.
    admin(url, &["sites", "add", "berlin", "--domain", "de.example"]);
    assert_eq!(
        listed(url, "berlin"),
        "berlin\tregistered\tdomains: berlin.example, de.example\tusers: 0\ttimezone: Asia/Kathmandu"
    );

    for args in [
        &["sites", "add", "mars", "--timezone", "Mars/Olympus"][..],
        &["sites", "set-timezone", "berlin", "Mars/Olympus"][..],
    ] {
        let (code, err) = admin_fails(url, args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("timezone: `Mars/Olympus` is not an IANA time zone"),
            "{args:?}: {err}"
        );
    }
    let (code, err) = admin_fails(url, &["sites", "set-timezone", "nowhere", "UTC"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no registered site `nowhere`"), "{err}");
    let all = admin(url, &["sites", "list"]);
    assert!(!all.contains("mars"), "a refused site is not added: {all}");
    assert!(listed(url, "berlin").ends_with("\ttimezone: Asia/Kathmandu"), "{all}");
}

#[test]
fn an_operator_sets_time_zones_in_embedded_mode() {
    let url = format!("sqlite://{}?mode=rwc", temp_sqlite().display());
    an_operator_sets_time_zones(&url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sets_time_zones_on_postgres() {
    let db = testkit::db::TestDb::migrated().await;
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || an_operator_sets_time_zones(&url))
        .await
        .unwrap();
}

/// `analytics-admin import`: an export file into an empty install, again
/// (nothing changes), and a file with a bad line (reported by number;
/// `--all-or-nothing` imports nothing and exits 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_imports_an_export_with_analytics_admin() {
    let url = format!("sqlite://{}?mode=rwc", temp_sqlite().display());
    let dir = testkit::db::log_dir();
    let line = |id: u32, path: &str| {
        json!({"event_id": format!("00000000-0000-0000-0000-{id:012}"), "site_id": "old", "event_type": "page_view",
               "path": path, "user_id": "u", "timestamp": "2001-05-01T10:00:00Z", "received_at": "2025-01-01T00:00:00Z"})
        .to_string()
    };
    let file = dir.join(format!("{}.ndjson", testkit::db::unique_name("import")));
    std::fs::write(&file, [line(1, "/a"), line(2, "/b")].join("\n")).unwrap();
    let path = file.to_str().unwrap();
    let out = admin(&url, &["import", "--site", "old", path]);
    assert!(
        out.contains("2 events read, 2 new, 0 already stored, 0 bad lines"),
        "{out}"
    );
    let out = admin(&url, &["import", "--site", "old", path]);
    assert!(out.contains("2 events read, 0 new, 2 already stored"), "{out}");

    let bad = dir.join(format!("{}.ndjson", testkit::db::unique_name("import-bad")));
    std::fs::write(&bad, [line(3, "/c"), "{oops".to_string()].join("\n")).unwrap();
    let (code, err) = admin_fails(
        &url,
        &["import", "--site", "old", "--all-or-nothing", bad.to_str().unwrap()],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("line 2: not an event") && err.contains("nothing imported"),
        "{err}"
    );
    let (code, err) = admin_fails(&url, &["import", "--site", "old", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("1 bad lines were not imported"), "{err}");
    let out = admin(&url, &["import", "--site", "old", path]);
    assert!(out.contains("0 new, 2 already stored"), "{out}");
}

/// Goals and saved funnels from the shell: added (a pageview goal, an
/// event goal with a property, a revenue goal), listed, refused with the
/// field named (exit 1, nothing added), a funnel saved over them and
/// listed, then removed; on both stores.
fn an_operator_manages_goals_and_funnels(url: &str) {
    admin(url, &["sites", "add", "shop"]);
    let out = admin(
        url,
        &["goals", "add", "--site", "shop", "Pricing", "--page", "/pricing**"],
    );
    assert!(out.contains("goal Pricing added to site shop"), "{out}");
    admin(
        url,
        &[
            "goals", "add", "--site", "shop", "Pro", "--event", "signup", "--prop", "plan=pro",
        ],
    );
    admin(
        url,
        &[
            "goals",
            "add",
            "--site",
            "shop",
            "Sales",
            "--event",
            "purchase",
            "--currency",
            "eur",
        ],
    );
    assert_eq!(
        admin(url, &["goals", "list", "--site", "shop"]),
        "Pricing\t{\"name\":\"Pricing\",\"page\":\"/pricing**\"}\n\
         Pro\t{\"name\":\"Pro\",\"event\":\"signup\",\"prop\":{\"plan\":\"pro\"}}\n\
         Sales\t{\"name\":\"Sales\",\"event\":\"purchase\",\"currency\":\"EUR\"}\n"
    );
    for (args, expected) in [
        (
            &["goals", "add", "--site", "shop", "Bad", "--page", "pricing"][..],
            "page: a path pattern starts with",
        ),
        (
            &["goals", "add", "--site", "shop", "Pricing", "--page", "/"][..],
            "already has a goal named `Pricing`",
        ),
        (
            &["goals", "add", "--site", "nowhere", "A", "--page", "/"][..],
            "no registered site `nowhere`",
        ),
        (
            &[
                "goals",
                "add",
                "--site",
                "shop",
                "Bad",
                "--event",
                "x",
                "--currency",
                "euro",
            ][..],
            "currency:",
        ),
        (
            &["goals", "remove", "--site", "shop", "Nope"][..],
            "has no goal named `Nope`",
        ),
    ] {
        let (code, err) = admin_fails(url, args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let steps = r#"[{"page":"/"},{"goal":"Pricing"},{"goal":"Pro"}]"#;
    let out = admin(url, &["funnels", "add", "--site", "shop", "Checkout", "--steps", steps]);
    assert!(out.contains("funnel Checkout saved for site shop"), "{out}");
    let (code, err) = admin_fails(
        url,
        &[
            "funnels",
            "add",
            "--site",
            "shop",
            "Bad",
            "--steps",
            r#"[{"goal":"Nope"},{"page":"/"}]"#,
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("steps[0].goal: site `shop` has no goal named `Nope`"),
        "{err}"
    );
    let (code, err) = admin_fails(
        url,
        &[
            "funnels",
            "add",
            "--site",
            "shop",
            "Bad",
            "--steps",
            r#"[{"page":"/"}]"#,
        ],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("steps: a funnel has 2 to 8 steps, found 1"), "{err}");
    assert_eq!(
        admin(url, &["funnels", "list", "--site", "shop"]),
        "Checkout\t[{\"name\":\"/\",\"page\":\"/\"},{\"goal\":\"Pricing\"},{\"goal\":\"Pro\"}]\n"
    );
    admin(url, &["funnels", "remove", "--site", "shop", "Checkout"]);
    admin(url, &["goals", "remove", "--site", "shop", "Pro"]);
    assert_eq!(admin(url, &["funnels", "list", "--site", "shop"]), "");
    let goals = admin(url, &["goals", "list", "--site", "shop"]);
    assert!(goals.starts_with("Pricing\t") && !goals.contains("Pro\t"), "{goals}");
    // Removing the site removes its goals.
    admin(url, &["sites", "remove", "shop"]);
    admin(url, &["sites", "add", "shop"]);
    assert_eq!(admin(url, &["goals", "list", "--site", "shop"]), "");
}

#[test]
fn an_operator_manages_goals_and_funnels_in_embedded_mode() {
    let url = format!("sqlite://{}?mode=rwc", temp_sqlite().display());
    an_operator_manages_goals_and_funnels(&url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_manages_goals_and_funnels_on_postgres() {
    let db = testkit::db::TestDb::migrated().await;
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || an_operator_manages_goals_and_funnels(&url))
        .await
        .unwrap();
}
