//! Upkeep that runs beside the writers, never inside a batch: creating the
//! coming days' partitions of `events` on PostgreSQL, pruning the live
//! panel's old minutes (`prune`), packing path rows (`compaction`) and
//! rebuilding stale weekly caches (`weeks`), and dropping data past its
//! retention (`retention`). `Maintenance` runs them on a
//! schedule of its own, whether or not events arrive, as a task with a
//! liveness report and a clean stop. Every chore is idempotent and safe
//! beside writers and beside another process's maintenance (two
//! processors, or a processor and a rollout's next one).

pub mod compaction;
pub mod prune;
pub mod retention;
pub mod weeks;

use crate::ops::health::Liveness;
use crate::store::postgres::partitions;
use crate::store::WriterState;
use chrono::{NaiveDate, Utc};
pub use retention::Retention;
use sea_orm::{DatabaseConnection, DbBackend};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The name the task reports under in `/healthz`.
pub const LOOP_NAME: &str = "maintenance";
/// How often the chores run.
pub const EVERY: Duration = Duration::from_secs(60);
/// A run may take this long before liveness calls the task stalled: a large
/// backlog of path rows (after an outage) takes several minutes to pack.
const STALL_AFTER: Duration = Duration::from_secs(15 * 60);
/// Days past today whose partition of `events` each round creates ahead
/// of time, so that a writer meets a new day's partition already there
/// (and a round or two may fail without a writer having to create one).
pub const PARTITIONS_AHEAD: usize = 2;
/// How often every weekly cache is checked, not only the weeks this
/// process's writer touched: another process may have changed days and
/// stopped before its own maintenance ran.
pub const FULL_SCAN_EVERY: Duration = Duration::from_secs(60 * 60);

/// The running task.
pub struct Maintenance {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Maintenance {
    /// `writer`: the state of this process's writer, whose touched days
    /// say which weekly caches to check between full scans (none: every
    /// round is a full scan).
    /// `retention`: what to drop by age each round (none: keep all).
    pub fn spawn(
        db: DatabaseConnection,
        liveness: Arc<Liveness>,
        every: Duration,
        writer: Option<Arc<WriterState>>,
        retention: Option<Retention>,
    ) -> Self {
        liveness.register(LOOP_NAME, STALL_AFTER.max(every * 3));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(db, liveness, every, writer, retention, stopped));
        Self { stop, task }
    }

    /// Asks the task to stop and waits for it. A chore in progress is
    /// abandoned: its open transaction rolls back, and whichever process
    /// runs maintenance next redoes it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run(
    db: DatabaseConnection,
    liveness: Arc<Liveness>,
    every: Duration,
    writer: Option<Arc<WriterState>>,
    retention: Option<Retention>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut last_full_scan: Option<Instant> = None;
    loop {
        liveness.report(LOOP_NAME);
        let full = writer.is_none() || last_full_scan.is_none_or(|t| t.elapsed() >= FULL_SCAN_EVERY);
        if full {
            last_full_scan = Some(Instant::now());
        }
        tokio::select! {
            biased;
            _ = stopped.changed() => break,
            () = run_once(&db, &liveness, writer.as_deref().filter(|_| !full), retention) => {}
        }
        tokio::select! {
            _ = stopped.changed() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    tracing::info!("maintenance stopped");
}

/// One round of every chore; a failure is logged and retried next round.
/// With `writer`, only the weeks its commits (and this round's packing)
/// touched are checked; without, every week.
pub async fn run_once(
    db: &DatabaseConnection,
    liveness: &Liveness,
    writer: Option<&WriterState>,
    retention: Option<Retention>,
) {
    let mut touched = writer.and_then(|w| w.touched.take());
    if db.get_database_backend() == DbBackend::Postgres {
        match partitions::ensure(db, &coming_days(Utc::now().date_naive())).await {
            Ok(n) => tracing::debug!(created = n, "made sure of the coming days' partitions"),
            Err(e) => tracing::warn!(error = %e, "creating the coming days' partitions failed; retrying next round"),
        }
        liveness.report(LOOP_NAME);
    }
    if let Some(r) = retention {
        match retention::apply(db, r, Utc::now()).await {
            Ok(d) => tracing::debug!(
                deleted = d.events,
                partitions = d.partitions.len(),
                days = r.days,
                "dropped raw events past their retention"
            ),
            Err(e) => tracing::warn!(error = %e, "retention failed; retrying next round"),
        }
        liveness.report(LOOP_NAME);
    }
    match prune::old_minutes(db, Utc::now()).await {
        Ok(n) => tracing::debug!(deleted = n, "pruned minute_event_counts"),
        Err(e) => tracing::warn!(error = %e, "pruning minute_event_counts failed; retrying next round"),
    }
    liveness.report(LOOP_NAME);
    match compaction::compact_groups(db).await {
        Ok(groups) => {
            tracing::debug!(groups = groups.len(), "packed daily_path_views rows");
            if let Some(days) = touched.as_mut() {
                days.extend(groups.into_iter().map(|(day, _)| day));
            }
        }
        Err(e) => tracing::warn!(error = %e, "packing daily_path_views failed; retrying next round"),
    }
    liveness.report(LOOP_NAME);
    // After the packing, so that the weeks it changed are rebuilt now
    // rather than a round later.
    let refreshed = match &touched {
        Some(days) => weeks::refresh_days(db, days).await,
        None => weeks::refresh(db).await,
    };
    match refreshed {
        Ok(done) => tracing::debug!(?done, "rebuilt stale weekly rollups"),
        Err(e) => {
            // Put the days back for the next round.
            if let (Some(w), Some(days)) = (writer, touched) {
                w.touched.record(days.iter().map(|(s, d)| (s.as_str(), *d)));
            }
            tracing::warn!(error = %e, "rebuilding weekly rollups failed; retrying next round");
        }
    }
}

/// Today and the `PARTITIONS_AHEAD` days after it.
fn coming_days(today: NaiveDate) -> BTreeSet<NaiveDate> {
    today.iter_days().take(1 + PARTITIONS_AHEAD).collect()
}
