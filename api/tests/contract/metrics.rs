//! Both `/metrics` outputs read by a real Prometheus text-format parser, each
//! family checked against what the test did (requests, rejections, acks,
//! consumption, writes, duplicates, batches, lag), and every label key from
//! the bounded set.
use prometheus_parse::{Scrape, Value};
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::inproc::Stack;

pub(crate) async fn scrape(url: &str) -> Scrape {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of `name` whose labels include every pair in `labels`.
pub(crate) fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .filter(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(b) => b.last().map_or(0.0, |h| h.count),
            Value::Summary(_) => f64::NAN,
        })
        .reduce(|a, b| a + b)
}

fn assert_bounded_labels(s: &Scrape) {
    let allowed = [
        "method",
        "route",
        "status",
        "reason",
        "partition",
        "scope",
        "version",
        "component",
        "le",
        "quantile",
    ];
    for x in &s.samples {
        assert!(x.metric.starts_with("analytics_"), "unprefixed metric {}", x.metric);
        for (k, _) in x.labels.iter() {
            assert!(
                allowed.contains(&k.as_str()),
                "label `{k}` on {} is not in the bounded set",
                x.metric
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metric_families_move_as_the_traffic_says() {
    let stack = Stack::start(1).await;
    let c = reqwest::Client::new();
    let base = stack.api.base.clone();
    let ev = |i: usize| json!({"site_id": "m", "event_type": "page_view", "path": format!("/{i}"), "user_id": format!("u{}", i % 4), "timestamp": "2025-11-15T10:00:00Z"});
    let once = json!({"event_id": "0192f0c4-3b1a-7c00-8000-0000000000aa", "site_id": "m", "event_type": "click", "timestamp": "2025-11-15T10:00:00Z"});
    for i in 0..3 {
        assert_eq!(
            c.post(format!("{base}/events"))
                .json(&ev(i))
                .send()
                .await
                .unwrap()
                .status(),
            202
        );
    }
    let batch: Vec<_> = (10..20).map(ev).collect();
    assert_eq!(
        c.post(format!("{base}/events/batch"))
            .json(&batch)
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    for _ in 0..2 {
        assert_eq!(
            c.post(format!("{base}/events"))
                .json(&once)
                .send()
                .await
                .unwrap()
                .status(),
            202
        );
    }
    assert_eq!(
        c.post(format!("{base}/events"))
            .json(&json!({"site_id": ""}))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        c.post(format!("{base}/events"))
            .body("x")
            .send()
            .await
            .unwrap()
            .status(),
        415
    );

    // 15 messages, 14 distinct events; wait for the processor and its lag task.
    let proc_url = format!("{}/metrics", stack.processor.ops);
    let deadline = Instant::now() + Duration::from_secs(60);
    let p = loop {
        let p = scrape(&proc_url).await;
        if value(&p, "analytics_events_written_total", &[]) == Some(14.0)
            && value(&p, "analytics_processor_lag_messages", &[("partition", "0")]).is_some()
        {
            break p;
        }
        assert!(Instant::now() < deadline, "processor metrics did not settle");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        value(&p, "analytics_processor_messages_consumed_total", &[]),
        Some(15.0)
    );
    assert_eq!(value(&p, "analytics_events_duplicate_total", &[]), Some(1.0));
    assert_eq!(value(&p, "analytics_processor_dead_lettered_total", &[]), Some(0.0));
    assert!(value(&p, "analytics_processor_batch_size", &[]).unwrap() >= 1.0);
    assert_eq!(
        value(&p, "analytics_processor_batch_size_sum", &[]),
        Some(15.0),
        "events over all batches"
    );
    assert!(value(&p, "analytics_writer_transaction_duration_seconds", &[]).unwrap() >= 1.0);
    assert_eq!(
        value(&p, "analytics_writer_known_users", &[]),
        Some(4.0),
        "users u0 to u3 of site m"
    );
    assert_eq!(
        value(&p, "analytics_processor_lag_messages", &[("partition", "0")]),
        Some(0.0)
    );
    assert!(value(&p, "analytics_processor_lag_seconds", &[]).unwrap() >= 0.0);
    assert_eq!(
        value(&p, "analytics_build_info", &[("component", "processor")]),
        Some(1.0)
    );
    assert_bounded_labels(&p);

    let a = scrape(&format!("{}/metrics", stack.api.ops)).await;
    let req = |route: &str, status: &str| {
        value(
            &a,
            "analytics_http_requests_total",
            &[("method", "POST"), ("route", route), ("status", status)],
        )
    };
    assert_eq!(req("/events", "202"), Some(5.0));
    assert_eq!(req("/events/batch", "202"), Some(1.0));
    assert_eq!(req("/events", "400"), Some(1.0));
    assert_eq!(req("/events", "415"), Some(1.0));
    assert_eq!(
        value(&a, "analytics_http_request_duration_seconds", &[("route", "/events")]),
        Some(7.0)
    );
    assert_eq!(value(&a, "analytics_events_ingested_total", &[]), Some(15.0));
    assert_eq!(
        value(&a, "analytics_events_rejected_total", &[("reason", "invalid")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &a,
            "analytics_events_rejected_total",
            &[("reason", "unsupported_media_type")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&a, "analytics_producer_delivery_duration_seconds", &[]),
        Some(6.0),
        "one observation per acknowledged request"
    );
    assert!(value(&a, "analytics_producer_queue_depth", &[]).is_some());
    assert_eq!(value(&a, "analytics_build_info", &[("component", "api")]), Some(1.0));
    assert_bounded_labels(&a);
}
