//! Logging set-up: JSON lines in containers, readable lines on a terminal.

use crate::config::LogFormat;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Services log to stdout (the container convention); command-line tools
/// pass `to_stderr` so that their stdout stays their output.
pub fn init(format: LogFormat) {
    init_to(format, false);
}

pub fn init_to(format: LogFormat, to_stderr: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // try_init: tests and embedded callers may already have a subscriber.
    let _ = match format {
        LogFormat::Json if to_stderr => registry
            .with(fmt::layer().json().flatten_event(true).with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry.with(fmt::layer().json().flatten_event(true)).try_init(),
        LogFormat::Pretty if to_stderr => registry
            .with(fmt::layer().with_target(false).with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().with_target(false)).try_init(),
    };
}
