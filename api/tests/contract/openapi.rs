//! The OpenAPI document (`/openapi.json`) and its reference page
//! (`/docs`), from the real router: the document is OpenAPI 3.1 that
//! utoipa reads back, every `$ref` in it resolves, and its operations are
//! exactly the routes the router registers (read from the route files'
//! `.route(…)` calls, so a route added without `#[utoipa::path]` fails
//! here), each of them answered by the router (not its 404 or 405).
use serde_json::Value;
use std::collections::BTreeSet;
use testkit::inproc::Running;

/// The files whose `.route(…)` calls make the api's router.
const ROUTE_FILES: [&str; 4] = [
    "src/routes/mod.rs",
    "src/routes/admin.rs",
    "src/routes/conversions.rs",
    "../core/src/ops/health.rs",
];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `(METHOD, path)` of every `.route("path", get(…).post(…))` in `source`:
/// the method calls at the call's own nesting level.
fn routes_in(source: &str) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let Some(open) = rest.find('"') else { break };
        let after_open = &rest[open + 1..];
        let Some(close) = after_open.find('"') else { break };
        let path = &after_open[..close];
        // The call's arguments: up to its closing parenthesis.
        let (mut depth, mut end) = (1usize, 0usize);
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let args = &rest[..end];
        let mut level = 1usize;
        let mut word = String::new();
        for c in args.chars() {
            match c {
                '(' => {
                    if level == 1 && METHODS.contains(&word.as_str()) {
                        found.insert((word.to_uppercase(), path.to_string()));
                    }
                    level += 1;
                    word.clear();
                }
                ')' => {
                    level -= 1;
                    word.clear();
                }
                c if c.is_ascii_alphanumeric() || c == '_' => word.push(c),
                _ => word.clear(),
            }
        }
        rest = &rest[end..];
    }
    found
}

fn registered_routes() -> BTreeSet<(String, String)> {
    let dir = env!("CARGO_MANIFEST_DIR");
    ROUTE_FILES
        .iter()
        .flat_map(|f| routes_in(&std::fs::read_to_string(format!("{dir}/{f}")).unwrap()))
        .collect()
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                found.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    found
}

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn route_scanner_reads_methods_at_the_calls_level() {
    let src = r#".route("/a/{x}", delete(remove).patch(change)) .route("/h", get(move || { let x = post(1); x }))"#;
    let found: Vec<_> = routes_in(src).into_iter().collect();
    assert_eq!(
        found,
        [
            ("DELETE".to_string(), "/a/{x}".to_string()),
            ("GET".to_string(), "/h".to_string()),
            ("PATCH".to_string(), "/a/{x}".to_string()),
        ]
    );
}

#[tokio::test]
async fn the_document_describes_every_route_and_docs_renders_it() {
    let api = Running::embedded().await;
    // Redirects are answers here (303 of /login, /logout, /share).
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let r = client.get(format!("{}/openapi.json", api.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let text = r.text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();

    // OpenAPI 3.1, which utoipa's own model reads back whole.
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let parsed: utoipa::openapi::OpenApi = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed.info.title, "Analytics");
    // Every reference names a component that exists.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
        assert!(doc["components"]["schemas"].get(name).is_some(), "{r} does not resolve");
    }
    for scheme in ["bearer", "session", "share_link"] {
        assert!(doc["components"]["securitySchemes"].get(scheme).is_some(), "{scheme}");
    }

    // Exactly the router's routes.
    let registered = registered_routes();
    let documented = documented_routes(&doc);
    assert!(registered.len() > 30, "the route scanner found only {registered:?}");
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty(),
        "routes without #[utoipa::path]: {undocumented:?}"
    );
    assert!(unrouted.is_empty(), "documented but not routed: {unrouted:?}");

    // Each operation is the router's: neither its fallback 404 (no body)
    // nor a 405; and each has an id, a success and every error as ErrorBody.
    for (method, path) in &documented {
        let op = &doc["paths"][path][method.to_lowercase()];
        assert!(op["operationId"].is_string(), "{method} {path}");
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2') || s.starts_with('3')),
            "{method} {path}: no success"
        );
        let url = format!("{}{}", api.base, path.replace(['{', '}'], ""));
        let r = client.request(method.parse().unwrap(), &url).send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        assert_ne!(status, 405, "{method} {path}");
        assert!(status != 404 || !body.is_empty(), "{method} {path}: not routed");
        assert!(
            responses.contains_key(&status.to_string()),
            "{method} {path}: {status} is not documented"
        );
    }

    // The reference page: HTML that loads the embedded Redoc under a CSP
    // that allows it, and Redoc itself.
    let r = client.get(format!("{}/docs", api.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<redoc spec-url="/openapi.json">"#), "{html}");
    assert!(html.contains(r#"<script src="/docs/redoc.standalone.js">"#), "{html}");
    let r = client
        .get(format!("{}/docs/redoc.standalone.js", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(r.text().await.unwrap().contains("ReDoc"));

    api.shutdown().await;
}
