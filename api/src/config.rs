//! The api's settings (environment variable or flag each).

use crate::auth::IngestAuth;
use crate::client::TrustedProxies;
use crate::limits::RateLimits;
use crate::routes::RequestLimits;
use crate::serve::ConnectionLimits;
use analytics_core::event::{Policy, DEFAULT_MAX_AGE_DAYS};
use analytics_core::ops::config::{DatabaseUrl, KafkaArgs, RetentionArgs, TelemetryArgs};
use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;

pub const EMBEDDED_DATABASE_URL: &str = "sqlite://analytics.db?mode=rwc";

#[derive(Debug, Clone, Parser)]
#[command(name = "analytics-api", version, about = "Analytics ingest, stats API and dashboard")]
pub struct ApiConfig {
    /// Listen address [Kafka mode: 0.0.0.0:8080; embedded mode:
    /// 127.0.0.1:8080, where it needs no keys].
    #[arg(long, env = "HTTP_ADDR", value_name = "HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// PostgreSQL in Kafka mode; defaults to a SQLite file in embedded mode.
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL", hide_env_values = true, value_parser = DatabaseUrl::parse)]
    pub database_url: Option<DatabaseUrl>,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Embedded mode: the api's maintenance applies it.
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// Longest a request waits for its events to be durable (broker ack, or
    /// the embedded commit) before it is answered 503.
    #[arg(
        long,
        env = "INGEST_TIMEOUT_MS",
        value_name = "INGEST_TIMEOUT_MS",
        default_value = "5000"
    )]
    pub ingest_timeout_ms: u64,
    /// Bound on messages waiting in the producer; beyond it requests get 503.
    #[arg(
        long,
        env = "KAFKA_QUEUE_MESSAGES",
        value_name = "KAFKA_QUEUE_MESSAGES",
        default_value = "200000"
    )]
    pub kafka_queue_messages: u32,
    /// Largest group commit in embedded mode, in events.
    #[arg(
        long,
        env = "EMBEDDED_BATCH_EVENTS",
        value_name = "EMBEDDED_BATCH_EVENTS",
        default_value = "10000"
    )]
    pub embedded_batch_events: usize,
    /// Event bytes the embedded writer may hold queued (MiB); past it
    /// requests get 503.
    #[arg(
        long,
        env = "EMBEDDED_QUEUE_MB",
        value_name = "EMBEDDED_QUEUE_MB",
        default_value = "64"
    )]
    pub embedded_queue_mb: usize,
    /// Bound on the bytes waiting in the producer (KiB; librdkafka's
    /// `queue.buffering.max.kbytes`); beyond it requests get 503.
    #[arg(
        long,
        env = "KAFKA_QUEUE_KBYTES",
        value_name = "KAFKA_QUEUE_KBYTES",
        default_value = "65536"
    )]
    pub kafka_queue_kbytes: u32,
    /// Oldest event timestamp accepted, in days before now (0: any from
    /// year 1 on). History older than this goes through an import.
    #[arg(long, env = "EVENT_MAX_AGE_DAYS", value_name = "EVENT_MAX_AGE_DAYS", default_value_t = DEFAULT_MAX_AGE_DAYS)]
    pub event_max_age_days: i64,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` is believed: a comma
    /// list of CIDRs (default: none, every peer is the client).
    #[arg(long, env = "TRUSTED_PROXIES", value_name = "TRUSTED_PROXIES", default_value = "", value_parser = TrustedProxies::parse)]
    pub trusted_proxies: TrustedProxies,
    /// A MaxMind-format country database (`.mmdb`: GeoLite2 or GeoIP2
    /// Country, DB-IP or IPtoASN country) for each event's country; none:
    /// countries come only from a trusted CDN header, if enabled.
    #[arg(long, env = "GEOIP_DATABASE", value_name = "GEOIP_DATABASE")]
    pub geoip_database: Option<std::path::PathBuf>,
    /// Believe the `CF-IPCountry` header (only behind Cloudflare or a proxy
    /// that sets it and strips a client's own).
    #[arg(
        long,
        env = "TRUST_CDN_COUNTRY",
        value_name = "TRUST_CDN_COUNTRY",
        default_value_t = false
    )]
    pub trust_cdn_country: bool,
    /// Enrich events (browser, source, country, cookieless visitor). Off:
    /// events are stored as sent, bots included, and only `user_id` makes
    /// a visitor; what the enrichment benchmark measures against.
    #[arg(long, env = "ENRICH", value_name = "ENRICH", default_value_t = true, action = clap::ArgAction::Set)]
    pub enrich: bool,
    /// Open connections at most; past it the listener waits for one to close.
    #[arg(
        long,
        env = "HTTP_MAX_CONNECTIONS",
        value_name = "HTTP_MAX_CONNECTIONS",
        default_value = "4096"
    )]
    pub http_max_connections: usize,
    /// Seconds a request's headers may take to arrive (also how long a
    /// keep-alive connection may sit idle).
    #[arg(
        long,
        env = "HTTP_HEADER_TIMEOUT_SECONDS",
        value_name = "HTTP_HEADER_TIMEOUT_SECONDS",
        default_value = "10"
    )]
    pub http_header_timeout_seconds: u64,
    /// Seconds a request body may pause between two of its chunks (408).
    #[arg(
        long,
        env = "HTTP_BODY_TIMEOUT_SECONDS",
        value_name = "HTTP_BODY_TIMEOUT_SECONDS",
        default_value = "10"
    )]
    pub http_body_timeout_seconds: u64,
    /// Seconds a whole request may take (408); more than INGEST_TIMEOUT_MS.
    #[arg(
        long,
        env = "HTTP_REQUEST_TIMEOUT_SECONDS",
        value_name = "HTTP_REQUEST_TIMEOUT_SECONDS",
        default_value = "30"
    )]
    pub http_request_timeout_seconds: u64,
    /// Requests served at once; beyond it, 503 with Retry-After at once
    /// (load shedding) instead of a queue that grows.
    #[arg(
        long,
        env = "HTTP_MAX_IN_FLIGHT",
        value_name = "HTTP_MAX_IN_FLIGHT",
        default_value = "1024"
    )]
    pub http_max_in_flight: usize,
    /// Requests per second per client address (0: no limit), and the burst.
    #[arg(
        long,
        env = "RATE_LIMIT_ADDRESS_PER_SECOND",
        value_name = "RATE_LIMIT_ADDRESS_PER_SECOND",
        default_value = "1000"
    )]
    pub rate_limit_address_per_second: u32,
    #[arg(
        long,
        env = "RATE_LIMIT_ADDRESS_BURST",
        value_name = "RATE_LIMIT_ADDRESS_BURST",
        default_value = "2000"
    )]
    pub rate_limit_address_burst: u32,
    /// Events per second per site (0: no limit), and the burst.
    #[arg(
        long,
        env = "RATE_LIMIT_SITE_EVENTS_PER_SECOND",
        value_name = "RATE_LIMIT_SITE_EVENTS_PER_SECOND",
        default_value = "20000"
    )]
    pub rate_limit_site_events_per_second: u32,
    #[arg(
        long,
        env = "RATE_LIMIT_SITE_BURST",
        value_name = "RATE_LIMIT_SITE_BURST",
        default_value = "200000"
    )]
    pub rate_limit_site_burst: u32,
    /// Whether reads (and /api/admin) need a key: keys, or open — only for
    /// an api no one else can reach [open in embedded mode on loopback,
    /// else keys].
    #[arg(long, env = "READ_AUTH", value_name = "READ_AUTH")]
    pub read_auth: Option<ReadAuth>,
    /// Which sites may send events: open, registered, key, registered-and-key
    /// [open in embedded mode on loopback, else registered].
    #[arg(long, env = "INGEST_AUTH", value_name = "INGEST_AUTH")]
    pub ingest_auth: Option<IngestAuth>,
    /// The secret signing dashboard sessions (32 bytes or more); every api
    /// replica needs the same one [a random one per process].
    #[arg(long, env = "SESSION_SECRET", value_name = "SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<String>,
    /// Whether cookies are marked Secure: auto (when the request came over
    /// TLS, as a trusted proxy's X-Forwarded-Proto says), always, never.
    #[arg(long, env = "COOKIE_SECURE", value_name = "COOKIE_SECURE", default_value = "auto")]
    pub cookie_secure: CookieSecure,
    /// Seconds a checked key is trusted before it is looked up again (a
    /// revoked key stops working within this time).
    #[arg(
        long,
        env = "KEY_CACHE_SECONDS",
        value_name = "KEY_CACHE_SECONDS",
        default_value = "5"
    )]
    pub key_cache_seconds: u64,

    /// Megabytes of query columns kept between `/api/v2/query` requests
    /// (a month of a site's events is read once for every panel and
    /// filter of a dashboard); 0 keeps none.
    #[arg(long, env = "QUERY_CACHE_MB", value_name = "QUERY_CACHE_MB", default_value_t = 128)]
    pub query_cache_mb: usize,

    /// The most raw events one `/api/v2/query` (or a zoned `/stats`) may
    /// read: about 80 bytes each while its columns are built. A range
    /// holding more is a 400 naming `date_range`.
    #[arg(long, env = "QUERY_MAX_EVENTS", value_name = "QUERY_MAX_EVENTS", default_value_t = analytics_core::query::v2::DEFAULT_MAX_EVENTS)]
    pub query_max_events: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadAuth {
    Keys,
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CookieSecure {
    Auto,
    Always,
    Never,
}

/// Shortest session secret accepted.
const MIN_SESSION_SECRET: usize = 32;

impl ApiConfig {
    pub fn ingest_timeout(&self) -> Duration {
        Duration::from_millis(self.ingest_timeout_ms)
    }

    pub fn is_embedded(&self) -> bool {
        self.kafka.broker_urls.is_none()
    }

    /// Where the api listens: `HTTP_ADDR`, or the mode's default.
    pub fn listen_addr(&self) -> SocketAddr {
        self.http_addr.unwrap_or_else(|| {
            if self.is_embedded() {
                SocketAddr::from(([127, 0, 0, 1], 8080))
            } else {
                SocketAddr::from(([0, 0, 0, 0], 8080))
            }
        })
    }

    /// Embedded mode on loopback: only this machine can reach it, so reads
    /// need no key and any site may send (the seed's zero-setup flow).
    pub fn open_access(&self) -> bool {
        self.is_embedded() && self.listen_addr().ip().is_loopback()
    }

    /// Reads without a key: `READ_AUTH`, or the mode's default.
    pub fn open_reads(&self) -> bool {
        match self.read_auth {
            Some(ReadAuth::Open) => true,
            Some(ReadAuth::Keys) => false,
            None => self.open_access(),
        }
    }

    pub fn ingest_auth(&self) -> IngestAuth {
        self.ingest_auth.unwrap_or(if self.open_access() {
            IngestAuth::Open
        } else {
            IngestAuth::Registered
        })
    }

    /// The session secret, or a random one (sessions then last as long as
    /// the process, and only on this replica).
    pub fn session_secret(&self) -> Vec<u8> {
        match &self.session_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => {
                let mut random = vec![0u8; MIN_SESSION_SECRET];
                let _ = getrandom::fill(&mut random);
                random
            }
        }
    }

    /// The timestamp bounds of ingest.
    pub fn policy(&self) -> Policy {
        Policy {
            max_age: (self.event_max_age_days > 0).then(|| chrono::Duration::days(self.event_max_age_days)),
            names: analytics_core::event::EventNames::Strict,
        }
    }

    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.http_max_connections,
            header_timeout: Duration::from_secs(self.http_header_timeout_seconds),
        }
    }

    pub fn request_limits(&self) -> RequestLimits {
        RequestLimits {
            body_timeout: Duration::from_secs(self.http_body_timeout_seconds),
            request_timeout: Duration::from_secs(self.http_request_timeout_seconds),
            max_in_flight: self.http_max_in_flight,
        }
    }

    pub fn rate_limits(&self) -> RateLimits {
        RateLimits::new(
            self.rate_limit_address_per_second,
            self.rate_limit_address_burst,
            self.rate_limit_site_events_per_second,
            self.rate_limit_site_burst,
        )
    }

    /// Settings that are each valid but not together: one line naming them.
    pub fn check(&self) -> Result<(), String> {
        if let Some(url) = &self.database_url {
            url.check()?;
        }
        if self
            .session_secret
            .as_ref()
            .is_some_and(|s| s.len() < MIN_SESSION_SECRET)
        {
            return Err(format!("SESSION_SECRET must be at least {MIN_SESSION_SECRET} bytes"));
        }
        if self.http_request_timeout_seconds.saturating_mul(1000) <= self.ingest_timeout_ms {
            return Err(format!(
                "HTTP_REQUEST_TIMEOUT_SECONDS ({}) must be longer than INGEST_TIMEOUT_MS ({} ms)",
                self.http_request_timeout_seconds, self.ingest_timeout_ms
            ));
        }
        if self.event_max_age_days < 0 {
            return Err("EVENT_MAX_AGE_DAYS must be 0 (no bound) or a number of days".into());
        }
        if self.embedded_queue_mb == 0 || self.http_max_in_flight == 0 || self.http_max_connections == 0 {
            return Err("EMBEDDED_QUEUE_MB, HTTP_MAX_IN_FLIGHT and HTTP_MAX_CONNECTIONS must be at least 1".into());
        }
        Ok(())
    }
}
