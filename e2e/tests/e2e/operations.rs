//! Operating the services: readiness that follows its dependencies and
//! recovers by itself, and SIGTERM under load losing nothing that was
//! acknowledged. (Dead letters: processor/tests/pipeline.rs.)

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::db::TestDb;
use testkit::kafka::{create_topics, kafka_brokers};
use testkit::process::{migrate, KafkaStack, Service};

async fn readyz(svc: &Service) -> (u16, Value) {
    let r = reqwest::get(format!("{}/readyz", svc.ops())).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_waits_for_the_schema_and_recovers_without_restart() {
    let db = TestDb::create().await;
    let (topic, dlq) = create_topics(1).await;
    let brokers = kafka_brokers();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("KAFKA_BROKER_URLS", brokers.as_str()),
        ("KAFKA_TOPIC", topic.as_str()),
        ("KAFKA_DLQ_TOPIC", dlq.as_str()),
    ];
    let mut api = Service::start("analytics-api", &env);
    let mut processor = Service::start("analytics-processor", &env);
    let healthz = format!("{}/healthz", api.ops());
    api.wait_ok(&healthz, Duration::from_secs(30)).await;
    let healthz = format!("{}/healthz", processor.ops());
    processor.wait_ok(&healthz, Duration::from_secs(30)).await;
    for svc in [&api, &processor] {
        let (status, body) = readyz(svc).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "not_ready");
        assert!(
            body["checks"]["schema"].as_str().unwrap().contains("not migrated"),
            "{body}"
        );
        assert_eq!(body["checks"]["database"], "ok");
        assert_eq!(body["checks"]["kafka"], "ok");
    }
    // The public port of the api answers its own probes too.
    let r = reqwest::get(format!("{}/readyz", api.base())).await.unwrap();
    assert_eq!(r.status(), 503);

    migrate(&db.url, "up");
    api.wait_ready().await;
    processor.wait_ready().await;
    assert_eq!(
        readyz(&api).await.1["checks"],
        json!({"database": "ok", "kafka": "ok", "schema": "ok"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_keeps_every_acknowledged_event() {
    let mut stack = KafkaStack::start(3).await;
    let url = format!("{}/events/batch", stack.api.base());
    let client = reqwest::Client::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for worker in 0..4 {
        let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) || n > 2000 {
                    break;
                }
                let ids: Vec<String> = (0..50).map(|_| uuid::Uuid::new_v4().to_string()).collect();
                let body: Vec<Value> = ids.iter().map(|id| json!({"event_id": id, "site_id": format!("term-{worker}"), "event_type": "page_view", "path": "/", "timestamp": "2025-11-15T10:00:00Z"})).collect();
                match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status() == 202 => acked.extend(ids),
                    _ => {}
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stack.api.sigterm();
    let status = tokio::task::spawn_blocking(move || {
        let s = stack.api.child.wait().unwrap();
        (s, stack)
    })
    .await
    .unwrap();
    let (exit, mut stack) = status;
    assert!(exit.success(), "api exit on SIGTERM: {exit}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for s in senders {
        acked.extend(s.await.unwrap());
    }
    assert!(
        acked.len() >= 500,
        "load too light to mean anything: {} events acknowledged",
        acked.len()
    );

    let db = stack.db.connect().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let ids: Vec<uuid::Uuid> = acked.iter().map(|s| s.parse().unwrap()).collect();
    loop {
        let mut found = 0;
        for chunk in ids.chunks(1000) {
            found += entity::events::Entity::find()
                .filter(entity::events::Column::EventId.is_in(chunk.to_vec()))
                .count(&db)
                .await
                .unwrap();
        }
        if found == ids.len() as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{found} of {} acknowledged events stored",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stack.processor.sigterm();
    let exit = tokio::task::spawn_blocking(move || stack.processor.child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "processor exit on SIGTERM: {exit}");
    println!("sigterm: {} acknowledged events, all stored", ids.len());
}
