//! Comparing every `/stats` answer with the workload's ground truth.

use crate::workload::{comparable, expected_stats, DayTruth, Workload};
use serde_json::Value;
use std::collections::BTreeMap;

async fn get(client: &reqwest::Client, url: &str) -> Value {
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {url}");
    r.json().await.unwrap()
}

/// Every site on every day, each site over the whole period and over a
/// 3-day sub-range, and a site with no data. Returns the number of answers
/// compared.
pub async fn assert_stats_exact(base: &str, w: &Workload, truth: &BTreeMap<(String, String), DayTruth>) -> usize {
    let client = reqwest::Client::new();
    let mut compared = 0;
    for site in &w.sites {
        for day in &w.days {
            let got = get(&client, &format!("{base}/stats?site_id={site}&date={day}&limit=100")).await;
            assert_eq!(got["site_id"], site.as_str());
            assert_eq!(got["date"], day.as_str());
            let want = expected_stats(truth, site, std::slice::from_ref(day), 100);
            assert_eq!(comparable(&got), want, "{site} on {day}");
            compared += 1;
        }
        let (first, last) = (&w.days[0], &w.days[w.days.len() - 1]);
        let got = get(
            &client,
            &format!("{base}/stats?site_id={site}&from={first}&to={last}&limit=100"),
        )
        .await;
        assert_eq!(
            comparable(&got),
            expected_stats(truth, site, &w.days, 100),
            "{site} over all days"
        );
        let sub = &w.days[1..4];
        let got = get(
            &client,
            &format!("{base}/stats?site_id={site}&from={}&to={}", sub[0], sub[2]),
        )
        .await;
        assert_eq!(
            comparable(&got),
            expected_stats(truth, site, sub, 10),
            "{site} over {sub:?}"
        );
        compared += 2;
    }
    let none = get(
        &client,
        &format!("{base}/stats?site_id=no-such-site&date={}", w.days[0]),
    )
    .await;
    assert_eq!(
        comparable(&none),
        expected_stats(truth, "no-such-site", &w.days[..1], 10)
    );
    compared + 1
}

/// Reads one sample from the Prometheus text at `url` (0 when absent).
pub async fn metric(url: &str, name: &str) -> f64 {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(|v| v.trim().parse::<f64>().unwrap())
        })
        .unwrap_or(0.0)
}

/// The `/stats` answer for `site` on `date`, whatever its status (a test may
/// be watching an outage).
pub async fn day_stats(client: &reqwest::Client, base: &str, site: &str, date: &str) -> Value {
    let url = format!("{base}/stats?site_id={site}&date={date}");
    client.get(&url).send().await.unwrap().json().await.unwrap()
}

/// POSTs one event; the status and any Retry-After. A hang fails the test
/// through the client's timeout.
pub async fn post_event(client: &reqwest::Client, base: &str, event: &Value) -> (u16, Option<String>) {
    let r = client
        .post(format!("{base}/events"))
        .json(event)
        .send()
        .await
        .expect("the api must answer, not hang");
    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), retry_after)
}

/// After a load with faults: every acknowledged event of `site` is stored
/// exactly once in the raw events, and the rollups agree with the raw
/// events (views and distinct users of the load's day), so nothing is
/// counted twice or lost. Waits (up to `within`) for the pipeline to drain.
/// Returns the number of events stored.
pub async fn assert_exactly_once(
    db: &sea_orm::DatabaseConnection,
    base: &str,
    site: &str,
    acked: &[String],
    within: std::time::Duration,
) -> usize {
    use sea_orm::{ConnectionTrait, Statement};
    use std::collections::HashSet;
    let deadline = std::time::Instant::now() + within;
    let client = reqwest::Client::new();
    let want: HashSet<uuid::Uuid> = acked.iter().map(|id| id.parse().unwrap()).collect();
    assert_eq!(want.len(), acked.len(), "the load acknowledged an id twice");
    loop {
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                "SELECT event_id, user_id FROM events WHERE site_id = $1",
                [site.into()],
            ))
            .await;
        if let Ok(rows) = rows {
            let stored: Vec<(uuid::Uuid, String)> = rows
                .iter()
                .map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap()))
                .collect();
            let ids: HashSet<uuid::Uuid> = stored.iter().map(|(id, _)| *id).collect();
            let stats = day_stats(&client, base, site, "2025-11-15").await;
            let users: HashSet<&String> = stored.iter().map(|(_, u)| u).collect();
            let complete = want.is_subset(&ids);
            if complete && stats["total_views"].as_u64() == Some(stored.len() as u64) {
                assert_eq!(ids.len(), stored.len(), "an event is stored twice");
                assert_eq!(stats["total_events"].as_u64(), Some(stored.len() as u64), "{stats}");
                assert_eq!(stats["unique_users"].as_u64(), Some(users.len() as u64), "{stats}");
                return stored.len();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not drained: {} of {} acknowledged stored, {} rows, stats {stats}",
                want.intersection(&ids).count(),
                want.len(),
                stored.len()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
