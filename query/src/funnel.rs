//! Funnels: 2 to 8 ordered steps, each a goal, counted within visits.
//!
//! # Semantics (the reference, [`evaluate`])
//! - The kept events are those of the query API: in the range, every
//!   top-level filter holding (`event:*` conditions on the event, `visit:*`
//!   on its visit, `event:goal` on the goals it converts on).
//! - In each visit, its kept events in order: step 1 is reached by the
//!   first event that matches it, step k+1 by the first event after step
//!   k's that matches step k+1. Events without a visitor are in no visit.
//! - A step's visitors are the distinct visitors with a visit that reached
//!   it. `conversion_rate` is a step's visitors as a percentage of step 1's,
//!   `conversion_rate_step` of the previous step's (two decimals, 0 when
//!   dividing by 0); `dropoff` is the previous step's visitors less this
//!   step's (0 for step 1), `dropoff_percentage` that as a percentage of
//!   the previous step's.

use std::collections::BTreeSet;

use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::{quoted, type_name, Errors, ValidationErrors};
use crate::goal::Goal;
use crate::reference::{sessionize, EvalError, RawEvent};
use crate::time::ResolvedRange;
use crate::Query;

pub const MIN_STEPS: usize = 2;
pub const MAX_STEPS: usize = 8;

/// A step as asked: a goal of the site by name, or defined inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepSpec {
    Goal(String),
    Inline(Goal),
}

impl StepSpec {
    pub fn to_json(&self) -> Value {
        match self {
            StepSpec::Goal(name) => json!({"goal": name}),
            StepSpec::Inline(g) => g.to_json(),
        }
    }
}

/// A validated funnel request: the range and filters as a query, and the
/// steps (bound to goals by [`Funnel::bind_goals`]).
#[derive(Debug, Clone)]
pub struct Funnel {
    query: Query,
    specs: Vec<StepSpec>,
    steps: Vec<Goal>,
}

const KEYS: [&str; 5] = ["site_id", "date_range", "filters", "steps", "funnel"];

impl Funnel {
    pub fn site_id(&self) -> &str {
        self.query.site_id()
    }

    /// The range and filters, as a query of `visitors`.
    pub fn query(&self) -> &Query {
        &self.query
    }

    pub fn specs(&self) -> &[StepSpec] {
        &self.specs
    }

    /// The bound steps (empty before [`Funnel::bind_goals`]).
    pub fn steps(&self) -> &[Goal] {
        &self.steps
    }

    /// Reads `{site_id, date_range, filters?, steps}`; `funnel` (a saved
    /// funnel's name) instead of `steps` is resolved by the caller, who
    /// passes its steps as `saved`.
    pub fn parse(request: &Value, saved: Option<&[StepSpec]>) -> Result<Funnel, ValidationErrors> {
        let mut errors = Errors::default();
        let Value::Object(obj) = request else {
            errors.push(
                "",
                format!("the funnel must be a JSON object, found {}", type_name(request)),
            );
            return Err(ValidationErrors(errors.0));
        };
        for key in obj.keys() {
            if !KEYS.contains(&key.as_str()) {
                errors.push(key.clone(), format!("unknown key {}", quoted(key)));
            }
        }
        // The range and filters are read as the query API reads them, so
        // errors name the same parts.
        let mut as_query = Map::new();
        for key in ["site_id", "date_range", "filters"] {
            if let Some(v) = obj.get(key) {
                as_query.insert(key.to_owned(), v.clone());
            }
        }
        as_query.insert("metrics".to_owned(), json!(["visitors"]));
        let query = Query::parse(&Value::Object(as_query));
        if let Err(e) = &query {
            errors.0.extend(e.0.iter().cloned());
        }
        let specs = match (obj.get("steps"), obj.get("funnel"), saved) {
            (Some(_), Some(_), _) => {
                errors.push("funnel", "give either \"steps\" or \"funnel\", not both");
                None
            }
            (Some(v), None, _) => parse_steps(v, &mut errors),
            (None, Some(_), Some(saved)) => Some(saved.to_vec()),
            (None, Some(Value::String(_)), None) => {
                errors.push("funnel", "no saved funnel of that name");
                None
            }
            (None, Some(other), None) => {
                errors.push(
                    "funnel",
                    format!("expected a saved funnel's name, found {}", type_name(other)),
                );
                None
            }
            (None, None, _) => {
                errors.push("steps", "is required (or \"funnel\", a saved funnel's name)");
                None
            }
        };
        match (query, specs) {
            (Ok(query), Some(specs)) if errors.0.is_empty() => Ok(Funnel {
                query,
                specs,
                steps: Vec::new(),
            }),
            _ => Err(ValidationErrors(errors.0)),
        }
    }

    /// Binds the steps and the filters to the site's goals: a `{"goal"}`
    /// step must name one (else the error names `steps[i].goal`).
    pub fn bind_goals(mut self, goals: Vec<Goal>) -> Result<Funnel, ValidationErrors> {
        let mut errors = Errors::default();
        let mut steps = Vec::new();
        for (i, spec) in self.specs.iter().enumerate() {
            match spec {
                StepSpec::Inline(g) => steps.push(g.clone()),
                StepSpec::Goal(name) => match goals.iter().find(|g| g.name == *name) {
                    Some(g) => steps.push(g.clone()),
                    None => errors.push(
                        format!("steps[{i}].goal"),
                        format!("the goal {} is not configured for this site", quoted(name)),
                    ),
                },
            }
        }
        let query = self.query.bind_goals(goals);
        if let Err(e) = &query {
            errors.0.extend(e.0.iter().cloned());
        }
        match query {
            Ok(query) if errors.0.is_empty() => {
                self.query = query;
                self.steps = steps;
                Ok(self)
            }
            _ => Err(ValidationErrors(errors.0)),
        }
    }

    /// The normalized request as JSON (`steps` as given).
    pub fn to_json(&self) -> Value {
        let q = self.query.to_json();
        json!({
            "site_id": q["site_id"],
            "date_range": q["date_range"],
            "filters": q["filters"],
            "steps": self.specs.iter().map(StepSpec::to_json).collect::<Vec<_>>(),
        })
    }
}

/// Reads a `steps` array (also a saved funnel's).
pub fn parse_steps_json(v: &Value) -> Result<Vec<StepSpec>, ValidationErrors> {
    let mut errors = Errors::default();
    match parse_steps(v, &mut errors) {
        Some(s) if errors.0.is_empty() => Ok(s),
        _ => Err(ValidationErrors(errors.0)),
    }
}

fn parse_steps(v: &Value, errors: &mut Errors) -> Option<Vec<StepSpec>> {
    let Value::Array(items) = v else {
        errors.push("steps", format!("expected an array of steps, found {}", type_name(v)));
        return None;
    };
    if !(MIN_STEPS..=MAX_STEPS).contains(&items.len()) {
        errors.push(
            "steps",
            format!("a funnel has {MIN_STEPS} to {MAX_STEPS} steps, found {}", items.len()),
        );
        return None;
    }
    let before = errors.len();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("steps[{i}]");
        let Value::Object(step) = item else {
            errors.push(path, format!("a step must be an object, found {}", type_name(item)));
            continue;
        };
        for key in step.keys() {
            if !["goal", "name", "page", "event", "prop"].contains(&key.as_str()) {
                errors.push(format!("{path}.{key}"), format!("unknown step key {}", quoted(key)));
            }
        }
        let text = |key: &str, errors: &mut Errors| match step.get(key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                errors.push(
                    format!("{path}.{key}"),
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        };
        let (goal, name, page, event) = (
            text("goal", errors),
            text("name", errors),
            text("page", errors),
            text("event", errors),
        );
        let prop = match step.get("prop") {
            None => None,
            Some(Value::Object(m)) if m.len() == 1 => match m.iter().next() {
                Some((k, Value::String(v))) => Some((k.clone(), v.clone())),
                _ => {
                    errors.push(format!("{path}.prop"), "expected {\"key\": \"value\"}");
                    None
                }
            },
            Some(_) => {
                errors.push(format!("{path}.prop"), "expected {\"key\": \"value\"}");
                None
            }
        };
        let spec = match (goal, page, event) {
            (Some(g), None, None) if name.is_none() && prop.is_none() => Some(StepSpec::Goal(g)),
            (None, Some(p), None) if prop.is_none() => {
                let name = name.clone().unwrap_or_else(|| p.clone());
                Goal::page(&name, &p)
                    .map(StepSpec::Inline)
                    .map_err(|e| errors.push(format!("{path}.{}", step_field(e.field)), e.message))
                    .ok()
            }
            (None, None, Some(ev)) => {
                let name = name.clone().unwrap_or_else(|| ev.clone());
                Goal::event(&name, &ev, prop.as_ref().map(|(k, v)| (k.as_str(), v.as_str())))
                    .map(StepSpec::Inline)
                    .map_err(|e| errors.push(format!("{path}.{}", step_field(e.field)), e.message))
                    .ok()
            }
            _ => {
                errors.push(
                    path,
                    "a step is {\"goal\": name}, {\"name\"?, \"page\": pattern} or {\"name\"?, \"event\": name, \"prop\"?}",
                );
                None
            }
        };
        out.extend(spec);
    }
    (errors.len() == before).then_some(out)
}

/// A goal definition's field as a step's key.
fn step_field(field: &str) -> &str {
    match field {
        "prop_key" | "prop_value" => "prop",
        f => f,
    }
}

/// One step's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepResult {
    pub name: String,
    pub visitors: u64,
    pub conversion_rate: f64,
    pub conversion_rate_step: f64,
    pub dropoff: u64,
    pub dropoff_percentage: f64,
}

/// `{"steps": [...], "visitors": n, "query": {...}}`: `visitors` are those
/// of all kept events (the funnel's audience).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelResponse {
    pub steps: Vec<StepResult>,
    pub visitors: u64,
    pub query: Value,
}

impl FunnelResponse {
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `100 * n / d` rounded half up to two decimals; 0 when `d` is 0.
fn percent(n: u64, d: u64) -> f64 {
    if d == 0 {
        return 0.0;
    }
    let (n, d) = (u128::from(n), u128::from(d));
    ((20_000 * n + d) / (2 * d)) as f64 / 100.0
}

/// The response from each step's visitors and the audience.
pub fn respond(funnel: &Funnel, reached: &[u64], visitors: u64, range: ResolvedRange, tz: Tz) -> FunnelResponse {
    let first = reached.first().copied().unwrap_or(0);
    let steps = funnel
        .steps
        .iter()
        .zip(reached)
        .enumerate()
        .map(|(i, (g, &n))| {
            let prev = if i == 0 { n } else { reached[i - 1] };
            StepResult {
                name: g.name.clone(),
                visitors: n,
                conversion_rate: percent(n, first),
                conversion_rate_step: percent(n, prev),
                dropoff: prev.saturating_sub(n),
                dropoff_percentage: percent(prev.saturating_sub(n), prev),
            }
        })
        .collect();
    let mut query = funnel.to_json();
    query["date_range"] = funnel.query.echo_json(range, tz)["date_range"].clone();
    FunnelResponse { steps, visitors, query }
}

/// The funnel over a site's raw events, by brute force.
pub fn evaluate(
    funnel: &Funnel,
    range: ResolvedRange,
    tz: Tz,
    events: &[RawEvent],
) -> Result<FunnelResponse, EvalError> {
    if range.end < range.start {
        return Err(EvalError::InvalidRange);
    }
    let sessions = sessionize(events)?;
    // The kept events: a query without dimensions keeps the same ones, so
    // ask the reference which they are, one event at a time.
    let kept = crate::reference::kept_events(funnel.query(), range, events, &sessions);
    let kept_set: BTreeSet<usize> = kept.iter().copied().collect();
    let mut reached: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); funnel.steps.len()];
    for visit in &sessions.visits {
        let mut next = 0;
        for &i in &visit.events {
            if next < funnel.steps.len() && kept_set.contains(&i) && funnel.steps[next].matches(&events[i]) {
                reached[next].insert(&visit.visitor);
                next += 1;
            }
        }
    }
    let visitors = kept
        .iter()
        .filter_map(|&i| events[i].visitor.as_deref())
        .collect::<BTreeSet<_>>()
        .len() as u64;
    let reached: Vec<u64> = reached.iter().map(|r| r.len() as u64).collect();
    Ok(respond(funnel, &reached, visitors, range, tz))
}
