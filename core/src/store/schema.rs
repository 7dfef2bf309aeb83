//! The rollup tables as both writers and the readers see them: names, key
//! columns, value columns, and the statements built from them. The
//! migrations create these tables; `migration/tests` checks that every
//! table and column named here exists with that key on both backends.

use super::sql::values_placeholders;
use crate::ingest::CountKind;

/// A table of counts added to by every batch.
#[derive(Debug)]
pub struct CountTable {
    pub name: &'static str,
    /// The primary key, in order.
    pub key: &'static [&'static str],
    pub count: &'static str,
}

pub const DAILY_PATH_VIEWS: CountTable = CountTable {
    name: "daily_path_views",
    key: &["site_id", "day", "path"],
    count: "views",
};

pub const DAILY_EVENT_COUNTS: CountTable = CountTable {
    name: "daily_event_counts",
    key: &["site_id", "day", "event_type"],
    count: "events",
};

pub const HOURLY_EVENT_COUNTS: CountTable = CountTable {
    name: "hourly_event_counts",
    key: &["site_id", "day", "hour", "event_type"],
    count: "events",
};

pub const MINUTE_EVENT_COUNTS: CountTable = CountTable {
    name: "minute_event_counts",
    key: &["site_id", "minute"],
    count: "events",
};

pub const DAILY_VISITOR_COUNTS: CountTable = CountTable {
    name: "daily_visitor_counts",
    key: &["site_id", "day"],
    count: "visitors",
};

pub fn count_table(kind: CountKind) -> &'static CountTable {
    match kind {
        CountKind::PathViews => &DAILY_PATH_VIEWS,
        CountKind::DailyEvents => &DAILY_EVENT_COUNTS,
        CountKind::HourlyEvents => &HOURLY_EVENT_COUNTS,
        CountKind::MinuteEvents => &MINUTE_EVENT_COUNTS,
        CountKind::DailyVisitors => &DAILY_VISITOR_COUNTS,
    }
}

/// One row per cookieless visitor, site and day (migration 13): a visitor
/// whose insert takes is new that day and counts in `daily_visitor_counts`.
pub const DAILY_VISITORS: &str = "daily_visitors";
/// Inserts one visitor-day; no row when it is already there.
pub const INSERT_VISITOR_DAY: &str =
    "INSERT INTO daily_visitors (site_id, day, visitor_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

impl CountTable {
    /// Adds `rows` rows of counts: `INSERT … ON CONFLICT (<key>) DO UPDATE
    /// SET <count> = <table>.<count> + excluded.<count>`.
    pub fn add_sql(&self, rows: usize) -> String {
        let CountTable { name, key, count } = self;
        let key = key.join(", ");
        format!(
            "INSERT INTO {name} ({key}, {count}) VALUES {} \
             ON CONFLICT ({key}) DO UPDATE SET {count} = {name}.{count} + excluded.{count}",
            values_placeholders(rows, self.key.len() + 1)
        )
    }
}

/// A table of user sets: a key, the serialized set (`users`) and its
/// cardinality (`user_count`).
#[derive(Debug)]
pub struct SetTable {
    pub name: &'static str,
    pub key: &'static [&'static str],
}

pub const DAILY_USER_SETS: SetTable = SetTable {
    name: "daily_user_sets",
    key: &["site_id", "day"],
};

pub const HOURLY_USER_SETS: SetTable = SetTable {
    name: "hourly_user_sets",
    key: &["site_id", "day", "hour"],
};

impl SetTable {
    /// The stored sets of `rows` keys: key columns, then `users`.
    pub fn read_sql(&self, rows: usize) -> String {
        let join: Vec<String> = self.key.iter().map(|c| format!("t.{c} = k.{c}")).collect();
        let selected: Vec<String> = self.key.iter().map(|c| format!("t.{c}")).collect();
        format!(
            "{} SELECT {}, t.users FROM {} t JOIN k ON {}",
            super::sql::keys_cte(self.key, rows),
            selected.join(", "),
            self.name,
            join.join(" AND ")
        )
    }

    /// The stored set of one key.
    pub fn read_one_sql(&self) -> String {
        let filter: Vec<String> = self
            .key
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 1))
            .collect();
        format!("SELECT users FROM {} WHERE {}", self.name, filter.join(" AND "))
    }

    /// Writes `rows` sets whole: key columns, `users`, `user_count`.
    pub fn write_sql(&self, rows: usize) -> String {
        let cols = self.key.join(", ");
        format!(
            "INSERT INTO {} ({cols}, users, user_count) VALUES {} \
             ON CONFLICT ({cols}) DO UPDATE SET users = excluded.users, user_count = excluded.user_count",
            self.name,
            values_placeholders(rows, self.key.len() + 2)
        )
    }
}

/// Every table with rows of one site (`site_id`), children before `sites`:
/// what removing a site deletes, with `POSTGRES_SITE_TABLES` on PostgreSQL.
/// migration/tests checks that no table with a `site_id` column is missing.
pub const SITE_TABLES: [&str; 19] = [
    "events",
    "event_blocks",
    "daily_visitors",
    "daily_visitor_counts",
    "daily_path_views",
    "daily_path_packs",
    "weekly_path_packs",
    "daily_event_counts",
    "hourly_event_counts",
    "minute_event_counts",
    "daily_user_sets",
    "hourly_user_sets",
    "weekly_user_sets",
    "site_users",
    "site_domains",
    "share_links",
    "goals",
    "funnels",
    "sites",
];

/// A site's raw events of one UTC day as the query engine's block
/// (migration 17): a copy that retention drops with the raw events and a
/// user deletion drops whole for its site.
pub const DROP_SITE_BLOCKS: &str = "DELETE FROM event_blocks WHERE site_id = $1";
pub const DROP_BLOCKS_BEFORE: &str = "DELETE FROM event_blocks WHERE day < $1";

/// The tables with rows of one site that only PostgreSQL has: the
/// idempotency keys beside the partitioned `events` (migration 12).
pub const POSTGRES_SITE_TABLES: [&str; 1] = ["event_keys"];

/// The column of a daily or hourly rollup row's day.
pub const DAY: &str = "day";
/// The column of a weekly cache row's last day (its Sunday).
pub const LAST_DAY: &str = "last_day";

/// The tables of user sets.
pub const SET_TABLES: [&SetTable; 2] = [&DAILY_USER_SETS, &HOURLY_USER_SETS];
/// The weekly caches.
pub const WEEK_CACHES: [&WeekCache; 2] = [&USER_WEEKS, &PATH_WEEKS];

/// Every rollup table whose rows belong to one day, or to a week ending on
/// a day, with that day's column: what retention drops by age
/// (`RETENTION_ROLLUPS=drop`). The counts and sets keyed by `day`, each
/// weekly cache's daily table by `day` and the cache by `last_day`. The
/// live minutes are keyed by minute and pruned on their own.
pub fn dated_rollups() -> Vec<(&'static str, &'static str)> {
    let counts = CountKind::ALL.into_iter().map(count_table).map(|t| (t.name, t.key));
    let sets = SET_TABLES.into_iter().map(|t| (t.name, t.key));
    let mut out: Vec<(&str, &str)> = counts
        .chain(sets)
        .filter(|(_, key)| key.contains(&DAY))
        .map(|(name, _)| (name, DAY))
        .collect();
    out.push((DAILY_VISITORS, DAY));
    for w in WEEK_CACHES {
        out.push((w.daily, DAY));
        out.push((w.weekly, LAST_DAY));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|(name, _)| seen.insert(*name));
    out
}

pub const INSERT_SITE: &str = "INSERT INTO sites (site_id) VALUES ($1) ON CONFLICT (site_id) DO NOTHING";
pub const SET_USER_COUNT: &str = "UPDATE sites SET user_count = $1 WHERE site_id = $2";
pub const READ_USER_COUNT: &str = "SELECT user_count FROM sites WHERE site_id = $1";
/// A site's deletion epoch (`ingest::KnownOrdinals`).
pub const READ_DELETIONS: &str = "SELECT deletions FROM sites WHERE site_id = $1";
/// What removes raw events besides a user deletion, in `store_epochs`'
/// one row (migration 16): retention raises the first day it keeps before
/// it drops anything (never lowers it: what was dropped stays dropped), a
/// site's removal counts itself in its own transaction.
pub const RAISE_FIRST_DAY_KEPT: &str =
    "UPDATE store_epochs SET first_day_kept = $1 WHERE id = 1 AND (first_day_kept IS NULL OR first_day_kept < $1)";
pub const COUNT_SITE_REMOVAL: &str = "UPDATE store_epochs SET site_removals = site_removals + 1 WHERE id = 1";
pub const READ_ORDINAL: &str = "SELECT ordinal FROM site_users WHERE site_id = $1 AND user_id = $2";
/// Followed by `VALUES` rows of (site, user, ordinal).
pub const INSERT_ORDINALS: &str = "INSERT INTO site_users (site_id, user_id, ordinal)";

/// A weekly cache of a daily blob table (`maintenance::weeks`): the weekly
/// table, the daily table it caches, the daily column its `source` sums,
/// and the blob column. `epoch_weight`: for user sets, the site's deletion
/// epoch (`sites.deletions`) times this is added to the sum, so that a week
/// built before a user's deletion never matches after it (a set can then
/// shrink and regrow to the same count).
#[derive(Debug)]
pub struct WeekCache {
    pub weekly: &'static str,
    pub daily: &'static str,
    pub source: &'static str,
    pub blob: &'static str,
    pub epoch_weight: i64,
}

pub const USER_WEEKS: WeekCache = WeekCache {
    weekly: "weekly_user_sets",
    daily: "daily_user_sets",
    source: "user_count",
    blob: "users",
    // Above any week's sum of daily counts (7 × 2^32).
    epoch_weight: 1 << 36,
};

pub const PATH_WEEKS: WeekCache = WeekCache {
    weekly: "weekly_path_packs",
    daily: "daily_path_packs",
    source: "rev",
    blob: "paths",
    epoch_weight: 0,
};

impl WeekCache {
    /// SQL adding the epoch term for site `site_sql` (an expression) to a sum.
    pub fn epoch_term(&self, site_sql: &str) -> String {
        if self.epoch_weight == 0 {
            String::new()
        } else {
            format!(
                " + {} * COALESCE((SELECT s.deletions FROM sites s WHERE s.site_id = {site_sql}), 0)",
                self.epoch_weight
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_their_columns() {
        assert_eq!(
            MINUTE_EVENT_COUNTS.add_sql(2),
            "INSERT INTO minute_event_counts (site_id, minute, events) VALUES ($1,$2,$3),($4,$5,$6) \
             ON CONFLICT (site_id, minute) DO UPDATE SET events = minute_event_counts.events + excluded.events"
        );
        assert_eq!(
            HOURLY_USER_SETS.read_one_sql(),
            "SELECT users FROM hourly_user_sets WHERE site_id = $1 AND day = $2 AND hour = $3"
        );
        assert!(DAILY_USER_SETS
            .write_sql(1)
            .ends_with("user_count = excluded.user_count"));
        for kind in CountKind::ALL {
            assert!(!count_table(kind).key.is_empty());
        }
    }

    #[test]
    fn retention_finds_every_dated_rollup() {
        let mut got = dated_rollups();
        got.sort_unstable();
        assert_eq!(
            got,
            [
                ("daily_event_counts", DAY),
                ("daily_path_packs", DAY),
                ("daily_path_views", DAY),
                ("daily_user_sets", DAY),
                ("daily_visitor_counts", DAY),
                ("daily_visitors", DAY),
                ("hourly_event_counts", DAY),
                ("hourly_user_sets", DAY),
                ("weekly_path_packs", LAST_DAY),
                ("weekly_user_sets", LAST_DAY),
            ]
        );
    }
}
