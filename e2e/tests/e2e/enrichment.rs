//! Enrichment end to end, in both modes, through the real binaries: browser
//! requests in Plausible's format (`/api/event`, `text/plain`) and server
//! requests (`/events`, `/events/batch`) from known addresses behind a
//! trusted proxy, with real User-Agents. Every stored event must carry the
//! expected visitor, source, channel, campaign, browser, OS, device and
//! country; bots must be dropped and counted; `/stats` must count views,
//! events, users and visitors exactly; and no client address or
//! User-Agent may be found in any table, log line or Kafka message.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, EntityTrait, Statement};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use testkit::check::metric;
use testkit::db::temp_sqlite;
use testkit::process::{KafkaStack, Service};

const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const HEADLESS: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
const CURL: &str = "curl/8.5.0";

/// Client addresses, reported by the test acting as the trusted proxy.
const US_ADDR: &str = "8.8.8.8";
const NL_ADDR: &str = "193.0.6.139";
const BR_ADDR: &str = "200.160.2.3";

const SITE: &str = "shop.test";

/// What must never be stored, logged or queued.
const SECRETS: [&str; 7] = [
    US_ADDR,
    NL_ADDR,
    BR_ADDR,
    "Mozilla/5.0",
    "Googlebot",
    "HeadlessChrome",
    CURL,
];

/// One stored event as expected: (event type, path) identifies it.
struct Expected {
    event_type: &'static str,
    path: &'static str,
    user: &'static str,
    /// Equal labels: the same cookieless visitor; `""`: none (a user).
    visitor: &'static str,
    source: &'static str,
    channel: &'static str,
    utm: (&'static str, &'static str),
    agent: (&'static str, &'static str, &'static str),
    country: &'static str,
}

/// (event type, path, user, visitor label, source, channel, (utm source,
/// medium), (browser, OS, device), country)
#[allow(clippy::too_many_arguments)]
const fn row(
    event_type: &'static str,
    path: &'static str,
    user: &'static str,
    visitor: &'static str,
    source: &'static str,
    channel: &'static str,
    utm: (&'static str, &'static str),
    agent: (&'static str, &'static str, &'static str),
    country: &'static str,
) -> Expected {
    Expected {
        event_type,
        path,
        user,
        visitor,
        source,
        channel,
        utm,
        agent,
        country,
    }
}

#[rustfmt::skip]
const EXPECTED: [Expected; 7] = [
    row("page_view", "/", "", "A", "newsletter", "Email", ("newsletter", "email"), ("Chrome", "Windows", "desktop"), "US"),
    row("page_view", "/pricing", "", "A", "Direct", "Direct", ("", ""), ("Chrome", "Windows", "desktop"), "US"),
    row("page_view", "/landing", "", "B", "Google", "Organic Search", ("", ""), ("Safari", "iOS", "mobile"), "NL"),
    row("Signup", "/signup", "", "B", "Google", "Organic Search", ("", ""), ("Safari", "iOS", "mobile"), "NL"),
    row("page_view", "/blog", "", "C", "Hacker News", "Organic Social", ("", ""), ("Firefox", "Linux", "desktop"), "US"),
    row("api_call", "/api", "u1", "", "Direct", "Direct", ("", ""), ("curl", "", "desktop"), "BR"),
    row("page_view", "/docs", "", "D", "GitHub", "Unassigned", ("github", ""), ("Firefox", "Linux", "desktop"), "BR"),
];

async fn plausible(base: &str, agent: &str, addr: &str, body: Value) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/event"))
        .header("content-type", "text/plain")
        .header("user-agent", agent)
        .header("x-forwarded-for", addr)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn server(base: &str, path: &str, addr: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("user-agent", CURL)
        .header("x-forwarded-for", addr)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Sends every request of the scenario and checks each answer.
async fn send_all(base: &str) {
    let sent = [
        (
            CHROME,
            US_ADDR,
            json!({"n":"pageview","u":"https://shop.test/?utm_source=newsletter&utm_medium=email","d":SITE,"r":null}),
        ),
        (
            CHROME,
            US_ADDR,
            json!({"name":"pageview","url":"https://shop.test/pricing","domain":SITE,"referrer":"https://shop.test/"}),
        ),
        (
            IPHONE,
            NL_ADDR,
            json!({"n":"pageview","u":"https://shop.test/landing","d":SITE,"r":"https://www.google.com/"}),
        ),
        (
            IPHONE,
            NL_ADDR,
            json!({"n":"Signup","u":"https://shop.test/signup","d":SITE,"r":"https://www.google.com/","p":{"plan":"pro"}}),
        ),
        (
            FIREFOX,
            US_ADDR,
            json!({"n":"pageview","u":"https://www.shop.test/blog","d":SITE,"r":"https://news.ycombinator.com/item?id=1"}),
        ),
        // Not events: an engagement report and two bots.
        (
            CHROME,
            US_ADDR,
            json!({"n":"engagement","u":"https://shop.test/","d":SITE,"sd":50,"e":1200,"v":36}),
        ),
        (
            GOOGLEBOT,
            US_ADDR,
            json!({"n":"pageview","u":"https://shop.test/","d":SITE}),
        ),
        (
            HEADLESS,
            NL_ADDR,
            json!({"n":"pageview","u":"https://shop.test/","d":SITE}),
        ),
    ];
    for (agent, addr, body) in sent {
        assert_eq!(plausible(base, agent, addr, body).await, (202, "ok".to_string()));
    }
    // A server posting with curl: its own agent never drops its events.
    let (status, answer) = server(
        base,
        "/events",
        BR_ADDR,
        json!({"site_id":SITE,"event_type":"api_call","path":"/api","user_id":"u1"}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    // A server forwarding its visitors' agents: a bot's event is dropped.
    let (status, answer) = server(
        base,
        "/events/batch",
        BR_ADDR,
        json!([
            {"site_id":SITE,"event_type":"page_view","user_agent":GOOGLEBOT,"url":"https://shop.test/x"},
            {"site_id":SITE,"event_type":"page_view","user_agent":FIREFOX,"url":"https://shop.test/docs?utm_source=github"}
        ]),
    )
    .await;
    assert_eq!((status, answer), (202, json!({"accepted":1,"dropped_bots":1})));
}

/// Waits until `/stats` has counted every kept event, then checks it.
async fn check_stats(base: &str) {
    let today = chrono::Utc::now().date_naive();
    let url = format!("{base}/stats?site_id={SITE}&date={today}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let stats = loop {
        let s: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if s["total_events"] == json!(EXPECTED.len()) || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let views = EXPECTED.iter().filter(|e| e.event_type == "page_view").count();
    let mut visitors: Vec<&str> = EXPECTED
        .iter()
        .map(|e| if e.user.is_empty() { e.visitor } else { e.user })
        .collect();
    visitors.sort_unstable();
    visitors.dedup();
    assert_eq!(
        (
            &stats["total_events"],
            &stats["total_views"],
            &stats["unique_users"],
            &stats["visitors"]
        ),
        (&json!(EXPECTED.len()), &json!(views), &json!(1), &json!(visitors.len())),
        "{stats}"
    );
}

/// Every stored event against `EXPECTED`.
async fn check_rows(db: &DatabaseConnection) {
    let rows = entity::events::Entity::find().all(db).await.unwrap();
    assert_eq!(rows.len(), EXPECTED.len(), "{rows:#?}");
    let mut ids: HashMap<&str, i64> = HashMap::new();
    for want in &EXPECTED {
        let row = rows
            .iter()
            .find(|r| r.event_type == want.event_type && r.path == want.path)
            .unwrap_or_else(|| panic!("no stored {} {}", want.event_type, want.path));
        let got = (
            row.user_id.as_str(),
            row.hostname.as_str(),
            row.source.as_str(),
            row.channel.as_str(),
            (row.utm_source.as_str(), row.utm_medium.as_str()),
            (row.browser.as_str(), row.os.as_str(), row.device.as_str()),
            row.country.as_str(),
        );
        let hostname = if want.path == "/api" { "" } else { SITE };
        assert_eq!(
            got,
            (
                want.user,
                hostname,
                want.source,
                want.channel,
                want.utm,
                want.agent,
                want.country
            ),
            "{} {}",
            want.event_type,
            want.path
        );
        match (want.visitor, row.visitor_id) {
            ("", None) => {}
            (label, Some(id)) if !label.is_empty() => {
                assert_eq!(*ids.entry(label).or_insert(id), id, "visitor {label} has one id");
            }
            other => panic!("{} {}: visitor {other:?}", want.event_type, want.path),
        }
    }
    let mut distinct: Vec<i64> = ids.values().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "different visitors, different ids: {ids:?}");
}

/// Every row of every table as text.
async fn every_row(db: &DatabaseConnection) -> String {
    let backend = db.get_database_backend();
    let list = match backend {
        DbBackend::Postgres => "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
        _ => "SELECT name FROM sqlite_master WHERE type = 'table'",
    };
    let tables: Vec<String> = db
        .query_all_raw(Statement::from_string(backend, list))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index(0).unwrap())
        .collect();
    let mut out = String::new();
    for table in tables {
        let sql = match backend {
            DbBackend::Postgres => format!("SELECT CAST(t.* AS TEXT) FROM {table} t"),
            _ => {
                let cols: Vec<String> = db
                    .query_all_raw(Statement::from_string(backend, format!("SELECT name FROM pragma_table_info('{table}')")))
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.try_get_by_index::<String>(0).unwrap())
                    // Blobs (ids, sets) as hex: raw bytes are not text.
                    .map(|c| {
                        format!(
                            "COALESCE(CASE WHEN typeof(\"{c}\") = 'blob' THEN hex(\"{c}\") ELSE CAST(\"{c}\" AS TEXT) END, '')"
                        )
                    })
                    .collect();
                format!("SELECT {} FROM \"{table}\"", cols.join(" || '|' || "))
            }
        };
        for row in db.query_all_raw(Statement::from_string(backend, sql)).await.unwrap() {
            let text: Option<String> = row.try_get_by_index(0).unwrap_or_else(|e| panic!("{table}: {e}"));
            out.push_str(&text.unwrap_or_default());
            out.push('\n');
        }
    }
    out
}

/// A log worth scanning: it has the requests' access lines.
fn assert_logged_requests(log: &str) {
    assert!(log.contains("/api/event") && log.contains("/events/batch"), "{log}");
}

fn assert_no_secrets(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} holds `{secret}`");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mode_enriches_and_forgets_the_client() {
    let file = temp_sqlite();
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let geoip = testkit::geoip_database();
    let mut api = Service::start(
        "analytics-api",
        &[
            ("DATABASE_URL", &url),
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
            ("GEOIP_DATABASE", &geoip),
            ("RUST_LOG", "debug"),
        ],
    );
    api.wait_ready().await;
    send_all(&api.base()).await;
    check_stats(&api.base()).await;
    let db = Database::connect(url.as_str()).await.unwrap();
    check_rows(&db).await;
    check_bot_metrics(&api.ops()).await;
    let rows = every_row(&db).await;
    assert!(rows.contains("Organic Search"), "the scan reads the events");
    assert_no_secrets("a table", &rows);
    assert_logged_requests(&api.logs());
    assert_no_secrets("the api's log", &api.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_mode_enriches_and_forgets_the_client() {
    let geoip = testkit::geoip_database();
    let stack = KafkaStack::start_with(
        1,
        &[
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
            ("GEOIP_DATABASE", &geoip),
            ("RUST_LOG", "debug"),
        ],
    )
    .await;
    send_all(&stack.api.base()).await;
    check_stats(&stack.api.base()).await;
    let db = stack.db.connect().await;
    check_rows(&db).await;
    check_bot_metrics(&stack.api.ops()).await;
    let rows = every_row(&db).await;
    assert!(rows.contains("Organic Search"), "the scan reads the events");
    assert_no_secrets("a table", &rows);
    assert_logged_requests(&stack.api.logs());
    assert_no_secrets("the api's log", &stack.api.logs());
    assert_no_secrets("the processor's log", &stack.processor.logs());
    let messages = topic_messages(&stack.topic, EXPECTED.len()).await;
    assert!(
        messages.contains("\"context\""),
        "the messages carry the context: {messages}"
    );
    assert_no_secrets("a Kafka message", &messages);
}

async fn check_bot_metrics(ops: &str) {
    let url = format!("{ops}/metrics");
    let crawler = metric(&url, "analytics_events_dropped_bots_total{reason=\"crawler_token\"}").await;
    let headless = metric(&url, "analytics_events_dropped_bots_total{reason=\"headless\"}").await;
    assert_eq!((crawler, headless), (2.0, 1.0));
}

/// Every message of the topic, one a line.
async fn topic_messages(topic: &str, want: usize) -> String {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", testkit::kafka::kafka_brokers())
        .set("group.id", testkit::db::unique_name("scan"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let (mut out, mut n) = (String::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while n < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            out.push_str(&String::from_utf8_lossy(m.payload().unwrap_or_default()));
            out.push('\n');
            n += 1;
        }
    }
    assert_eq!(n, want, "messages read from {topic}");
    out
}
