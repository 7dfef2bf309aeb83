//! Goals: what counts as a conversion on a site. A pageview goal matches
//! pageviews whose path fits a pattern; a custom-event goal matches events
//! of one name, optionally only those with one property value.
//!
//! Patterns: `*` stands for any run of characters without `/` (one path
//! segment or part of one), `**` for any run at all; everything else is
//! literal and case-sensitive, and the pattern covers the whole path
//! (`/blog/*` matches `/blog/a` but not `/blog/a/b` nor `/blog`).

use crate::dimension::EventDimension;
use crate::filter::{Condition, Filter, FilterDimension, Operator};
use crate::reference::{RawEvent, PAGEVIEW};

/// Longest goal name, pattern, event name or property, in bytes.
pub const MAX_GOAL_TEXT: usize = 256;

/// A site's goal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Goal {
    /// Unique per site; what `event:goal` filters and rows name.
    pub name: String,
    pub kind: GoalKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GoalKind {
    /// Pageviews whose path matches `pattern`.
    Page { pattern: String },
    /// Events named `event`, with property `prop.0` equal to `prop.1` when given. With a `currency` (ISO 4217,
    /// upper case) it is a revenue goal: its conversions' `revenue_amount` in that `revenue_currency` add up.
    Event {
        event: String,
        prop: Option<(String, String)>,
        currency: Option<String>,
    },
}

/// The property holding an event's revenue amount (a decimal number).
pub const REVENUE_AMOUNT: &str = "revenue_amount";
/// The property holding its currency (ISO 4217).
pub const REVENUE_CURRENCY: &str = "revenue_currency";
/// Revenue is counted in millionths of the currency's unit.
pub const MICROS: i128 = 1_000_000;

/// A revenue amount as written (`12.5`, `-3`, `0.99`) in millionths; digits
/// past the sixth decimal are dropped. `None` for anything else.
pub fn parse_amount(text: &str) -> Option<i128> {
    let t = text.trim();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (whole, fraction) = t.split_once('.').unwrap_or((t, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 24 || !digits(whole) || !digits(fraction) {
        return None;
    }
    let mut micros: i128 = whole.parse::<i128>().ok()? * MICROS;
    let mut unit = MICROS / 10;
    for b in fraction.bytes().take(6) {
        micros += i128::from(b - b'0') * unit;
        unit /= 10;
    }
    Some(if negative { -micros } else { micros })
}

/// Why a goal definition was refused, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct GoalError {
    pub field: &'static str,
    pub message: String,
}

fn check_text(field: &'static str, value: &str) -> Result<(), GoalError> {
    let message = if value.trim().is_empty() {
        "must not be empty".to_owned()
    } else if value.len() > MAX_GOAL_TEXT {
        format!("must be at most {MAX_GOAL_TEXT} bytes")
    } else if value.chars().any(char::is_control) {
        "must not contain control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(GoalError { field, message })
}

impl Goal {
    /// A pageview goal, validated.
    pub fn page(name: &str, pattern: &str) -> Result<Goal, GoalError> {
        check_text("name", name)?;
        check_text("page", pattern)?;
        if !pattern.starts_with('/') {
            return Err(GoalError {
                field: "page",
                message: format!("a path pattern starts with \"/\", found {pattern:?}"),
            });
        }
        if pattern.contains("***") {
            return Err(GoalError {
                field: "page",
                message: "\"***\" is not a wildcard: use \"*\" or \"**\"".to_owned(),
            });
        }
        Ok(Goal {
            name: name.to_owned(),
            kind: GoalKind::Page {
                pattern: pattern.to_owned(),
            },
        })
    }

    /// A custom-event goal, validated.
    pub fn event(name: &str, event: &str, prop: Option<(&str, &str)>) -> Result<Goal, GoalError> {
        check_text("name", name)?;
        check_text("event", event)?;
        if let Some((key, value)) = prop {
            check_text("prop_key", key)?;
            if value.len() > MAX_GOAL_TEXT {
                return Err(GoalError {
                    field: "prop_value",
                    message: format!("must be at most {MAX_GOAL_TEXT} bytes"),
                });
            }
        }
        Ok(Goal {
            name: name.to_owned(),
            kind: GoalKind::Event {
                event: event.to_owned(),
                prop: prop.map(|(k, v)| (k.to_owned(), v.to_owned())),
                currency: None,
            },
        })
    }

    /// The custom-event goal as a revenue goal in `currency` (three letters, any case).
    pub fn with_currency(mut self, currency: &str) -> Result<Goal, GoalError> {
        let code = currency.trim().to_ascii_uppercase();
        let GoalKind::Event { currency: slot, .. } = &mut self.kind else {
            return Err(GoalError {
                field: "currency",
                message: "only a custom-event goal has revenue".to_owned(),
            });
        };
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(GoalError {
                field: "currency",
                message: format!("an ISO 4217 code such as EUR or USD, found {currency:?}"),
            });
        }
        *slot = Some(code);
        Ok(self)
    }

    /// A revenue goal's currency.
    pub fn currency(&self) -> Option<&str> {
        match &self.kind {
            GoalKind::Event { currency, .. } => currency.as_deref(),
            GoalKind::Page { .. } => None,
        }
    }

    /// The revenue an event brings on this goal: its amount when the goal
    /// is a revenue goal, matches it, and the event's currency is the goal's.
    pub fn revenue(&self, e: &RawEvent) -> Option<i128> {
        let currency = self.currency()?;
        if !self.matches(e) || e.props.get(REVENUE_CURRENCY).map(String::as_str) != Some(currency) {
            return None;
        }
        parse_amount(e.props.get(REVENUE_AMOUNT)?)
    }

    /// The goal as the API shows and takes it: `{"name", "page"}` or
    /// `{"name", "event", "prop"?, "currency"?}` (a funnel's inline step).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.kind {
            GoalKind::Page { pattern } => serde_json::json!({"name": self.name, "page": pattern}),
            GoalKind::Event { event, prop, currency } => {
                let mut v = serde_json::json!({"name": self.name, "event": event});
                if let Some((k, val)) = prop {
                    v["prop"] = serde_json::json!({k: val});
                }
                if let Some(c) = currency {
                    v["currency"] = serde_json::json!(c);
                }
                v
            }
        }
    }

    /// Whether an event converts on this goal (the reference's test).
    pub fn matches(&self, e: &RawEvent) -> bool {
        match &self.kind {
            GoalKind::Page { pattern } => e.name == PAGEVIEW && wildcard_matches(pattern, &e.path),
            GoalKind::Event { event, prop, .. } => {
                e.name == *event
                    && prop
                        .as_ref()
                        .is_none_or(|(k, v)| e.props.get(k).is_some_and(|x| x == v))
            }
        }
    }

    /// The goal as a filter over event properties, which the column
    /// engine evaluates like any other.
    pub fn to_filter(&self) -> Filter {
        let is = |dimension: EventDimension, value: &str| {
            Filter::Condition(Condition::plain(
                Operator::Is,
                FilterDimension::Event(dimension),
                vec![value.to_owned()],
            ))
        };
        match &self.kind {
            GoalKind::Page { pattern } => Filter::And(vec![
                is(EventDimension::Name, PAGEVIEW),
                Filter::Condition(Condition::anchored_regex(
                    FilterDimension::Event(EventDimension::Page),
                    &pattern_regex(pattern),
                )),
            ]),
            GoalKind::Event { event, prop, .. } => {
                let mut parts = vec![is(EventDimension::Name, event)];
                if let Some((k, v)) = prop {
                    parts.push(is(EventDimension::Prop(k.clone()), v));
                }
                Filter::And(parts)
            }
        }
    }
}

/// Whether `path` matches `pattern` (`*` within a segment, `**` across),
/// by trying every split: patterns and paths are short.
pub fn wildcard_matches(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p {
            [] => s.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=s.len()).any(|k| go(rest, &s[k..])),
            [b'*', rest @ ..] => {
                let segment = s.iter().position(|&c| c == b'/').unwrap_or(s.len());
                (0..=segment).any(|k| go(rest, &s[k..]))
            }
            [c, rest @ ..] => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

/// The anchored regular expression of a pattern.
pub fn pattern_regex(pattern: &str) -> String {
    let mut out = String::from("^");
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("**") {
            out.push_str("(?s:.*)");
            rest = r;
        } else if let Some(r) = rest.strip_prefix('*') {
            out.push_str("[^/]*");
            rest = r;
        } else {
            let literal = rest.find('*').map_or(rest, |k| &rest[..k]);
            out.push_str(&regex::escape(literal));
            rest = &rest[literal.len()..];
        }
    }
    out.push('$');
    out
}

/// `f` with every `event:goal` condition replaced by the filters of the
/// goals it selects: their disjunction for a positive operator, its
/// negation for a negated one (an event then converts on none of them).
pub(crate) fn expand(f: &Filter, goals: &[Goal]) -> Filter {
    match f {
        Filter::Condition(c) if *c.dimension() == FilterDimension::Goal => {
            let negated = c.op().is_negated();
            // The goals whose names a positive operator would match.
            let any = Filter::Or(
                goals
                    .iter()
                    .filter(|g| c.holds(Some(&g.name)) != negated)
                    .map(Goal::to_filter)
                    .collect(),
            );
            if negated {
                Filter::Not(Box::new(any))
            } else {
                any
            }
        }
        Filter::Condition(_) => f.clone(),
        Filter::And(fs) => Filter::And(fs.iter().map(|f| expand(f, goals)).collect()),
        Filter::Or(fs) => Filter::Or(fs.iter().map(|f| expand(f, goals)).collect()),
        Filter::Not(f) => Filter::Not(Box::new(expand(f, goals))),
    }
}
