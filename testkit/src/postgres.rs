//! A PostgreSQL server of a test's own (initdb into a temporary directory,
//! its own port), for fault tests that restart or stop the server: the
//! shared one on 5432 serves every other test meanwhile.

use crate::db::unique_name;
use crate::process::free_port;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct PrivatePostgres {
    dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
}

/// The newest PostgreSQL installed from Debian's packages.
fn bin_dir() -> PathBuf {
    let root = PathBuf::from("/usr/lib/postgresql");
    let mut versions: Vec<u32> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL's server binaries are required under {}: {e}",
                root.display()
            )
        })
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    root.join(versions.last().expect("a PostgreSQL version").to_string())
        .join("bin")
}

/// Runs a server tool as the `postgres` user when we are root (initdb and
/// the server refuse to run as root), else as ourselves.
fn as_postgres(program: PathBuf, args: &[&str]) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(unique_name("pg"));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown").args(["postgres:postgres"]).arg(&dir).status();
        let pg = Self {
            dir,
            port: free_port(),
            bin: bin_dir(),
        };
        let data = pg.data();
        run(
            as_postgres(
                pg.bin.join("initdb"),
                &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
            ),
            "initdb",
        );
        pg.ctl(&["start", "-w"]);
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn ctl(&self, action: &[&str]) {
        let data = self.data();
        let log = self.dir.join("server.log").display().to_string();
        let opts = format!("-p {} -k {} -c fsync=off", self.port, self.dir.display());
        let mut args = vec!["-D", &data, "-l", &log, "-o", &opts, "-m", "fast"];
        args.extend_from_slice(action);
        run(as_postgres(self.bin.join("pg_ctl"), &args), "pg_ctl");
    }

    /// `postgres://` URL of database `postgres` on it.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A fast restart: every connection is dropped, the server is back
    /// within a second or two.
    pub fn restart(&self) {
        self.ctl(&["restart", "-w"]);
    }

    pub fn stop(&self) {
        self.ctl(&["stop", "-w"]);
    }

    pub fn start_again(&self) {
        self.ctl(&["start", "-w"]);
    }

    /// Waits until it accepts TCP connections.
    pub fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "private PostgreSQL not listening on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(
            self.bin.join("pg_ctl"),
            &["-D", &self.data(), "stop", "-m", "immediate", "-w"],
        )
        .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
