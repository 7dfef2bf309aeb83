//! Logs and traces. Logs: `tracing`, JSON lines in containers, readable lines
//! on a terminal; the request or batch span's `trace_id` is in every line
//! logged inside it. Traces: OpenTelemetry over OTLP/HTTP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, with W3C trace context propagated
//! through Kafka headers.

use super::config::LogFormat;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Holds the trace exporter; `shutdown` flushes spans still buffered.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            // The exporter's blocking HTTP client must not be dropped on an
            // async worker thread.
            let _ = std::thread::spawn(move || p.shutdown()).join();
        }
    }
}

/// Command-line tools log to stderr so that stdout stays their output.
pub fn init_to(format: LogFormat, to_stderr: bool) {
    let _ = init_with(format, to_stderr, "", None);
}

/// A command-line tool's logs, to stderr: filtered by the variable `env`
/// (not `RUST_LOG`, which a tool run inside a service's container inherits
/// from the service), else `default`.
pub fn init_cli(format: LogFormat, env: &str, default: &str) {
    let filter = EnvFilter::try_from_env(env).unwrap_or_else(|_| EnvFilter::new(default));
    let _ = init_filtered(format, true, "", None, filter);
}

/// `service` names the resource in traces; `otlp_endpoint` (the base URL, as
/// in `OTEL_EXPORTER_OTLP_ENDPOINT`) turns export on.
pub fn init_with(format: LogFormat, to_stderr: bool, service: &'static str, otlp_endpoint: Option<&str>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    init_filtered(format, to_stderr, service, otlp_endpoint, filter)
}

fn init_filtered(
    format: LogFormat,
    to_stderr: bool,
    service: &'static str,
    otlp_endpoint: Option<&str>,
    filter: EnvFilter,
) -> Telemetry {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = otlp_endpoint.and_then(|endpoint| match build_provider(service, endpoint) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT: trace export disabled: {e}");
            None
        }
    });
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("analytics")));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    // try_init: a second call (tests, embedded callers) keeps the first set-up.
    let _ = match (format, to_stderr) {
        (LogFormat::Json, true) => registry
            .with(fmt::layer().json().flatten_event(true).with_writer(std::io::stderr))
            .try_init(),
        (LogFormat::Json, false) => registry.with(fmt::layer().json().flatten_event(true)).try_init(),
        (LogFormat::Pretty, true) => registry
            .with(fmt::layer().with_target(false).with_writer(std::io::stderr))
            .try_init(),
        (LogFormat::Pretty, false) => registry.with(fmt::layer().with_target(false)).try_init(),
    };
    Telemetry { provider }
}

fn build_provider(service: &'static str, endpoint: &str) -> Result<SdkTracerProvider, String> {
    let protocol = match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
        Ok("http/json") => Protocol::HttpJson,
        _ => Protocol::HttpBinary,
    };
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    // Built on a plain thread: the blocking HTTP client refuses to be created
    // inside the async runtime.
    std::thread::spawn(move || {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(url)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service).build())
            .build())
    })
    .join()
    .map_err(|_| "exporter set-up panicked".to_string())?
}

/// The current span's trace id as hex, or empty when no trace is active.
pub fn trace_id(span: &tracing::Span) -> String {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        sc.trace_id().to_string()
    } else {
        String::new()
    }
}

/// The `traceparent` header value for `span`, if a trace is active.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    struct One(Option<String>);
    impl Injector for One {
        fn set(&mut self, key: &str, value: String) {
            if key == "traceparent" {
                self.0 = Some(value);
            }
        }
    }
    let mut carrier = One(None);
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier.0
}

/// The remote context carried by a `traceparent` value.
pub fn context_from_traceparent(value: &str) -> Context {
    struct One<'a>(&'a str);
    impl Extractor for One<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            (key == "traceparent").then_some(self.0)
        }
        fn keys(&self) -> Vec<&str> {
            vec!["traceparent"]
        }
    }
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&One(value)))
}

/// An error and its sources, `: `-separated, for one log line (or a dead
/// letter's reason): `Display` alone drops the causes.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
