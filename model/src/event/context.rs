//! What the api learnt about an event from its request (enrichment): the
//! cookieless visitor, the page's hostname and campaign, the referrer's
//! source and channel, the browser, OS and device, and the country. It
//! travels in the Kafka message as one optional `context` object, so that
//! the processor parses nothing and a message without it (every message
//! before this field existed) reads as an event with an empty context.

use super::text::{self, check_text};
use super::FieldError;
use serde::{Deserialize, Serialize};

/// The longest value any context field may hold: hostnames (253), browser
/// and OS names and versions, sources, channels, campaign parameters.
pub const MAX_CONTEXT_CHARS: usize = 300;

/// Every field is empty (or `None`) when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// The cookieless visitor: a keyed hash of the day's salt, the site, the
    /// client's address and User-Agent, set only for events without a
    /// `user_id`. Never 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_id: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub channel: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub utm_source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub utm_medium: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub utm_campaign: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub utm_content: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub utm_term: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub browser: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub browser_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    /// `desktop`, `mobile` or `tablet`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    /// ISO 3166-1 alpha-2, upper case.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub country: String,
}

impl Context {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// The text fields' names: the stores' column names, in this order.
    pub const TEXT_FIELDS: [&'static str; 14] = [
        "hostname",
        "source",
        "channel",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_content",
        "utm_term",
        "browser",
        "browser_version",
        "os",
        "os_version",
        "device",
        "country",
    ];

    /// The text fields' values, in `TEXT_FIELDS` order.
    pub fn text_values(&self) -> [&str; 14] {
        [
            &self.hostname,
            &self.source,
            &self.channel,
            &self.utm_source,
            &self.utm_medium,
            &self.utm_campaign,
            &self.utm_content,
            &self.utm_term,
            &self.browser,
            &self.browser_version,
            &self.os,
            &self.os_version,
            &self.device,
            &self.country,
        ]
    }

    /// The text fields with their names.
    pub fn texts(&self) -> impl Iterator<Item = (&'static str, &str)> {
        Self::TEXT_FIELDS.into_iter().zip(self.text_values())
    }

    /// The bytes its text holds.
    pub fn text_len(&self) -> usize {
        self.text_values().iter().map(|v| v.len()).sum()
    }

    /// What the processor re-checks of a message's context: bounded text
    /// without control characters, and no visitor 0.
    pub fn check(&self, errors: &mut Vec<FieldError>) {
        for (name, value) in self.texts() {
            // The field's name is formatted only for an error: this runs
            // for every event the processor reads.
            let controlled = text::control_char(value, text::IN_NAMES).is_some();
            let long = value.len() > MAX_CONTEXT_CHARS && value.chars().count() > MAX_CONTEXT_CHARS;
            if controlled || long {
                let field = format!("context.{name}");
                check_text(errors, &field, value, text::IN_NAMES);
                if long {
                    errors.push(FieldError::new(
                        field,
                        format!("must be at most {MAX_CONTEXT_CHARS} characters"),
                    ));
                }
            }
        }
        if self.visitor_id == Some(0) {
            errors.push(FieldError::new("context.visitor_id", "must not be 0"));
        }
    }

    /// `value` cut to `MAX_CONTEXT_CHARS` characters, without control
    /// characters: what enrichment stores of text it derived from a client.
    pub fn clean(value: &str) -> String {
        value
            .chars()
            .filter(|c| !c.is_ascii_control())
            .take(MAX_CONTEXT_CHARS)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_context_is_not_serialized_and_reads_back_empty() {
        let c = Context::default();
        assert!(c.is_empty());
        assert_eq!(serde_json::to_string(&c).ok().as_deref(), Some("{}"));
        let back: Option<Context> = serde_json::from_str("{}").ok();
        assert_eq!(back, Some(Context::default()));
    }

    #[test]
    fn checks_name_the_field() {
        let mut errors = Vec::new();
        let c = Context {
            browser: "a\u{0}b".into(),
            os: "x".repeat(MAX_CONTEXT_CHARS + 1),
            visitor_id: Some(0),
            ..Context::default()
        };
        c.check(&mut errors);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["context.browser", "context.os", "context.visitor_id"]);
        assert_eq!(Context::clean("a\u{7}b"), "ab");
        assert_eq!(Context::clean(&"é".repeat(400)).chars().count(), MAX_CONTEXT_CHARS);
    }
}
