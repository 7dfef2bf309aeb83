//! A database password never appears: not in `--help` (the environment's
//! value is hidden), not in the error of a malformed or unreachable URL,
//! not in the start-up log. Every binary, with `postgres://u:s3cret@…`.

use std::process::{Command, Stdio};
use std::time::Duration;
use testkit::process::{bin, free_port};

const SECRET: &str = "s3cret";
const BINARIES: [&str; 4] = [
    "analytics-api",
    "analytics-processor",
    "analytics-migrate",
    "analytics-admin",
];

fn output(binary: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(bin(binary));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn help_never_shows_the_password() {
    let url = format!("postgres://u:{SECRET}@127.0.0.1:5432/analytics");
    for b in BINARIES {
        let text = output(
            b,
            &["--help"],
            &[
                ("DATABASE_URL", &url),
                ("KAFKA_SASL_PASSWORD", SECRET),
                ("SESSION_SECRET", &SECRET.repeat(11)),
            ],
        );
        assert!(text.contains("DATABASE_URL"), "{b}: {text}");
        assert!(!text.contains(SECRET), "{b} --help shows the secret:\n{text}");
    }
}

#[test]
fn configuration_errors_never_show_the_password() {
    // Malformed: no host.
    let bad = format!("postgres://u:{SECRET}@/analytics");
    for b in BINARIES {
        let args: &[&str] = if b == "analytics-migrate" {
            &["up"]
        } else if b == "analytics-admin" {
            &["keys", "list"]
        } else {
            &[]
        };
        let env = [
            ("DATABASE_URL", bad.as_str()),
            ("KAFKA_BROKER_URLS", "127.0.0.1:9092"),
            ("MIGRATE_WAIT_SECONDS", "1"),
        ];
        let text = output(b, args, &env);
        assert!(text.contains("DATABASE_URL"), "{b} does not name the setting: {text}");
        assert!(!text.contains(SECRET), "{b} shows the secret:\n{text}");
    }
}

#[test]
fn unreachable_databases_and_start_up_logs_never_show_the_password() {
    // Reachable host, nothing listening: the connection error, and the
    // api's start-up log (embedded mode logs its database).
    let url = format!("postgres://u:{SECRET}@127.0.0.1:{}/analytics", free_port());
    for b in BINARIES {
        let args: &[&str] = match b {
            "analytics-migrate" => &["up"],
            "analytics-admin" => &["keys", "list"],
            _ => &[],
        };
        let port = free_port().to_string();
        let http = format!("127.0.0.1:{port}");
        let metrics = format!("127.0.0.1:{}", free_port());
        let env = [
            ("DATABASE_URL", url.as_str()),
            ("MIGRATE_WAIT_SECONDS", "1"),
            ("HTTP_ADDR", http.as_str()),
            ("METRICS_ADDR", metrics.as_str()),
            ("RUST_LOG", "debug"),
            ("LOG_FORMAT", "json"),
        ];
        let mut cmd = Command::new(bin(b));
        cmd.env_clear().args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        // The processor needs brokers to start at all; without a database it
        // runs (not ready) until stopped.
        if b == "analytics-processor" {
            cmd.env("KAFKA_BROKER_URLS", "127.0.0.1:9092");
        }
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_secs(4));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.is_empty(), "{b} said nothing");
        assert!(!text.contains(SECRET), "{b} shows the secret:\n{text}");
    }
}
