//! Configuration shared by the binaries. Each setting is an environment
//! variable and a `--flag`; a malformed value stops the process at start with
//! one line that names the variable.

use clap::{Args, ValueEnum};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Log line format: `json` in containers, `pretty` on a terminal.
    #[arg(long, env = "LOG_FORMAT", value_name = "LOG_FORMAT", default_value = "pretty")]
    pub log_format: LogFormat,
    /// Prometheus metrics (and, for the processor, health) listen address.
    #[arg(
        long,
        env = "METRICS_ADDR",
        value_name = "METRICS_ADDR",
        default_value = "0.0.0.0:9090"
    )]
    pub metrics_addr: std::net::SocketAddr,
    /// OTLP/HTTP collector base URL (e.g. http://otel-collector:4318); unset: no trace export.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        value_name = "OTEL_EXPORTER_OTLP_ENDPOINT"
    )]
    pub otlp_endpoint: Option<String>,
    /// Seconds to finish in-flight work after SIGTERM before exiting anyway.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_SECONDS",
        value_name = "SHUTDOWN_GRACE_SECONDS",
        default_value = "20"
    )]
    pub shutdown_grace_seconds: u64,
}

impl TelemetryArgs {
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }
}

/// Whether retention also drops the rollups' rows of old days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RetainRollups {
    /// Keep them: they hold no personal data, and old days keep answering.
    Keep,
    /// Drop them with the raw events.
    Drop,
}

/// Retention by age, run by the maintenance task of whichever process
/// writes (the processor; the api in embedded mode).
#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// Raw events older than this many days are deleted (0: kept forever).
    #[arg(long, env = "RETENTION_DAYS", value_name = "RETENTION_DAYS", default_value = "0")]
    pub retention_days: u32,
    /// Whether the rollups of those days go too: keep or drop.
    #[arg(
        long,
        env = "RETENTION_ROLLUPS",
        value_name = "RETENTION_ROLLUPS",
        default_value = "keep"
    )]
    pub retention_rollups: RetainRollups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Comma-separated `host:port` list. Unset on the api: embedded mode.
    #[arg(long, env = "KAFKA_BROKER_URLS", value_name = "KAFKA_BROKER_URLS", value_parser = parse_brokers)]
    pub broker_urls: Option<String>,
    #[arg(
        long = "kafka-topic",
        env = "KAFKA_TOPIC",
        value_name = "KAFKA_TOPIC",
        default_value = "events"
    )]
    pub topic: String,
    /// Where the processor sends messages it can never parse.
    #[arg(
        long = "kafka-dlq-topic",
        env = "KAFKA_DLQ_TOPIC",
        value_name = "KAFKA_DLQ_TOPIC",
        default_value = "events.dlq"
    )]
    pub dlq_topic: String,
    #[arg(
        long = "kafka-security-protocol",
        env = "KAFKA_SECURITY_PROTOCOL",
        value_name = "KAFKA_SECURITY_PROTOCOL",
        default_value = "plaintext"
    )]
    pub security_protocol: SecurityProtocol,
    #[arg(
        long = "kafka-sasl-mechanism",
        env = "KAFKA_SASL_MECHANISM",
        value_name = "KAFKA_SASL_MECHANISM"
    )]
    pub sasl_mechanism: Option<String>,
    #[arg(
        long = "kafka-sasl-username",
        env = "KAFKA_SASL_USERNAME",
        value_name = "KAFKA_SASL_USERNAME"
    )]
    pub sasl_username: Option<String>,
    #[arg(
        long = "kafka-sasl-password",
        env = "KAFKA_SASL_PASSWORD",
        value_name = "KAFKA_SASL_PASSWORD",
        hide_env_values = true
    )]
    pub sasl_password: Option<String>,
    #[arg(
        long = "kafka-ssl-ca-location",
        env = "KAFKA_SSL_CA_LOCATION",
        value_name = "KAFKA_SSL_CA_LOCATION"
    )]
    pub ssl_ca_location: Option<String>,
}

/// Accepts `host:port[,host:port…]`; an optional `kafka://`/`tcp://` scheme is
/// tolerated because operators paste URLs.
pub fn parse_brokers(raw: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for part in raw.split(',').map(str::trim) {
        let hostport = part
            .strip_prefix("kafka://")
            .or_else(|| part.strip_prefix("tcp://"))
            .unwrap_or(part);
        let (host, port) = hostport
            .rsplit_once(':')
            .ok_or_else(|| format!("`{part}` is not host:port"))?;
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'));
        if !host_ok {
            return Err(format!("`{part}` has no valid host"));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(format!("`{part}` has no valid port")),
        }
        out.push(hostport.to_string());
    }
    Ok(out.join(","))
}

/// A database URL that never shows its password: `Debug` and `Display`
/// print it with the userinfo's password as `***`, `--help` hides the
/// environment's value, and a malformed one is reported without the value
/// (clap would echo a rejected value, so clap accepts any and `check` says
/// what is wrong). `expose` is for the driver alone.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// For clap: never fails (see the type's doc); call `check`.
    #[allow(clippy::unnecessary_wraps)]
    pub fn parse(raw: &str) -> Result<Self, String> {
        Ok(Self(raw.to_string()))
    }

    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// Why the URL cannot be used, naming the setting and never the value.
    pub fn check(&self) -> Result<(), String> {
        parse_database_url(&self.0)
            .map(|_| ())
            .map_err(|e| format!("DATABASE_URL: {e}"))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `url` with the password of its userinfo replaced by `***` (and the
/// whole URL so replaced when it does not parse: it may still hold one).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) if url.contains('@') => "***".to_string(),
        Err(_) => url.to_string(),
    }
}

/// Accepts PostgreSQL and SQLite URLs; anything else would fail later with a
/// far less helpful driver message. Errors never include the URL.
pub fn parse_database_url(raw: &str) -> Result<String, String> {
    let scheme = raw.split_once(':').map(|(s, _)| s).unwrap_or_default();
    match scheme {
        "postgres" | "postgresql" => {
            let parsed = url::Url::parse(raw).map_err(|e| format!("not a valid URL: {e}"))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err("a postgres URL needs a host (postgres://user@host:5432/db)".into());
            }
            Ok(raw.to_string())
        }
        "sqlite" => {
            if raw.trim_start_matches("sqlite:").trim_start_matches("//").is_empty() {
                return Err("a sqlite URL needs a file name (sqlite://analytics.db?mode=rwc)".into());
            }
            Ok(raw.to_string())
        }
        _ => Err("must start with postgres://, postgresql:// or sqlite:".into()),
    }
}

/// Prints clap's error as one line (the variable named, no usage block) and
/// exits non-zero; `--help` and `--version` still print in full.
pub fn parse_or_exit<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(v) => v,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // clap's first paragraph names the setting (a missing one is
            // listed on the lines after a colon); usage and tips are dropped.
            let text = e.to_string();
            let line: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("tip:"))
                .collect();
            eprintln!("{}", line.join(" "));
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers() {
        assert_eq!(parse_brokers("a:1, tcp://b.c:9092").as_deref(), Ok("a:1,b.c:9092"));
        assert!(parse_brokers("nohost").is_err());
        assert!(parse_brokers("a:0").is_err());
        assert!(parse_brokers("a:99999").is_err());
        assert!(parse_brokers(":9092").is_err());
        assert!(parse_brokers("a:9092,").is_err());
    }

    #[test]
    fn passwords_are_never_shown() {
        let url = DatabaseUrl::new("postgres://u:s3cret@db:5432/analytics");
        assert_eq!(url.to_string(), "postgres://u:***@db:5432/analytics");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(url.expose(), "postgres://u:s3cret@db:5432/analytics");
        assert_eq!(
            redact_url("sqlite://analytics.db?mode=rwc"),
            "sqlite://analytics.db?mode=rwc"
        );
        assert_eq!(redact_url("postgres://u:s3cret@db:bad-port/x"), "***");
        let bad = DatabaseUrl::new("postgres://u:s3cret@/x");
        assert!(bad
            .check()
            .is_err_and(|e| e.starts_with("DATABASE_URL") && !e.contains("s3cret")));
    }

    #[test]
    fn database_urls() {
        assert!(parse_database_url("postgres://u@h:5432/d").is_ok());
        assert!(parse_database_url("sqlite://analytics.db?mode=rwc").is_ok());
        assert!(parse_database_url("sqlite::memory:").is_ok());
        assert!(parse_database_url("mysql://h/d").is_err());
        assert!(parse_database_url("postgres://").is_err());
        assert!(parse_database_url("nonsense").is_err());
    }
}
