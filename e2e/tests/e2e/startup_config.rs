//! A malformed setting stops each binary at start: non-zero exit and one line
//! on stderr naming the variable.

use std::process::Command;
use testkit::process::bin;

fn run(binary: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(bin(binary));
    cmd.env_clear().args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_fails_naming(binary: &str, args: &[&str], env: &[(&str, &str)], variable: &str) {
    let (code, stderr) = run(binary, args, env);
    assert_ne!(code, 0, "{binary} {env:?} should fail");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line expected, got:\n{stderr}"
    );
    assert!(stderr.contains(variable), "`{variable}` not named in: {stderr}");
}

const PG: (&str, &str) = ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres");
const BROKERS: (&str, &str) = ("KAFKA_BROKER_URLS", "127.0.0.1:9092");

#[test]
fn api_rejects_malformed_settings() {
    assert_fails_naming("analytics-api", &[], &[("DATABASE_URL", "mysql://h/d")], "DATABASE_URL");
    assert_fails_naming("analytics-api", &[], &[("DATABASE_URL", "postgres://")], "DATABASE_URL");
    assert_fails_naming(
        "analytics-api",
        &[],
        &[PG, ("KAFKA_BROKER_URLS", "nohost")],
        "KAFKA_BROKER_URLS",
    );
    assert_fails_naming(
        "analytics-api",
        &[],
        &[PG, ("KAFKA_BROKER_URLS", "a:9092,b:notaport")],
        "KAFKA_BROKER_URLS",
    );
    assert_fails_naming("analytics-api", &[], &[("HTTP_ADDR", "localhost")], "HTTP_ADDR");
    assert_fails_naming(
        "analytics-api",
        &[],
        &[("METRICS_ADDR", "1.2.3.4:99999")],
        "METRICS_ADDR",
    );
    assert_fails_naming("analytics-api", &[], &[("LOG_FORMAT", "xml")], "LOG_FORMAT");
    assert_fails_naming("analytics-api", &[], &[BROKERS], "DATABASE_URL");
}

#[test]
fn processor_rejects_malformed_settings() {
    assert_fails_naming("analytics-processor", &[], &[BROKERS], "DATABASE_URL");
    assert_fails_naming("analytics-processor", &[], &[PG], "KAFKA_BROKER_URLS");
    assert_fails_naming(
        "analytics-processor",
        &[],
        &[PG, ("KAFKA_BROKER_URLS", "host:")],
        "KAFKA_BROKER_URLS",
    );
    assert_fails_naming(
        "analytics-processor",
        &[],
        &[PG, BROKERS, ("METRICS_ADDR", "nope")],
        "METRICS_ADDR",
    );
    for lanes in ["0", "9", "two"] {
        assert_fails_naming(
            "analytics-processor",
            &[],
            &[PG, BROKERS, ("WRITER_LANES", lanes)],
            "WRITER_LANES",
        );
    }
}

#[test]
fn migrate_rejects_malformed_settings() {
    assert_fails_naming(
        "analytics-migrate",
        &["up"],
        &[("DATABASE_URL", "oracle://x")],
        "DATABASE_URL",
    );
    assert_fails_naming("analytics-migrate", &["up"], &[], "DATABASE_URL");
}
