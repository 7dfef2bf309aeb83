//! `GET /`: until the dashboard lands, a page that says what is running and
//! how to send an event.

use crate::state::AppState;
use axum::extract::State;
use axum::response::Html;

pub async fn page(State(state): State<AppState>) -> Html<String> {
    let mode = if state.embedded {
        "embedded mode: events are written straight to the local SQLite database"
    } else {
        "Kafka mode: events go through Kafka to the processor and into PostgreSQL"
    };
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Analytics</title>
<style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}}
pre{{background:#f3f3f3;padding:.75rem;overflow-x:auto}}</style></head>
<body><h1>Analytics is running</h1>
<p>This is the analytics api, version {version}, in {mode}.</p>
<h2>Send an event</h2>
<pre>curl -X POST http://localhost:8080/events -H 'Content-Type: application/json' \
  -d '{{"site_id":"my-site","event_type":"page_view","path":"/home","user_id":"user-1"}}'</pre>
<h2>Read the stats</h2>
<pre>curl 'http://localhost:8080/stats?site_id=my-site&amp;date=YYYY-MM-DD'</pre>
<p>Health: <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>.</p>
</body></html>"#,
        version = env!("CARGO_PKG_VERSION"),
    ))
}
