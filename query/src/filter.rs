//! Filters: conditions on one dimension, combined with `and`, `or` and `not`.

use regex::{Regex, RegexBuilder};
use serde_json::{json, Value};

use crate::dimension::{dimension_error_message, Dimension, EventDimension, VisitDimension};
use crate::error::{quoted, type_name, Errors};

/// Deepest allowed nesting: a top-level filter is at depth 1, each `and`/`or`/`not` adds one.
pub const MAX_FILTER_DEPTH: usize = 16;
/// Most filter nodes (conditions plus `and`/`or`/`not`) in one query.
pub const MAX_FILTER_NODES: usize = 256;
/// Most clauses over all conditions of one query.
pub const MAX_FILTER_CLAUSES: usize = 10_000;
/// Compiled-size limit of one `matches` regular expression, in bytes.
pub const MAX_REGEX_SIZE: usize = 1 << 20;

/// A condition's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Is,
    IsNot,
    Contains,
    ContainsNot,
    Matches,
    MatchesNot,
}

impl Operator {
    pub const ALL: [Operator; 6] = [
        Operator::Is,
        Operator::IsNot,
        Operator::Contains,
        Operator::ContainsNot,
        Operator::Matches,
        Operator::MatchesNot,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operator::Is => "is",
            Operator::IsNot => "is_not",
            Operator::Contains => "contains",
            Operator::ContainsNot => "contains_not",
            Operator::Matches => "matches",
            Operator::MatchesNot => "matches_not",
        }
    }

    /// `is_not`, `contains_not`, `matches_not`: true when no clause matches.
    pub fn is_negated(self) -> bool {
        matches!(self, Operator::IsNot | Operator::ContainsNot | Operator::MatchesNot)
    }

    fn is_regex(self) -> bool {
        matches!(self, Operator::Matches | Operator::MatchesNot)
    }
}

/// What a condition tests: a property of the event, or of its visit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FilterDimension {
    Event(EventDimension),
    Visit(VisitDimension),
    /// `event:goal`: the clauses are goal names, tested against the names
    /// of the goals the event converts on.
    Goal,
}

impl FilterDimension {
    pub fn name(&self) -> String {
        match self {
            FilterDimension::Event(e) => e.name(),
            FilterDimension::Visit(v) => v.name().to_owned(),
            FilterDimension::Goal => crate::dimension::GOAL.to_owned(),
        }
    }
}

/// `[op, dimension, clauses, {"case_sensitive": bool}?]`.
#[derive(Debug, Clone)]
pub struct Condition {
    op: Operator,
    dimension: FilterDimension,
    clauses: Vec<String>,
    case_sensitive: bool,
    /// One compiled pattern per clause for `matches`/`matches_not`; empty otherwise.
    patterns: Vec<Regex>,
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        // The patterns are compiled from the clauses and the case flag, so they add nothing to compare.
        self.op == other.op
            && self.dimension == other.dimension
            && self.clauses == other.clauses
            && self.case_sensitive == other.case_sensitive
    }
}

impl Condition {
    pub fn op(&self) -> Operator {
        self.op
    }

    pub fn dimension(&self) -> &FilterDimension {
        &self.dimension
    }

    pub fn clauses(&self) -> &[String] {
        &self.clauses
    }

    pub fn case_sensitive(&self) -> bool {
        self.case_sensitive
    }

    /// Whether the condition holds for a value; `None` (the value does not exist, e.g. the visit of an event without
    /// a visitor, or the entry page of a visit without pageviews) satisfies no condition, negated or not.
    pub fn holds(&self, value: Option<&str>) -> bool {
        let Some(value) = value else { return false };
        let any = if self.op.is_regex() {
            self.patterns.iter().any(|p| p.is_match(value))
        } else if self.case_sensitive {
            self.clauses.iter().any(|c| self.clause_matches(value, c))
        } else {
            let value = value.to_lowercase();
            self.clauses
                .iter()
                .any(|c| self.clause_matches(&value, &c.to_lowercase()))
        };
        any != self.op.is_negated()
    }

    /// Whether the condition holds for a set of values (the goals an
    /// event converts on): a positive operator when some value matches a
    /// clause, a negated one when none does.
    pub fn holds_any(&self, values: &[&str]) -> bool {
        let negated = self.op.is_negated();
        values.iter().any(|v| self.holds(Some(v)) != negated) != negated
    }

    /// A condition built in code (goals' filters), case-sensitive.
    pub(crate) fn plain(op: Operator, dimension: FilterDimension, clauses: Vec<String>) -> Condition {
        Condition {
            op,
            dimension,
            clauses,
            case_sensitive: true,
            patterns: Vec::new(),
        }
    }

    /// `matches` with one regular expression built in code; an expression
    /// that does not compile (goals validate theirs first) matches nothing.
    pub(crate) fn anchored_regex(dimension: FilterDimension, regex: &str) -> Condition {
        Condition {
            op: Operator::Matches,
            dimension,
            clauses: vec![regex.to_owned()],
            case_sensitive: true,
            patterns: RegexBuilder::new(regex)
                .size_limit(MAX_REGEX_SIZE)
                .build()
                .into_iter()
                .collect(),
        }
    }

    fn clause_matches(&self, value: &str, clause: &str) -> bool {
        match self.op {
            Operator::Is | Operator::IsNot => value == clause,
            Operator::Contains | Operator::ContainsNot => value.contains(clause),
            Operator::Matches | Operator::MatchesNot => false,
        }
    }

    fn to_json(&self) -> Value {
        let mut v = vec![json!(self.op.name()), json!(self.dimension.name()), json!(self.clauses)];
        if !self.case_sensitive {
            v.push(json!({"case_sensitive": false}));
        }
        Value::Array(v)
    }
}

/// A filter: a condition, or a boolean combination of filters.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Condition(Condition),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

impl Filter {
    /// Evaluates the formula, asking `atom` for the truth of each condition.
    pub fn holds(&self, atom: &mut dyn FnMut(&Condition) -> bool) -> bool {
        match self {
            Filter::Condition(c) => atom(c),
            Filter::And(fs) => fs.iter().all(|f| f.holds(atom)),
            Filter::Or(fs) => fs.iter().any(|f| f.holds(atom)),
            Filter::Not(f) => !f.holds(atom),
        }
    }

    /// Every condition in the filter, depth first.
    pub fn conditions(&self) -> Vec<&Condition> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Condition>) {
        match self {
            Filter::Condition(c) => out.push(c),
            Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| f.collect(out)),
            Filter::Not(f) => f.collect(out),
        }
    }

    /// Whether any condition of the filter tests `event:goal`.
    pub fn mentions_goal(&self) -> bool {
        self.conditions()
            .iter()
            .any(|c| *c.dimension() == FilterDimension::Goal)
    }

    pub fn to_json(&self) -> Value {
        match self {
            Filter::Condition(c) => c.to_json(),
            Filter::And(fs) => json!(["and", fs.iter().map(Filter::to_json).collect::<Vec<_>>()]),
            Filter::Or(fs) => json!(["or", fs.iter().map(Filter::to_json).collect::<Vec<_>>()]),
            Filter::Not(f) => json!(["not", f.to_json()]),
        }
    }
}

/// Counts nodes and clauses while filters are read, to bound a query's size.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    nodes: usize,
    clauses: usize,
    /// Set once a limit has been reported, so it is reported once.
    exhausted: bool,
}

/// Reads the top-level `filters` array (an implicit `and`).
pub(crate) fn parse_filters(v: &Value, errors: &mut Errors) -> Vec<Filter> {
    let Value::Array(items) = v else {
        errors.push("filters", format!("expected an array, found {}", type_name(v)));
        return Vec::new();
    };
    let mut budget = Budget::default();
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| parse_filter(item, &format!("filters[{i}]"), 1, &mut budget, errors))
        .collect()
}

fn parse_filter(v: &Value, path: &str, depth: usize, budget: &mut Budget, errors: &mut Errors) -> Option<Filter> {
    if depth > MAX_FILTER_DEPTH {
        errors.push(
            path,
            format!("filters are nested deeper than {MAX_FILTER_DEPTH} levels"),
        );
        return None;
    }
    budget.nodes += 1;
    if budget.nodes > MAX_FILTER_NODES {
        if !budget.exhausted {
            budget.exhausted = true;
            errors.push(path, format!("the query has more than {MAX_FILTER_NODES} filters"));
        }
        return None;
    }
    let Value::Array(items) = v else {
        errors.push(path, format!("a filter must be an array, found {}", type_name(v)));
        return None;
    };
    let Some(head) = items.first() else {
        errors.push(path, "a filter must not be empty");
        return None;
    };
    let Value::String(op) = head else {
        errors.push(
            format!("{path}[0]"),
            format!("an operator must be a string, found {}", type_name(head)),
        );
        return None;
    };
    match op.as_str() {
        "and" | "or" => {
            if items.len() != 2 {
                errors.push(
                    path,
                    format!(
                        "{} takes exactly one list of filters: [{}, [...]]",
                        quoted(op),
                        quoted(op)
                    ),
                );
                return None;
            }
            let list_path = format!("{path}[1]");
            let Value::Array(children) = &items[1] else {
                errors.push(
                    list_path,
                    format!("expected a list of filters, found {}", type_name(&items[1])),
                );
                return None;
            };
            if children.is_empty() {
                errors.push(list_path, format!("{} needs at least one filter", quoted(op)));
                return None;
            }
            let before = errors.len();
            let parsed: Vec<Filter> = children
                .iter()
                .enumerate()
                .filter_map(|(i, c)| parse_filter(c, &format!("{list_path}[{i}]"), depth + 1, budget, errors))
                .collect();
            if errors.len() != before {
                return None;
            }
            Some(if op == "and" {
                Filter::And(parsed)
            } else {
                Filter::Or(parsed)
            })
        }
        "not" => {
            if items.len() != 2 {
                errors.push(path, "\"not\" takes exactly one filter: [\"not\", filter]");
                return None;
            }
            parse_filter(&items[1], &format!("{path}[1]"), depth + 1, budget, errors).map(|f| Filter::Not(Box::new(f)))
        }
        "has_done" | "has_not_done" => {
            errors.push(
                format!("{path}[0]"),
                format!("unsupported filter operator {}", quoted(op)),
            );
            None
        }
        name => {
            let Some(op) = Operator::ALL.into_iter().find(|o| o.name() == name) else {
                errors.push(
                    format!("{path}[0]"),
                    format!("unknown filter operator {}", quoted(name)),
                );
                return None;
            };
            parse_condition(op, items, path, budget, errors).map(Filter::Condition)
        }
    }
}

fn parse_condition(
    op: Operator,
    items: &[Value],
    path: &str,
    budget: &mut Budget,
    errors: &mut Errors,
) -> Option<Condition> {
    if !(3..=4).contains(&items.len()) {
        errors.push(
            path,
            format!(
                "{} takes a dimension, a list of clauses and optional modifiers",
                quoted(op.name())
            ),
        );
        return None;
    }
    let before = errors.len();

    let dim_path = format!("{path}[1]");
    let dimension = match &items[1] {
        Value::String(name) if name == "segment" => {
            errors.push(&dim_path, "unsupported filter dimension \"segment\"");
            None
        }
        Value::String(name) => match Dimension::parse(name) {
            Ok(Dimension::Event(e)) => Some(FilterDimension::Event(e)),
            Ok(Dimension::Visit(v)) => Some(FilterDimension::Visit(v)),
            Ok(Dimension::Goal) => Some(FilterDimension::Goal),
            Ok(Dimension::Time(_)) => {
                errors.push(
                    &dim_path,
                    format!(
                        "time dimension {} cannot be filtered on: set date_range instead",
                        quoted(name)
                    ),
                );
                None
            }
            Err(e) => {
                errors.push(&dim_path, dimension_error_message(e, name));
                None
            }
        },
        other => {
            errors.push(
                &dim_path,
                format!("a dimension must be a string, found {}", type_name(other)),
            );
            None
        }
    };

    let clauses_path = format!("{path}[2]");
    let mut clauses = Vec::new();
    match &items[2] {
        Value::Array(cs) if cs.is_empty() => errors.push(&clauses_path, "the list of clauses must not be empty"),
        Value::Array(cs) => {
            budget.clauses += cs.len();
            if budget.clauses > MAX_FILTER_CLAUSES {
                if !budget.exhausted {
                    budget.exhausted = true;
                    errors.push(
                        &clauses_path,
                        format!("the query's filters have more than {MAX_FILTER_CLAUSES} clauses"),
                    );
                }
            } else {
                for (i, c) in cs.iter().enumerate() {
                    match c {
                        Value::String(s) => clauses.push(s.clone()),
                        other => errors.push(
                            format!("{clauses_path}[{i}]"),
                            format!("a clause must be a string, found {}", type_name(other)),
                        ),
                    }
                }
            }
        }
        other => errors.push(
            &clauses_path,
            format!("expected a list of clauses, found {}", type_name(other)),
        ),
    }

    let mut case_sensitive = true;
    if let Some(m) = items.get(3) {
        let mod_path = format!("{path}[3]");
        match m {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("case_sensitive", Value::Bool(b)) => case_sensitive = *b,
                        ("case_sensitive", other) => errors.push(
                            format!("{mod_path}.case_sensitive"),
                            format!("expected a boolean, found {}", type_name(other)),
                        ),
                        (k, _) => errors.push(
                            format!("{mod_path}.{k}"),
                            format!("unknown filter modifier {}", quoted(k)),
                        ),
                    }
                }
            }
            other => errors.push(
                mod_path,
                format!("modifiers must be an object, found {}", type_name(other)),
            ),
        }
    }

    let mut patterns = Vec::new();
    if op.is_regex() {
        for (i, c) in clauses.iter().enumerate() {
            match RegexBuilder::new(c)
                .case_insensitive(!case_sensitive)
                .size_limit(MAX_REGEX_SIZE)
                .build()
            {
                Ok(r) => patterns.push(r),
                Err(e) => errors.push(
                    format!("{clauses_path}[{i}]"),
                    format!("invalid regular expression {}: {}", quoted(c), one_line(&e.to_string())),
                ),
            }
        }
    }

    if errors.len() != before {
        return None;
    }
    Some(Condition {
        op,
        dimension: dimension?,
        clauses,
        case_sensitive,
        patterns,
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
