//! WAL checkpoints beside the writer, never inside its commits.

use rusqlite::Connection;
use std::sync::{Mutex, Weak};
use std::time::Duration;

const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// Within Linux's 15 characters, so that it shows whole in `ps` and `/proc`.
pub const CHECKPOINT_THREAD: &str = "sqlite-ckpt";

/// Copies committed WAL pages into the database file every
/// `CHECKPOINT_EVERY`, on a thread and connection of its own, until the
/// writer is dropped. A passive checkpoint never waits for and never blocks
/// a writer or a reader, so the copying and the database file's fsync run
/// beside the batches instead of inside the commit that crossed the
/// writer's autocheckpoint threshold. That threshold still bounds the WAL:
/// the writer's own checkpoint then finds only the last frames to copy, and
/// the WAL restarts from its beginning.
pub(super) fn copy_checkpoints(conn: &Connection, writer: &Weak<Mutex<Connection>>) {
    let mut failing = false;
    while writer.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_EVERY);
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "background WAL checkpoint failed; the writer's own checkpoints go on");
            }
            Err(_) => {}
        }
    }
}
