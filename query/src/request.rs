//! The typed Stats API v2 query, read from JSON with one validation pass, and written back as the normalized JSON
//! echoed in a response's `query` field.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};

use crate::dimension::{dimension_error_message, Dimension, TimeDimension};
use crate::error::{quoted, type_name, Errors, ValidationErrors};
use crate::filter::{parse_filters, Filter, FilterDimension, Operator};
use crate::goal::Goal;
use crate::metric::{Metric, MetricError};
use crate::time::{parse_date_range, DateRangeSpec, ResolvedRange};

/// Largest `pagination.limit`, and its default.
pub const MAX_LIMIT: u64 = 10_000;

const KEYS: [&str; 8] = [
    "site_id",
    "metrics",
    "date_range",
    "dimensions",
    "filters",
    "order_by",
    "include",
    "pagination",
];

/// Sort direction of an `order_by` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Asc => "asc",
            Direction::Desc => "desc",
        }
    }
}

/// What an `order_by` entry sorts on: one of the query's metrics or dimensions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OrderKey {
    Metric(Metric),
    Dimension(Dimension),
}

impl OrderKey {
    pub fn name(&self) -> String {
        match self {
            OrderKey::Metric(m) => m.name().to_owned(),
            OrderKey::Dimension(d) => d.name(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderBy {
    pub key: OrderKey,
    pub direction: Direction,
}

/// `include`: extra data to put in `meta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Include {
    /// `meta.time_labels`: every bucket label of the range (needs a time dimension).
    pub time_labels: bool,
    /// `meta.total_rows`: the number of rows before pagination.
    pub total_rows: bool,
    /// Accepted; imported data does not exist here, so `meta.imports_included` is `false` when asked.
    pub imports: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pagination {
    /// 1..=10000, default 10000.
    pub limit: u64,
    /// Rows skipped, default 0.
    pub offset: u64,
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination {
            limit: MAX_LIMIT,
            offset: 0,
        }
    }
}

/// A validated query. Built only by [`Query::parse`], so every value of this type is valid.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    site_id: String,
    metrics: Vec<Metric>,
    date_range: DateRangeSpec,
    dimensions: Vec<Dimension>,
    filters: Vec<Filter>,
    order_by: Vec<OrderBy>,
    include: Include,
    pagination: Pagination,
    /// The site's goals, once bound ([`Query::bind_goals`]).
    goals: Vec<Goal>,
}

impl Query {
    /// The site's goals (none until [`Query::bind_goals`]): what `event:goal` filters and rows refer to.
    pub fn goals(&self) -> &[Goal] {
        &self.goals
    }

    /// Binds the query to its site's goals. Every clause of an `is` or `is_not` `event:goal` filter must name one
    /// of them (as `case_sensitive` says), else the error names the clause.
    pub fn bind_goals(mut self, goals: Vec<Goal>) -> Result<Query, ValidationErrors> {
        let mut errors = Errors::default();
        for (i, f) in self.filters.iter().enumerate() {
            check_goal_names(f, &format!("filters[{i}]"), &goals, &mut errors);
        }
        if !errors.0.is_empty() {
            return Err(ValidationErrors(errors.0));
        }
        self.goals = goals;
        Ok(self)
    }

    /// The top-level filters that do not test `event:goal`: what conversion rates divide by.
    pub fn non_goal_filters(&self) -> Vec<Filter> {
        self.filters.iter().filter(|f| !f.mentions_goal()).cloned().collect()
    }

    pub fn site_id(&self) -> &str {
        &self.site_id
    }

    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    pub fn date_range(&self) -> DateRangeSpec {
        self.date_range
    }

    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    /// The top-level filters; all of them must hold (an implicit `and`).
    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// The ordering in effect: as given, else the documented default (the time dimension ascending if there is one,
    /// then the first metric descending).
    pub fn order_by(&self) -> &[OrderBy] {
        &self.order_by
    }

    pub fn include(&self) -> Include {
        self.include
    }

    pub fn pagination(&self) -> Pagination {
        self.pagination
    }

    /// The query's time dimension, if any (there is at most one).
    pub fn time_dimension(&self) -> Option<TimeDimension> {
        self.dimensions.iter().find_map(|d| match d {
            Dimension::Time(t) => Some(*t),
            _ => None,
        })
    }

    /// Resolves `date_range` for a site in zone `tz` at instant `now`; see [`DateRangeSpec::resolve`].
    pub fn resolve(&self, now: DateTime<Utc>, tz: Tz, first_event: Option<DateTime<Utc>>) -> ResolvedRange {
        self.date_range.resolve(now, tz, first_event)
    }

    /// The normalized query as JSON, `date_range` as written. [`Query::parse`] of it gives this query back.
    pub fn to_json(&self) -> Value {
        self.json_with_range(self.date_range.to_json())
    }

    /// The normalized query as Plausible echoes it in a response: `date_range` resolved to the site's local
    /// datetimes, both ends included.
    pub fn echo_json(&self, range: ResolvedRange, tz: Tz) -> Value {
        self.json_with_range(range.to_json(tz))
    }

    fn json_with_range(&self, date_range: Value) -> Value {
        let mut include = Map::new();
        for (key, on) in [
            ("time_labels", self.include.time_labels),
            ("total_rows", self.include.total_rows),
            ("imports", self.include.imports),
        ] {
            if on {
                include.insert(key.to_owned(), Value::Bool(true));
            }
        }
        json!({
            "site_id": self.site_id,
            "metrics": self.metrics.iter().map(|m| m.name()).collect::<Vec<_>>(),
            "date_range": date_range,
            "filters": self.filters.iter().map(Filter::to_json).collect::<Vec<_>>(),
            "dimensions": self.dimensions.iter().map(Dimension::name).collect::<Vec<_>>(),
            "order_by": self.order_by.iter().map(|o| json!([o.key.name(), o.direction.name()])).collect::<Vec<_>>(),
            "include": include,
            "pagination": {"limit": self.pagination.limit, "offset": self.pagination.offset},
        })
    }

    /// Reads and validates a request. On failure, returns every problem found, each naming the part at fault.
    pub fn parse(request: &Value) -> Result<Query, ValidationErrors> {
        let mut errors = Errors::default();
        let Value::Object(obj) = request else {
            errors.push(
                "",
                format!("the query must be a JSON object, found {}", type_name(request)),
            );
            return Err(ValidationErrors(errors.0));
        };
        for key in obj.keys() {
            if !KEYS.contains(&key.as_str()) {
                errors.push(key.clone(), format!("unknown key {}", quoted(key)));
            }
        }

        let site_id = match obj.get("site_id") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::String(_)) => {
                errors.push("site_id", "must not be empty");
                None
            }
            Some(other) => {
                errors.push("site_id", format!("expected a string, found {}", type_name(other)));
                None
            }
            None => {
                errors.push("site_id", "is required");
                None
            }
        };

        let metrics = match obj.get("metrics") {
            Some(v) => parse_metrics(v, &mut errors),
            None => {
                errors.push("metrics", "is required");
                None
            }
        };

        let date_range = match obj.get("date_range") {
            Some(v) => parse_date_range(v, &mut errors),
            None => {
                errors.push("date_range", "is required");
                None
            }
        };

        let dimensions = obj
            .get("dimensions")
            .map_or(Some(Vec::new()), |v| parse_dimensions(v, &mut errors));

        let before = errors.len();
        let filters = obj
            .get("filters")
            .map(|v| parse_filters(v, &mut errors))
            .unwrap_or_default();
        let filters = (errors.len() == before).then_some(filters);

        let include = obj
            .get("include")
            .map_or(Some(Include::default()), |v| parse_include(v, &mut errors));
        let pagination = obj
            .get("pagination")
            .map_or(Some(Pagination::default()), |v| parse_pagination(v, &mut errors));

        // Rules across parts, checked when the parts they involve were read.
        if let (Some(metrics), Some(dimensions)) = (&metrics, &dimensions) {
            for (i, m) in metrics.iter().enumerate() {
                if *m == Metric::Percentage && dimensions.is_empty() {
                    errors.push(
                        format!("metrics[{i}]"),
                        "metric \"percentage\" requires non-empty dimensions",
                    );
                }
                if m.is_session_metric() {
                    if let Some(d) = dimensions.iter().find(|d| d.is_event()) {
                        errors.push(
                            format!("metrics[{i}]"),
                            format!(
                                "session metric {} cannot be mixed with event dimension {}",
                                quoted(m.name()),
                                quoted(&d.name())
                            ),
                        );
                    }
                }
            }
        }
        if let (Some(metrics), Some(dimensions), Some(filters)) = (&metrics, &dimensions, &filters) {
            let goals = dimensions.contains(&Dimension::Goal) || filters.iter().any(Filter::mentions_goal);
            for (i, m) in metrics.iter().enumerate() {
                if m.is_goal_metric() && !goals {
                    errors.push(
                        format!("metrics[{i}]"),
                        format!(
                            "metric {} requires an \"event:goal\" filter or dimension",
                            quoted(m.name())
                        ),
                    );
                }
                if *m == Metric::GroupConversionRate && dimensions.is_empty() {
                    errors.push(
                        format!("metrics[{i}]"),
                        "metric \"group_conversion_rate\" requires non-empty dimensions",
                    );
                }
            }
        }
        if let (Some(include), Some(dimensions)) = (&include, &dimensions) {
            if include.time_labels && !dimensions.iter().any(Dimension::is_time) {
                errors.push("include.time_labels", "requires a time dimension");
            }
        }
        let order_by = match (&metrics, &dimensions) {
            (Some(metrics), Some(dimensions)) => match obj.get("order_by") {
                Some(v) => parse_order_by(v, metrics, dimensions, &mut errors),
                None => Some(default_order_by(metrics, dimensions)),
            },
            _ => None,
        };

        match (
            site_id, metrics, date_range, dimensions, filters, order_by, include, pagination,
        ) {
            (
                Some(site_id),
                Some(metrics),
                Some(date_range),
                Some(dimensions),
                Some(filters),
                Some(order_by),
                Some(include),
                Some(pagination),
            ) if errors.0.is_empty() => Ok(Query {
                site_id,
                metrics,
                date_range,
                dimensions,
                filters,
                order_by,
                include,
                pagination,
                goals: Vec::new(),
            }),
            _ => Err(ValidationErrors(errors.0)),
        }
    }
}

fn check_goal_names(f: &Filter, path: &str, goals: &[Goal], errors: &mut Errors) {
    match f {
        Filter::Condition(c) => {
            if *c.dimension() != FilterDimension::Goal || !matches!(c.op(), Operator::Is | Operator::IsNot) {
                return;
            }
            for (j, clause) in c.clauses().iter().enumerate() {
                let known = goals.iter().any(|g| {
                    if c.case_sensitive() {
                        g.name == *clause
                    } else {
                        g.name.to_lowercase() == clause.to_lowercase()
                    }
                });
                if !known {
                    errors.push(
                        format!("{path}[2][{j}]"),
                        format!("the goal {} is not configured for this site", quoted(clause)),
                    );
                }
            }
        }
        Filter::And(fs) | Filter::Or(fs) => {
            for (j, f) in fs.iter().enumerate() {
                check_goal_names(f, &format!("{path}[1][{j}]"), goals, errors);
            }
        }
        Filter::Not(f) => check_goal_names(f, &format!("{path}[1]"), goals, errors),
    }
}

fn parse_metrics(v: &Value, errors: &mut Errors) -> Option<Vec<Metric>> {
    let Value::Array(items) = v else {
        errors.push(
            "metrics",
            format!("expected an array of metric names, found {}", type_name(v)),
        );
        return None;
    };
    if items.is_empty() {
        errors.push("metrics", "must not be empty");
        return None;
    }
    let before = errors.len();
    let mut out: Vec<Metric> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("metrics[{i}]");
        let Value::String(name) = item else {
            errors.push(path, format!("expected a metric name, found {}", type_name(item)));
            continue;
        };
        match Metric::parse(name) {
            Ok(m) if out.contains(&m) => errors.push(path, format!("duplicate metric {}", quoted(name))),
            Ok(m) => out.push(m),
            Err(MetricError::Unsupported) => errors.push(path, format!("unsupported metric {}", quoted(name))),
            Err(MetricError::Unknown) => errors.push(path, format!("unknown metric {}", quoted(name))),
        }
    }
    (errors.len() == before).then_some(out)
}

fn parse_dimensions(v: &Value, errors: &mut Errors) -> Option<Vec<Dimension>> {
    let Value::Array(items) = v else {
        errors.push(
            "dimensions",
            format!("expected an array of dimension names, found {}", type_name(v)),
        );
        return None;
    };
    let before = errors.len();
    let mut out: Vec<Dimension> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("dimensions[{i}]");
        let Value::String(name) = item else {
            errors.push(path, format!("expected a dimension name, found {}", type_name(item)));
            continue;
        };
        match Dimension::parse(name) {
            Ok(d) if out.contains(&d) => errors.push(path, format!("duplicate dimension {}", quoted(name))),
            Ok(d) if d.is_time() && out.iter().any(Dimension::is_time) => {
                errors.push(
                    path,
                    format!("only one time dimension is allowed, {} is a second", quoted(name)),
                );
            }
            Ok(d) => out.push(d),
            Err(e) => errors.push(path, dimension_error_message(e, name)),
        }
    }
    (errors.len() == before).then_some(out)
}

fn default_order_by(metrics: &[Metric], dimensions: &[Dimension]) -> Vec<OrderBy> {
    let mut out = Vec::new();
    if let Some(t) = dimensions.iter().find(|d| d.is_time()) {
        out.push(OrderBy {
            key: OrderKey::Dimension(t.clone()),
            direction: Direction::Asc,
        });
    }
    if let Some(m) = metrics.first() {
        out.push(OrderBy {
            key: OrderKey::Metric(*m),
            direction: Direction::Desc,
        });
    }
    out
}

fn parse_order_by(
    v: &Value,
    metrics: &[Metric],
    dimensions: &[Dimension],
    errors: &mut Errors,
) -> Option<Vec<OrderBy>> {
    let Value::Array(items) = v else {
        errors.push(
            "order_by",
            format!("expected an array of [name, direction] pairs, found {}", type_name(v)),
        );
        return None;
    };
    let before = errors.len();
    let mut out: Vec<OrderBy> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("order_by[{i}]");
        let pair = match item {
            Value::Array(pair) if pair.len() == 2 => pair,
            _ => {
                errors.push(path, "expected a [metric_or_dimension, \"asc\"|\"desc\"] pair");
                continue;
            }
        };
        let key = match &pair[0] {
            Value::String(name) => {
                let metric = Metric::parse(name)
                    .ok()
                    .filter(|m| metrics.contains(m))
                    .map(OrderKey::Metric);
                let dimension = Dimension::parse(name)
                    .ok()
                    .filter(|d| dimensions.contains(d))
                    .map(OrderKey::Dimension);
                let key = metric.or(dimension);
                if key.is_none() {
                    errors.push(
                        format!("{path}[0]"),
                        format!("{} is not among the query's metrics or dimensions", quoted(name)),
                    );
                }
                key
            }
            other => {
                errors.push(
                    format!("{path}[0]"),
                    format!("expected a metric or dimension name, found {}", type_name(other)),
                );
                None
            }
        };
        let direction = match &pair[1] {
            Value::String(s) if s == "asc" => Some(Direction::Asc),
            Value::String(s) if s == "desc" => Some(Direction::Desc),
            other => {
                errors.push(
                    format!("{path}[1]"),
                    format!("expected \"asc\" or \"desc\", found {other}"),
                );
                None
            }
        };
        if let (Some(key), Some(direction)) = (key, direction) {
            if out.iter().any(|o| o.key == key) {
                errors.push(
                    format!("{path}[0]"),
                    format!("{} is ordered on twice", quoted(&key.name())),
                );
            } else {
                out.push(OrderBy { key, direction });
            }
        }
    }
    (errors.len() == before).then_some(out)
}

fn parse_include(v: &Value, errors: &mut Errors) -> Option<Include> {
    let Value::Object(map) = v else {
        errors.push("include", format!("expected an object, found {}", type_name(v)));
        return None;
    };
    let before = errors.len();
    let mut include = Include::default();
    for (key, value) in map {
        let path = format!("include.{key}");
        let slot = match key.as_str() {
            "time_labels" => &mut include.time_labels,
            "total_rows" => &mut include.total_rows,
            "imports" => &mut include.imports,
            _ => {
                errors.push(path, format!("unknown include option {}", quoted(key)));
                continue;
            }
        };
        match value {
            Value::Bool(b) => *slot = *b,
            other => errors.push(path, format!("expected a boolean, found {}", type_name(other))),
        }
    }
    (errors.len() == before).then_some(include)
}

fn parse_pagination(v: &Value, errors: &mut Errors) -> Option<Pagination> {
    let Value::Object(map) = v else {
        errors.push("pagination", format!("expected an object, found {}", type_name(v)));
        return None;
    };
    let before = errors.len();
    let mut pagination = Pagination::default();
    for (key, value) in map {
        let path = format!("pagination.{key}");
        match key.as_str() {
            "limit" => match value.as_u64() {
                Some(n) if (1..=MAX_LIMIT).contains(&n) => pagination.limit = n,
                _ => errors.push(
                    path,
                    format!("expected an integer from 1 to {MAX_LIMIT}, found {value}"),
                ),
            },
            "offset" => match value.as_u64() {
                Some(n) => pagination.offset = n,
                None => errors.push(path, format!("expected a non-negative integer, found {value}")),
            },
            _ => errors.push(path, format!("unknown pagination option {}", quoted(key))),
        }
    }
    (errors.len() == before).then_some(pagination)
}
