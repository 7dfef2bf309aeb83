//! A response as CSV (`Accept: text/csv`): one header line of the
//! dimensions' then the metrics' names, as asked, then one line per
//! result row, values as in the JSON (`1.5`, `100`; revenue as its amount,
//! empty when it is `null`). Quoting is the
//! `csv` crate's (RFC 4180): a value with a comma, quote or line break is
//! quoted, its quotes doubled.

use crate::reference::{MetricValue, Response};
use crate::Query;

pub fn to_csv(query: &Query, response: &Response) -> Vec<u8> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = query
        .dimensions()
        .iter()
        .map(|d| d.name())
        .chain(query.metrics().iter().map(|m| m.name().to_string()));
    // Writing into a Vec cannot fail.
    let _ = out.write_record(header);
    for row in &response.results {
        let metrics = row.metrics.iter().map(|m| match m {
            MetricValue::Int(n) => n.to_string(),
            MetricValue::Float(x) => serde_json::Number::from_f64(*x).map_or_else(|| x.to_string(), |n| n.to_string()),
            // The amount alone: a number column (the currency is the goal's).
            MetricValue::Money { micros, .. } => MetricValue::money_text(*micros),
            MetricValue::Null => String::new(),
        });
        let _ = out.write_record(row.dimensions.iter().cloned().chain(metrics));
    }
    out.into_inner().unwrap_or_default()
}
