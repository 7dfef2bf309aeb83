//! Helpers shared by the query-parameter unit tests.

use chrono::NaiveDate;
use std::collections::HashMap;

pub fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// The fixed "today" the parameter tests resolve default periods against.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 11, 20).unwrap_or_default()
}
