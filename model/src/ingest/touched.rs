//! The (site, day)s a writer's commits changed, kept in memory until the
//! maintenance task takes them, so that it rebuilds the weekly caches of
//! those weeks only instead of scanning every daily row each round.

use chrono::NaiveDate;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// Past this many pending days the set is dropped and `take` answers
/// `None`: the caller then scans everything, which costs time, never
/// exactness.
const MAX_PENDING: usize = 100_000;

#[derive(Default)]
pub struct TouchedDays(Mutex<Pending>);

#[derive(Default)]
struct Pending {
    days: BTreeSet<(String, NaiveDate)>,
    overflowed: bool,
}

impl TouchedDays {
    /// Records days whose rollups a committed transaction changed.
    pub fn record<'a>(&self, days: impl IntoIterator<Item = (&'a str, NaiveDate)>) {
        let Ok(mut p) = self.0.lock() else { return };
        if p.overflowed {
            return;
        }
        for (site, day) in days {
            if !p.days.contains(&(site.to_string(), day)) {
                p.days.insert((site.to_string(), day));
            }
        }
        if p.days.len() > MAX_PENDING {
            p.days.clear();
            p.overflowed = true;
        }
    }

    /// The days recorded since the last call, or `None` when too many were
    /// (or a lock was poisoned) and everything must be looked at.
    pub fn take(&self) -> Option<BTreeSet<(String, NaiveDate)>> {
        let Ok(mut p) = self.0.lock() else { return None };
        let taken = std::mem::take(&mut *p);
        (!taken.overflowed).then_some(taken.days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_taken_once_and_overflow_asks_for_a_scan() {
        let d = NaiveDate::from_ymd_opt(2025, 11, 15).unwrap_or_default();
        let t = TouchedDays::default();
        t.record([("a", d), ("a", d), ("b", d)]);
        assert_eq!(t.take().map(|s| s.len()), Some(2));
        assert_eq!(t.take().map(|s| s.len()), Some(0));
        let many: Vec<String> = (0..=MAX_PENDING).map(|i| i.to_string()).collect();
        t.record(many.iter().map(|s| (s.as_str(), d)));
        assert!(t.take().is_none());
        assert_eq!(t.take().map(|s| s.len()), Some(0));
    }
}
