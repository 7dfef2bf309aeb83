//! Metrics: the values a query computes.

use std::fmt;

/// A supported metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Distinct visitors among the kept events.
    Visitors,
    /// Visits with at least one kept event.
    Visits,
    /// Kept `page_view` events.
    Pageviews,
    /// Kept events of any name.
    Events,
    /// Pageviews per visit, two decimals.
    ViewsPerVisit,
    /// Percentage of visits that bounced, an integer.
    BounceRate,
    /// Mean visit duration in whole seconds, an integer.
    VisitDuration,
    /// The row's visitors as a percentage of all visitors (same filters, no dimensions), one decimal.
    Percentage,
    /// The row's converted visitors as a percentage of all visitors without the goal filters and dimensions, two
    /// decimals. Needs an `event:goal` filter or dimension.
    ConversionRate,
    /// The row's converted visitors as a percentage of the visitors with the same non-goal dimension values
    /// without the goal filters, two decimals. Needs dimensions, and an `event:goal` filter or dimension.
    GroupConversionRate,
    /// The revenue of the row's kept events on revenue goals, `{"value", "currency"}`; `null` when the goals in play
    /// have no currency or several. Needs an `event:goal` filter or dimension.
    TotalRevenue,
    /// That revenue per event that brought some.
    AverageRevenue,
}

/// Metrics Plausible documents that this platform does not compute (engagement).
pub const UNSUPPORTED_METRICS: &[&str] = &["total_revenue", "average_revenue", "scroll_depth", "time_on_page"];

/// Why a metric name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricError {
    /// A documented metric this platform does not support.
    Unsupported,
    /// Not a metric at all.
    Unknown,
}

impl Metric {
    pub const ALL: [Metric; 12] = [
        Metric::Visitors,
        Metric::Visits,
        Metric::Pageviews,
        Metric::Events,
        Metric::ViewsPerVisit,
        Metric::BounceRate,
        Metric::VisitDuration,
        Metric::Percentage,
        Metric::ConversionRate,
        Metric::GroupConversionRate,
        Metric::TotalRevenue,
        Metric::AverageRevenue,
    ];

    /// The metric's name in requests and responses.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Visitors => "visitors",
            Metric::Visits => "visits",
            Metric::Pageviews => "pageviews",
            Metric::Events => "events",
            Metric::ViewsPerVisit => "views_per_visit",
            Metric::BounceRate => "bounce_rate",
            Metric::VisitDuration => "visit_duration",
            Metric::Percentage => "percentage",
            Metric::ConversionRate => "conversion_rate",
            Metric::GroupConversionRate => "group_conversion_rate",
            Metric::TotalRevenue => "total_revenue",
            Metric::AverageRevenue => "average_revenue",
        }
    }

    pub fn parse(name: &str) -> Result<Metric, MetricError> {
        if let Some(m) = Metric::ALL.into_iter().find(|m| m.name() == name) {
            Ok(m)
        } else if UNSUPPORTED_METRICS.contains(&name) {
            Err(MetricError::Unsupported)
        } else {
            Err(MetricError::Unknown)
        }
    }

    pub fn is_revenue(self) -> bool {
        matches!(self, Metric::TotalRevenue | Metric::AverageRevenue)
    }

    /// The goal metrics, which need an `event:goal` filter or dimension.
    pub fn is_goal_metric(self) -> bool {
        matches!(
            self,
            Metric::ConversionRate | Metric::GroupConversionRate | Metric::TotalRevenue | Metric::AverageRevenue
        )
    }

    /// The session metrics, which Plausible documents cannot be mixed with event dimensions.
    pub fn is_session_metric(self) -> bool {
        matches!(self, Metric::BounceRate | Metric::ViewsPerVisit | Metric::VisitDuration)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
