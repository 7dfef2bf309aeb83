//! Sites' time zones (issue 23) through `access::sites`, on a fresh
//! migrated PostgreSQL database and SQLite file each: UTC by default, set
//! when a site is added, changed, kept when it is added again, refused
//! (naming `timezone` and the value) when not an IANA name, listed, and
//! read back as a `Tz`, from the database and from the api's in-memory
//! registry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use analytics_core::access::sites::{self, Registry};
use analytics_core::access::{timezone, AccessError};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use testkit::db::{migrated_sqlite, TestDb};

fn zone(name: &str) -> Tz {
    timezone::parse(name).unwrap()
}

/// Each site's `(site_id, registered, timezone)`, as `list` gives them.
async fn listed(db: &DatabaseConnection) -> Vec<(String, bool, String)> {
    sites::list(db)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.site_id, s.registered, s.timezone))
        .collect()
}

async fn zones_are_kept_changed_and_checked(db: &DatabaseConnection) {
    // A new site without a zone is in UTC; with one, in it.
    let plain = sites::add(db, "plain", &[]).await.unwrap();
    assert_eq!(plain.timezone, "UTC");
    let berlin = sites::add_in(db, "berlin", &["berlin.example".into()], Some(zone("Europe/Berlin")))
        .await
        .unwrap();
    assert_eq!(
        (berlin.timezone.as_str(), berlin.domains.as_slice()),
        ("Europe/Berlin", &["berlin.example".to_string()][..])
    );
    assert_eq!(sites::timezone(db, "plain").await.unwrap(), Tz::UTC);
    assert_eq!(sites::timezone(db, "berlin").await.unwrap(), Tz::Europe__Berlin);

    // Added again: domains are added, the zone kept unless one is given.
    let again = sites::add(db, "berlin", &["de.example".into()]).await.unwrap();
    assert_eq!(again.timezone, "Europe/Berlin");
    assert_eq!(again.domains, ["berlin.example", "de.example"]);
    let moved = sites::add_in(db, "plain", &[], Some(zone("America/Argentina/Salta")))
        .await
        .unwrap();
    assert_eq!(moved.timezone, "America/Argentina/Salta");

    // Changed.
    let changed = sites::set_timezone(db, "berlin", zone("Asia/Kathmandu")).await.unwrap();
    assert_eq!(
        (changed.site_id.as_str(), changed.timezone.as_str()),
        ("berlin", "Asia/Kathmandu")
    );
    assert_eq!(sites::timezone(db, "berlin").await.unwrap(), Tz::Asia__Kathmandu);
    assert_eq!(
        changed.domains,
        ["berlin.example", "de.example"],
        "nothing else changes"
    );

    // A site with data that no admin registered: listed in UTC, and its
    // zone is not set (register it first).
    db.execute_unprepared("INSERT INTO sites (site_id) VALUES ('data-only')")
        .await
        .unwrap();
    match sites::set_timezone(db, "data-only", zone("Europe/Paris")).await {
        Err(AccessError::NotFound(m)) => assert!(m.contains("no registered site `data-only`"), "{m}"),
        other => panic!("{other:?}"),
    }
    match sites::set_timezone(db, "nowhere", zone("Europe/Paris")).await {
        Err(AccessError::NotFound(m)) => assert!(m.contains("`nowhere`"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sites::timezone(db, "data-only").await.unwrap(), Tz::UTC);
    assert_eq!(sites::timezone(db, "nowhere").await.unwrap(), Tz::UTC);

    // Listed with their zones, in byte order.
    assert_eq!(
        listed(db).await,
        [
            ("berlin".to_string(), true, "Asia/Kathmandu".to_string()),
            ("data-only".to_string(), false, "UTC".to_string()),
            ("plain".to_string(), true, "America/Argentina/Salta".to_string()),
        ]
    );

    // The api's registry: every registered site's zone, UTC for the rest.
    let registry = Registry::load(db).await.unwrap();
    assert_eq!(registry.timezone("berlin"), Tz::Asia__Kathmandu);
    assert_eq!(registry.timezone("plain"), Tz::America__Argentina__Salta);
    assert_eq!(registry.timezone("data-only"), Tz::UTC);
    assert_eq!(registry.timezone("nowhere"), Tz::UTC);

    // A bad zone names the field and the value, before anything is stored.
    for bad in ["Mars/Olympus", "europe/berlin", "+01:00", ""] {
        match timezone::parse(bad) {
            Err(e @ AccessError::Field(_)) => {
                let m = e.to_string();
                assert!(
                    m.starts_with(&format!("timezone: `{bad}` is not an IANA time zone")),
                    "{m}"
                );
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert_eq!(
        sites::get(db, "berlin").await.unwrap().unwrap().timezone,
        "Asia/Kathmandu"
    );

    // Removed and registered again: a new site, in UTC.
    sites::remove(db, "berlin").await.unwrap();
    assert_eq!(sites::timezone(db, "berlin").await.unwrap(), Tz::UTC);
    assert_eq!(sites::add(db, "berlin", &[]).await.unwrap().timezone, "UTC");

    // A row whose zone no code wrote is corrupt, not silently UTC, and
    // does not stop the registry from loading.
    db.execute_unprepared("UPDATE sites SET timezone = 'Nowhere/Land' WHERE site_id = 'plain'")
        .await
        .unwrap();
    match sites::timezone(db, "plain").await {
        Err(AccessError::Store(e)) => assert_eq!(e.to_string(), "stored data is corrupt"),
        other => panic!("{other:?}"),
    }
    let registry = Registry::load(db).await.unwrap();
    assert_eq!(registry.timezone("plain"), Tz::UTC);
    assert!(registry.sites.contains("plain"));
}

#[tokio::test]
async fn postgres_site_time_zones() {
    let test_db = TestDb::migrated().await;
    let db = test_db.connect().await;
    zones_are_kept_changed_and_checked(&db).await;
}

#[tokio::test]
async fn sqlite_site_time_zones() {
    let url = migrated_sqlite().await;
    let db = Database::connect(url.as_str()).await.unwrap();
    zones_are_kept_changed_and_checked(&db).await;
}

/// Sites added at once, each with a domain, on SQLite (WAL, a pool of
/// connections as the api has): every one is added. A deferred transaction
/// that read the domains first was refused at once ("database is locked",
/// the api's 503) whenever another add committed in between; schemathesis
/// found it.
#[tokio::test]
async fn sqlite_sites_added_at_once_all_succeed() {
    let url = migrated_sqlite().await;
    let db = analytics_core::store::connect::connect(&url, 8).await.unwrap();
    let adds = (0..24).map(|i| {
        let db = db.clone();
        async move {
            let site = format!("site-{}", i % 4);
            let domain = format!("d{}.example", i % 4);
            sites::add_in(&db, &site, &[domain], Some(zone("Europe/Berlin"))).await
        }
    });
    for added in futures::future::join_all(adds).await {
        added.unwrap();
    }
    assert_eq!(listed(&db).await.len(), 4);
}
