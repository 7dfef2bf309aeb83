//! The event contract: what a client may send (`wire`), how it is checked
//! (`validate`), the validated `Event` that travels through Kafka and into
//! the database, and its Kafka message value (`payload`).

pub mod body;
pub mod context;
pub mod exchange;
pub mod payload;
pub mod plausible;
pub mod text;
mod validate;
mod wire;

pub use context::{Context, Field as ContextField};
pub use validate::{ClientHints, EventNames, IncomingEvent, Policy, DEFAULT_MAX_AGE_DAYS};
pub use wire::{parse_batch, parse_error, parse_one};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

pub const MAX_SITE_ID_CHARS: usize = 100;
pub const MAX_EVENT_TYPE_CHARS: usize = 50;
/// A Plausible event name (`/api/event`), Plausible's own bound.
pub const MAX_EVENT_NAME_CHARS: usize = 120;
pub const MAX_PATH_CHARS: usize = 2048;
pub const MAX_USER_ID_CHARS: usize = 100;
pub const MAX_REFERRER_CHARS: usize = 2048;
/// A page URL sent for enrichment (`url`): never stored whole.
pub const MAX_URL_CHARS: usize = 4096;
/// A User-Agent sent for enrichment (`user_agent`): never stored.
pub const MAX_USER_AGENT_CHARS: usize = 1024;
pub const MAX_PROPS: usize = 50;
pub const MAX_PROP_KEY_CHARS: usize = 100;
pub const MAX_PROP_VALUE_CHARS: usize = 1000;
/// Clocks drift; more than this ahead of the server is a client bug, not drift.
pub const MAX_FUTURE_SKEW_MINUTES: i64 = 10;
pub const PAGE_VIEW: &str = "page_view";

/// A validated event: the Kafka message value and the source of one raw row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub event_id: Uuid,
    pub site_id: String,
    pub event_type: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub user_id: String,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub props: Option<Map<String, Value>>,
    /// What the api learnt from the request (`context`); empty for events
    /// from before enrichment and from producers that do not enrich.
    #[serde(default, skip_serializing_if = "Context::is_empty")]
    pub context: Context,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What an event costs besides its text: the struct itself (ids, times,
/// the context's 14 string headers) and a word of allocator overhead for
/// each of its heap strings.
const EVENT_OVERHEAD_BYTES: usize = std::mem::size_of::<Event>() + 64;

impl Event {
    pub fn is_page_view(&self) -> bool {
        self.event_type == PAGE_VIEW
    }

    /// About the memory the event holds: its text and props, plus the
    /// struct and a fixed overhead. What queues bounded in bytes count it as.
    pub fn approx_bytes(&self) -> usize {
        let props = self.props.as_ref().map_or(0, |p| {
            p.iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(16, str::len) + 32)
                .sum()
        });
        EVENT_OVERHEAD_BYTES
            + self.site_id.len()
            + self.event_type.len()
            + self.path.len()
            + self.user_id.len()
            + self.referrer.as_ref().map_or(0, String::len)
            + props
            + self.context.text_len()
    }
}
