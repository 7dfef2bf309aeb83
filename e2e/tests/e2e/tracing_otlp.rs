//! One trace from the HTTP request through the Kafka message to the
//! processor's database write, received by an OTLP/HTTP receiver in the test,
//! and the same trace id in the api's JSON log lines.

use axum::{body::Bytes, extract::State, routing::post, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::process::KafkaStack;

type Received = Arc<Mutex<Vec<Value>>>;

/// Spans as (service, name, traceId, spanId, parentSpanId, attributes).
fn spans(received: &Received) -> Vec<(String, String, String, String, String, Value)> {
    let mut out = Vec::new();
    for body in received.lock().unwrap().iter() {
        for rs in body["resourceSpans"].as_array().into_iter().flatten() {
            let service = rs["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["key"] == "service.name")
                .and_then(|a| a["value"]["stringValue"].as_str())
                .unwrap_or_default()
                .to_string();
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                    out.push((
                        service.clone(),
                        text("name"),
                        text("traceId"),
                        text("spanId"),
                        text("parentSpanId"),
                        s["attributes"].clone(),
                    ));
                }
            }
        }
    }
    out
}

fn attr(attrs: &Value, key: &str) -> Value {
    attrs
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["key"] == key)
        .map(|a| a["value"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_from_http_through_kafka_to_the_database_write() {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/v1/traces",
            post(|State(r): State<Received>, body: Bytes| async move {
                r.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                "{}"
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let stack = KafkaStack::start_with(
        1,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "info,analytics_api=debug"),
        ],
    )
    .await;
    let r = reqwest::Client::new()
        .post(format!("{}/events", stack.api.base()))
        .json(
            &json!({"site_id": "traced", "event_type": "page_view", "path": "/t", "timestamp": "2025-11-15T10:00:00Z"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let deadline = Instant::now() + Duration::from_secs(60);
    let (http, send, process, write) = loop {
        let all = spans(&received);
        let http = all
            .iter()
            .find(|s| s.0 == "analytics-api" && s.1 == "POST /events")
            .cloned();
        if let Some(http) = http {
            let same: Vec<_> = all.iter().filter(|s| s.2 == http.2).cloned().collect();
            let find = |svc: &str, prefix: &str| same.iter().find(|s| s.0 == svc && s.1.starts_with(prefix)).cloned();
            if let (Some(send), Some(process), Some(write)) = (
                find("analytics-api", "send "),
                find("analytics-processor", "process "),
                find("analytics-processor", "INSERT events"),
            ) {
                break (http, send, process, write);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no complete trace received; spans: {:?}",
            all.iter().map(|s| (&s.0, &s.1, &s.2)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Parent chain: HTTP server → producer send → (Kafka) → consumer process → DB write.
    assert_eq!(send.4, http.3, "send is a child of the HTTP span");
    assert_eq!(
        process.4, send.3,
        "process continues the producer's context from the traceparent header"
    );
    assert_eq!(write.4, process.3, "the database write is a child of the batch span");
    assert_eq!(process.1, format!("process {}", stack.topic));
    assert_eq!(attr(&http.5, "http.request.method")["stringValue"], "POST");
    assert_eq!(attr(&http.5, "http.route")["stringValue"], "/events");
    assert_eq!(attr(&send.5, "messaging.system")["stringValue"], "kafka");
    assert_eq!(
        attr(&process.5, "messaging.destination.name")["stringValue"],
        stack.topic.as_str()
    );

    let trace_id = http.2.to_lowercase();
    let logged = stack
        .api
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|l| l.to_string().contains(&trace_id));
    assert!(
        logged,
        "no JSON log line of the api carries trace id {trace_id}:\n{}",
        stack.api.logs()
    );
}
