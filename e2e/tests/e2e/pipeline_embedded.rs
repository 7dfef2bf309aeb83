//! Embedded mode end to end: the api alone on SQLite, killed with SIGKILL in
//! the middle of the load and started again. Every 202 must have been durable
//! and every stat exact; requests cut off by the crash are retried with the
//! same event ids, as a client would.

use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use sea_orm::{Database, EntityTrait, PaginatorTrait};
use std::time::{Duration, Instant};
use testkit::check::{assert_stats_exact, metric};
use testkit::db::temp_sqlite;
use testkit::process::embedded_api;
use testkit::workload::{generate, plan_requests, send, truth};

const EVENTS: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_mode_is_exact_through_resends_and_a_crash() {
    let started = Instant::now();
    let file = temp_sqlite();
    let mut api = embedded_api(&file).await;
    let base = api.base();
    let mut w = generate(7, EVENTS, 4, 5, 1.0);
    let expected = truth(&w.events);
    let all: Vec<usize> = (0..EVENTS).collect();

    let metrics_url = format!("{}/metrics", api.ops());
    let sending = send(
        &base,
        &mut w.events,
        plan_requests(8, &all, 0.05),
        8,
        Some(Duration::from_secs(120)),
    );
    let crashing = async {
        loop {
            let written = metric(&metrics_url, "analytics_events_written_total").await;
            if written >= 5_000.0 {
                api.restart(); // SIGKILL, then the same binary on the same file and port
                return written;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let ((), written_before_crash) = tokio::join!(sending, crashing);
    api.wait_ready().await;

    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let resend: Vec<usize> = all.choose_multiple(&mut rng, EVENTS / 20).copied().collect();
    send(&base, &mut w.events, plan_requests(10, &resend, 0.3), 8, None).await;

    let db = Database::connect(format!("sqlite://{}", file.display()).as_str())
        .await
        .unwrap();
    let rows = entity::events::Entity::find().count(&db).await.unwrap();
    assert_eq!(rows, EVENTS as u64, "raw events stored");
    let compared = assert_stats_exact(&base, &w, &expected).await;
    println!(
        "embedded e2e: {EVENTS} events + {} resent, crash after {written_before_crash} written, \
         {compared} stats answers exact, total {:?}",
        resend.len(),
        started.elapsed()
    );
}
