//! Reading the weekly caches (`maintenance::weeks` builds them): a week's
//! row is taken only if its `source` equals the sum recomputed from the
//! daily rows in the same statement, and the week's days are read
//! otherwise, so a stale or missing week costs speed, never exactness.

use crate::store::schema::WeekCache;

/// `<name> AS (…)`: the current weekly rows of site `$1` among the weeks
/// from `$4` to `$5` (first and last day), for a statement's `WITH`.
pub fn fresh_weeks_cte(cache: &WeekCache, name: &str) -> String {
    let WeekCache {
        weekly,
        daily,
        source,
        blob,
        ..
    } = cache;
    let epoch = cache.epoch_term("$1");
    format!(
        "{name} AS (SELECT w.first_day, w.last_day, w.{blob} AS blob FROM {weekly} w \
           WHERE w.site_id = $1 AND w.first_day >= $4 AND w.last_day <= $5 \
           AND w.source = (SELECT SUM(d.{source}){epoch} FROM {daily} d \
             WHERE d.site_id = $1 AND d.day >= w.first_day AND d.day <= w.last_day))"
    )
}

/// Rows tagged `tag` of the cache's blobs of site `$1` from `$2` to `$3`:
/// the current weeks of `cte`, and the daily rows of every other day.
pub fn blobs(cache: &WeekCache, tag: i32, cte: &str) -> String {
    let WeekCache { daily, blob, .. } = cache;
    format!(
        "SELECT {tag}, NULL, NULL, NULL, blob FROM {cte} UNION ALL \
         SELECT {tag}, NULL, NULL, NULL, d.{blob} FROM {daily} d \
           WHERE d.site_id = $1 AND d.day >= $2 AND d.day <= $3 \
           AND NOT EXISTS (SELECT 1 FROM {cte} c WHERE d.day >= c.first_day AND d.day <= c.last_day)"
    )
}
