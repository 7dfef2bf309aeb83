//! Ports for the processes a test starts (services, a broker, a PostgreSQL).
//!
//! Binding port 0 and closing it again, then handing the number to a child,
//! races: tests run as parallel processes, and two of them can be handed the
//! same number, or an outgoing connection can take it first. The child that
//! loses fails to bind and exits while the test talks to the winner (a
//! `/readyz` that answers, then requests refused). So a port comes from
//! below the kernel's ephemeral range (never used for outgoing connections)
//! and is claimed with an advisory lock on a file named for it, held until
//! the test process exits (a restarted service keeps its ports).

use rand::Rng;
use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;

/// The lowest port handed out (above the usual fixed ones: PostgreSQL,
/// Kafka's 9092).
const FIRST: u16 = 10_000;

/// The locks of the ports this process holds.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// A port on 127.0.0.1 that nothing listens on and no other test process
/// will be handed while this one runs.
pub fn free_port() -> u16 {
    let end = ephemeral_start().max(FIRST + 1_000);
    let span = end - FIRST;
    let dir = lock_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let offset = rand::rng().random_range(0..span);
    for i in 0..span {
        let port = FIRST + (offset + i) % span;
        let Ok(file) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
        else {
            continue;
        };
        if file.try_lock().is_err() {
            continue;
        }
        // Claimed among the tests; something else may still listen on it.
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        HELD.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(file);
        return port;
    }
    panic!("no free port in {FIRST}..{end}");
}

/// The first port of the kernel's ephemeral range (Linux), else the IANA
/// range's start.
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(49_152)
}

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("analytics-test-ports")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_below_the_ephemeral_range_and_bindable() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ports.len(), "a port handed out twice");
        for p in ports {
            assert!((FIRST..ephemeral_start()).contains(&p), "{p} outside the range");
            TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
    }

    #[test]
    fn a_port_held_by_another_process_is_not_handed_out() {
        // Another open file description of the same lock file stands for
        // another test process: its lock conflicts like one.
        let p = free_port();
        let other = OpenOptions::new()
            .write(true)
            .open(lock_dir().join(p.to_string()))
            .unwrap();
        assert!(other.try_lock().is_err(), "port {p}'s lock is not held");
    }
}
