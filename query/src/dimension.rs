//! Dimensions: what results are grouped by, and (all but time) what filters test.

use std::fmt;

/// A property of the event itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventDimension {
    /// `event:page`, the event's path.
    Page,
    /// `event:hostname`.
    Hostname,
    /// `event:name` (`page_view` for pageviews).
    Name,
    /// `event:props:<key>`, a custom property; `(none)` on events without the key.
    Prop(String),
}

/// A property of the visit the event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VisitDimension {
    EntryPage,
    ExitPage,
    Source,
    Referrer,
    Channel,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    UtmContent,
    UtmTerm,
    Device,
    Browser,
    BrowserVersion,
    Os,
    OsVersion,
    Country,
}

/// A time bucket of the event's timestamp, in the site's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimeDimension {
    /// `time`: hour for a range of at most one day, else day.
    Auto,
    Hour,
    Day,
    /// Weeks start on Monday.
    Week,
    Month,
}

/// A supported dimension.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Event(EventDimension),
    Visit(VisitDimension),
    Time(TimeDimension),
    /// `event:goal`: the site's goals the event converts on (an event may
    /// convert on several, and is then in each goal's row).
    Goal,
}

/// Why a dimension name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DimensionError {
    /// A documented dimension this platform does not support.
    Unsupported,
    /// Not a dimension at all.
    Unknown,
    /// `event:props:` with nothing after it.
    EmptyPropKey,
}

/// Dimensions Plausible documents that this platform does not support (cities, regions, names, screen).
pub const UNSUPPORTED_DIMENSIONS: &[&str] = &[
    "visit:region",
    "visit:city",
    "visit:country_name",
    "visit:region_name",
    "visit:city_name",
    "visit:entry_page_hostname",
    "visit:exit_page_hostname",
    "visit:screen",
];

const PROP_PREFIX: &str = "event:props:";
/// The goal dimension's name.
pub const GOAL: &str = "event:goal";

impl VisitDimension {
    pub const ALL: [VisitDimension; 16] = [
        VisitDimension::EntryPage,
        VisitDimension::ExitPage,
        VisitDimension::Source,
        VisitDimension::Referrer,
        VisitDimension::Channel,
        VisitDimension::UtmSource,
        VisitDimension::UtmMedium,
        VisitDimension::UtmCampaign,
        VisitDimension::UtmContent,
        VisitDimension::UtmTerm,
        VisitDimension::Device,
        VisitDimension::Browser,
        VisitDimension::BrowserVersion,
        VisitDimension::Os,
        VisitDimension::OsVersion,
        VisitDimension::Country,
    ];

    pub fn name(self) -> &'static str {
        match self {
            VisitDimension::EntryPage => "visit:entry_page",
            VisitDimension::ExitPage => "visit:exit_page",
            VisitDimension::Source => "visit:source",
            VisitDimension::Referrer => "visit:referrer",
            VisitDimension::Channel => "visit:channel",
            VisitDimension::UtmSource => "visit:utm_source",
            VisitDimension::UtmMedium => "visit:utm_medium",
            VisitDimension::UtmCampaign => "visit:utm_campaign",
            VisitDimension::UtmContent => "visit:utm_content",
            VisitDimension::UtmTerm => "visit:utm_term",
            VisitDimension::Device => "visit:device",
            VisitDimension::Browser => "visit:browser",
            VisitDimension::BrowserVersion => "visit:browser_version",
            VisitDimension::Os => "visit:os",
            VisitDimension::OsVersion => "visit:os_version",
            VisitDimension::Country => "visit:country",
        }
    }
}

impl TimeDimension {
    pub const ALL: [TimeDimension; 5] = [
        TimeDimension::Auto,
        TimeDimension::Hour,
        TimeDimension::Day,
        TimeDimension::Week,
        TimeDimension::Month,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TimeDimension::Auto => "time",
            TimeDimension::Hour => "time:hour",
            TimeDimension::Day => "time:day",
            TimeDimension::Week => "time:week",
            TimeDimension::Month => "time:month",
        }
    }
}

impl EventDimension {
    pub fn name(&self) -> String {
        match self {
            EventDimension::Page => "event:page".to_owned(),
            EventDimension::Hostname => "event:hostname".to_owned(),
            EventDimension::Name => "event:name".to_owned(),
            EventDimension::Prop(key) => format!("{PROP_PREFIX}{key}"),
        }
    }
}

impl Dimension {
    /// Reads a dimension name as written in `dimensions`, `filters` and `order_by`.
    pub fn parse(name: &str) -> Result<Dimension, DimensionError> {
        if let Some(key) = name.strip_prefix(PROP_PREFIX) {
            return if key.is_empty() {
                Err(DimensionError::EmptyPropKey)
            } else {
                Ok(Dimension::Event(EventDimension::Prop(key.to_owned())))
            };
        }
        match name {
            "event:page" => return Ok(Dimension::Event(EventDimension::Page)),
            "event:hostname" => return Ok(Dimension::Event(EventDimension::Hostname)),
            "event:name" => return Ok(Dimension::Event(EventDimension::Name)),
            GOAL => return Ok(Dimension::Goal),
            _ => {}
        }
        if let Some(v) = VisitDimension::ALL.into_iter().find(|v| v.name() == name) {
            return Ok(Dimension::Visit(v));
        }
        if let Some(t) = TimeDimension::ALL.into_iter().find(|t| t.name() == name) {
            return Ok(Dimension::Time(t));
        }
        if UNSUPPORTED_DIMENSIONS.contains(&name) {
            Err(DimensionError::Unsupported)
        } else {
            Err(DimensionError::Unknown)
        }
    }

    /// The dimension's name in requests and responses.
    pub fn name(&self) -> String {
        match self {
            Dimension::Event(e) => e.name(),
            Dimension::Visit(v) => v.name().to_owned(),
            Dimension::Time(t) => t.name().to_owned(),
            Dimension::Goal => GOAL.to_owned(),
        }
    }

    pub fn is_time(&self) -> bool {
        matches!(self, Dimension::Time(_))
    }

    /// A property of single events (goals included), not of visits.
    pub fn is_event(&self) -> bool {
        matches!(self, Dimension::Event(_) | Dimension::Goal)
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The message for a refused dimension name.
pub(crate) fn dimension_error_message(err: DimensionError, name: &str) -> String {
    let q = crate::error::quoted(name);
    match err {
        DimensionError::Unsupported => format!("unsupported dimension {q}"),
        DimensionError::Unknown => format!("unknown dimension {q}"),
        DimensionError::EmptyPropKey => format!("custom property dimension {q} has an empty key"),
    }
}
