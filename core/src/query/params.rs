//! Query parameters, parsed the same way by every read endpoint: a site,
//! a period (`date`, or `from`/`to`, or today), a limit, and no parameter
//! the endpoint does not know.

use crate::event::{text, FieldError, MAX_SITE_ID_CHARS};
use chrono::NaiveDate;
use sea_orm::Value;
use std::collections::HashMap;

/// A year and a leap day: the longest period a dashboard asks for.
pub const MAX_RANGE_DAYS: i64 = 366;

/// Query parameters by name.
pub type Params = HashMap<String, String>;

fn parse_date(errors: &mut Vec<FieldError>, field: &str, raw: &str) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) if raw.len() == 10 => Some(d),
        _ => {
            errors.push(FieldError::new(
                field,
                format!("must be a date as YYYY-MM-DD (got `{raw}`)"),
            ));
            None
        }
    }
}

/// Names every parameter not in `known`, sorted, so each query endpoint
/// rejects typos the same way.
pub fn reject_unknown(params: &Params, known: &[&str], errors: &mut Vec<FieldError>) {
    let mut unknown: Vec<&String> = params.keys().filter(|k| !known.contains(&k.as_str())).collect();
    unknown.sort();
    for k in unknown {
        errors.push(FieldError::new(k.as_str(), "unknown parameter"));
    }
}

/// `site_id`: required, 1–100 characters.
pub fn parse_site(params: &Params, errors: &mut Vec<FieldError>) -> String {
    match params.get("site_id") {
        None => {
            errors.push(FieldError::new("site_id", "is required"));
            String::new()
        }
        Some(s) if s.is_empty() => {
            errors.push(FieldError::new("site_id", "must not be empty"));
            String::new()
        }
        Some(s) if s.chars().count() > MAX_SITE_ID_CHARS => {
            errors.push(FieldError::new(
                "site_id",
                format!("must be at most {MAX_SITE_ID_CHARS} characters"),
            ));
            String::new()
        }
        Some(s) => {
            let before = errors.len();
            text::check_text(errors, "site_id", s, text::IN_NAMES);
            if errors.len() > before {
                String::new()
            } else {
                s.clone()
            }
        }
    }
}

/// A whole number `field` from 1 to `max`, `default` when absent.
pub fn parse_limit(params: &Params, field: &str, default: u32, max: u32, errors: &mut Vec<FieldError>) -> u32 {
    match params.get(field) {
        None => default,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    field,
                    format!("must be a whole number from 1 to {max}"),
                ));
                default
            }
        },
    }
}

/// The period of a query: `date=`, or `from`/`to` (inclusive, at most
/// `MAX_RANGE_DAYS`), or today. Returns (from, to, asked with `date` or nothing).
pub fn parse_period(params: &Params, today: NaiveDate, errors: &mut Vec<FieldError>) -> (NaiveDate, NaiveDate, bool) {
    let date = params.get("date");
    let (from_raw, to_raw) = (params.get("from"), params.get("to"));
    let (mut from, mut to, single_date) = (today, today, date.is_some() || (from_raw.is_none() && to_raw.is_none()));
    match (date, from_raw, to_raw) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            errors.push(FieldError::new("date", "give either date or from/to, not both"));
        }
        (Some(d), None, None) => {
            if let Some(d) = parse_date(errors, "date", d) {
                (from, to) = (d, d);
            }
        }
        (None, Some(f), Some(t)) => {
            let f = parse_date(errors, "from", f);
            let t = parse_date(errors, "to", t);
            if let (Some(f), Some(t)) = (f, t) {
                if f > t {
                    errors.push(FieldError::new("to", "must not be before from"));
                } else if (t - f).num_days() + 1 > MAX_RANGE_DAYS {
                    errors.push(FieldError::new(
                        "to",
                        format!("a range may span at most {MAX_RANGE_DAYS} days"),
                    ));
                }
                (from, to) = (f, t);
            }
        }
        (None, Some(_), None) => errors.push(FieldError::new("to", "is required with from")),
        (None, None, Some(_)) => errors.push(FieldError::new("from", "is required with to")),
        (None, None, None) => {}
    }
    (from, to, single_date)
}

/// The period of the same length that ends the day before `from`.
pub fn previous_period(from: NaiveDate, to: NaiveDate) -> (NaiveDate, NaiveDate) {
    let len = to - from + chrono::Duration::days(1);
    (from - len, from - chrono::Duration::days(1))
}

/// `errors` as the result of a parse that produced `value`.
pub fn finish<T>(value: T, errors: Vec<FieldError>) -> Result<T, Vec<FieldError>> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(errors)
    }
}

/// `$1` site, `$2`/`$3` the period's first and last day.
pub fn period_values(site_id: &str, from: NaiveDate, to: NaiveDate) -> Vec<Value> {
    vec![site_id.into(), from.into(), to.into()]
}
