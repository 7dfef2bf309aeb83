//! The SQLite writer's background checkpoints: committed pages reach the
//! database file without the writer's own checkpoint (whose threshold a small
//! load never crosses), and the checkpointing thread ends with the writer.
//! Alone in its test binary, so that the threads it counts are its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use analytics_core::event::{Event, IncomingEvent};
use analytics_core::store::sqlite::CHECKPOINT_THREAD;
use analytics_core::store::Writer;
use chrono::Utc;
use sea_orm::Database;
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::db::{migrate_up, temp_sqlite};
use testkit::rollups::count;

fn events(n: usize) -> Vec<Event> {
    let now = Utc::now();
    (0..n)
        .map(|i| {
            IncomingEvent {
                site_id: Some(format!("site-{}", i % 3)),
                event_type: Some("page_view".into()),
                path: Some(format!("/p/{}", i % 40)),
                user_id: Some(format!("u{}", i % 300)),
                ..Default::default()
            }
            .validate(now)
            .unwrap()
        })
        .collect()
}

fn checkpoint_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|t| {
            let comm = std::fs::read_to_string(t.as_ref().unwrap().path().join("comm")).unwrap_or_default();
            comm.trim() == CHECKPOINT_THREAD
        })
        .count()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Polls `cond` every 50 ms for at most `limit`.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

#[tokio::test]
async fn committed_pages_reach_the_database_file_in_the_background() {
    let path = temp_sqlite();
    let url = format!("sqlite://{}?mode=rwc", path.display());
    migrate_up(&url).await;
    let db = Database::connect(url.as_str()).await.unwrap();
    assert_eq!(checkpoint_threads(), 0);
    let writer = Writer::open(&db).unwrap();
    // The thread names itself once it runs.
    assert!(
        eventually(Duration::from_secs(5), || checkpoint_threads() == 1).await,
        "the writer starts one checkpointing thread"
    );

    let before = file_len(&path);
    // About 150 WAL pages: far below both the writer's autocheckpoint
    // (16,000 pages) and the pool's (SQLite's default, 1,000).
    for batch in events(1000).chunks(250) {
        assert_eq!(writer.write(batch).await.unwrap().inserted, 250);
    }
    assert!(
        eventually(Duration::from_secs(10), || file_len(&path) > before).await,
        "the database file stayed at {before} bytes: nothing was checkpointed"
    );
    assert_eq!(count(&db, "events").await, 1000);

    drop(writer);
    assert!(
        eventually(Duration::from_secs(5), || checkpoint_threads() == 0).await,
        "the checkpointing thread outlived its writer"
    );
}
