//! The column cache's figures as Prometheus metrics, read from its stats
//! when scraped: how much it holds, and how reads fared. An operator sizes
//! `QUERY_CACHE_MB` by them: misses and stale reads are the seconds-long
//! reads a dashboard waits for.

use super::cache::ColumnCache;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGauge, Opts};
use std::sync::Arc;

pub struct CacheMetrics {
    cache: Arc<ColumnCache>,
    bytes: IntGauge,
    entries: IntGauge,
    reads: IntCounterVec,
    days: IntCounterVec,
}

impl CacheMetrics {
    #[allow(clippy::expect_used)] // static names: a failure is a programming error caught by every test
    pub fn new(cache: Arc<ColumnCache>) -> CacheMetrics {
        CacheMetrics {
            cache,
            bytes: IntGauge::new("query_cache_bytes", "Memory held by the query column cache.").expect("m"),
            entries: IntGauge::new("query_cache_entries", "Ranges held by the query column cache.").expect("m"),
            reads: IntCounterVec::new(
                Opts::new(
                    "query_cache_reads_total",
                    "Column reads of /api/v2/query and zoned /stats by outcome: hit (answered from the cache), \
                     recent (only the recent events read), stale (read whole again after a change), \
                     miss (no entry held the range).",
                ),
                &["reason"],
            )
            .expect("m"),
            days: IntCounterVec::new(
                Opts::new(
                    "query_day_blocks_total",
                    "Closed UTC days of whole column reads: block (answered by its stored day block), \
                     rows (read from the events), stored (day blocks stored after a read from the rows).",
                ),
                &["reason"],
            )
            .expect("m"),
        }
    }
}

impl Collector for CacheMetrics {
    fn desc(&self) -> Vec<&Desc> {
        [
            self.bytes.desc(),
            self.entries.desc(),
            self.reads.desc(),
            self.days.desc(),
        ]
        .concat()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let s = self.cache.stats();
        self.bytes.set(i64::try_from(s.bytes).unwrap_or(i64::MAX));
        self.entries.set(i64::try_from(s.entries).unwrap_or(i64::MAX));
        for (reason, total) in [
            ("hit", s.hits),
            ("recent", s.recent),
            ("stale", s.stale),
            ("miss", s.misses),
        ] {
            catch_up(&self.reads, reason, total);
        }
        for (reason, total) in [
            ("block", s.days_from_blocks),
            ("rows", s.days_from_rows),
            ("stored", s.blocks_stored),
        ] {
            catch_up(&self.days, reason, total);
        }
        [
            self.bytes.collect(),
            self.entries.collect(),
            self.reads.collect(),
            self.days.collect(),
        ]
        .concat()
    }
}

/// The stats only grow: the counter catches up to them.
fn catch_up(counters: &IntCounterVec, label: &str, total: u64) {
    let counter = counters.with_label_values(&[label]);
    counter.inc_by(total.saturating_sub(counter.get()));
}
