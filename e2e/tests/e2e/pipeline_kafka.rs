//! The whole pipeline in Kafka mode through the real binaries, the real
//! broker and PostgreSQL: 100,000 seeded events, single and batch requests,
//! 5% resent with the same `event_id`, the processor killed with SIGKILL in
//! the middle and started again; every stat must come out exact.

use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use sea_orm::{EntityTrait, PaginatorTrait};
use std::time::{Duration, Instant};
use testkit::check::{assert_stats_exact, metric};
use testkit::process::KafkaStack;
use testkit::workload::{generate, plan_requests, send, truth};

const EVENTS: usize = 100_000;

async fn wait_for_rows(db: &sea_orm::DatabaseConnection, want: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let n = entity::events::Entity::find().count(db).await.unwrap();
        if n == want {
            return;
        }
        assert!(
            n < want,
            "{n} raw events stored, more than the {want} distinct events sent"
        );
        assert!(
            Instant::now() < deadline,
            "only {n} of {want} events stored after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_pipeline_is_exact_through_resends_and_a_processor_crash() {
    let started = Instant::now();
    let mut stack = KafkaStack::start(3).await;
    let base = stack.api.base();
    let mut w = generate(20_251_115, EVENTS, 6, 7, 0.7);
    let expected = truth(&w.events);

    // First half, with the processor killed (SIGKILL) while it is writing.
    let first: Vec<usize> = (0..EVENTS / 2).collect();
    let proc_metrics = format!("{}/metrics", stack.processor.ops());
    let sending = send(&base, &mut w.events, plan_requests(1, &first, 0.08), 16, None);
    let killing = async {
        loop {
            let written = metric(&proc_metrics, "analytics_events_written_total").await;
            if written >= 10_000.0 {
                stack.processor.kill9();
                return written;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let ((), written_before_kill) = tokio::join!(sending, killing);
    stack.processor.restart();
    stack.processor.wait_ready().await;

    // Second half, then 5% of all events resent with the id they already have.
    let second: Vec<usize> = (EVENTS / 2..EVENTS).collect();
    send(&base, &mut w.events, plan_requests(2, &second, 0.08), 16, None).await;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let with_id: Vec<usize> = (0..EVENTS).filter(|&i| w.events[i].event_id.is_some()).collect();
    let resend: Vec<usize> = with_id.choose_multiple(&mut rng, EVENTS / 20).copied().collect();
    send(&base, &mut w.events, plan_requests(4, &resend, 0.3), 16, None).await;
    let sent_at = Instant::now();

    let db = stack.db.connect().await;
    wait_for_rows(&db, EVENTS as u64, Duration::from_secs(300)).await;
    let drained = sent_at.elapsed();
    let compared = assert_stats_exact(&base, &w, &expected).await;

    // Every distinct event is stored, but resends in other partitions may
    // still be on their way through the processor: wait for them a while.
    let dup_metrics = format!("{}/metrics", stack.processor.ops());
    let dup_deadline = Instant::now() + Duration::from_secs(60);
    let mut dup = metric(&dup_metrics, "analytics_events_duplicate_total").await;
    while dup < resend.len() as f64 && Instant::now() < dup_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        dup = metric(&dup_metrics, "analytics_events_duplicate_total").await;
    }
    assert!(
        dup >= resend.len() as f64,
        "the restarted processor skipped {dup} duplicates, fewer than the {} resent",
        resend.len()
    );
    let ingested = metric(
        &format!("{}/metrics", stack.api.ops()),
        "analytics_events_ingested_total",
    )
    .await;
    assert_eq!(ingested as usize, EVENTS + resend.len());
    println!(
        "kafka e2e: {EVENTS} events + {} resent, processor killed after {written_before_kill} written, \
         {compared} stats answers exact, drained {drained:?} after the last send, total {:?}",
        resend.len(),
        started.elapsed()
    );
}
