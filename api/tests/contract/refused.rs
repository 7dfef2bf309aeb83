//! Embedded mode when SQLite refuses a request's data (a trigger the test
//! adds stands for any data error): only the request holding the refused
//! event is answered 422; the requests that shared its group commit are
//! written and answered 202.

use serde_json::json;
use testkit::db::temp_sqlite;
use testkit::inproc::Running;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_request_with_the_refused_event_fails() {
    let file = temp_sqlite();
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let api = Running::api(&[("database-url", &url)]).await;
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        "CREATE TRIGGER no_poison BEFORE INSERT ON events WHEN NEW.path = '/poison' \
         BEGIN SELECT RAISE(ABORT, 'no poison'); END",
    )
    .await
    .unwrap();
    let c = reqwest::Client::new();
    let ev = |path: &str| json!({"site_id": "s", "event_type": "page_view", "path": path, "timestamp": "2025-11-15T05:00:00Z"});
    for round in 0..5 {
        let requests = (0..8).map(|i| {
            let body = if i == 3 {
                ev("/poison")
            } else {
                ev(&format!("/{round}/{i}"))
            };
            let c = c.clone();
            let url = format!("{}/events", api.base);
            async move { c.post(url).json(&body).send().await.unwrap().status().as_u16() }
        });
        let statuses = futures::future::join_all(requests).await;
        assert_eq!(statuses[3], 422, "round {round}: {statuses:?}");
        assert!(
            statuses.iter().enumerate().all(|(i, s)| i == 3 || *s == 202),
            "round {round}: {statuses:?}"
        );
    }
    let stats: serde_json::Value = c
        .get(format!("{}/stats?site_id=s&date=2025-11-15", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total_events"], 35, "{stats}");
}
