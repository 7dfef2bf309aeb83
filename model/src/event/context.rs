//! What the api learnt about an event from its request (enrichment): the
//! cookieless visitor, the page's hostname and campaign, the referrer's
//! source and channel, the browser, OS and device, and the country. It
//! travels in the Kafka message as one optional `context` object, so that
//! the processor parses nothing and a message without it (every message
//! before this field existed) reads as an event with an empty context.
//!
//! The 14 texts live in one buffer with their end offsets rather than in 14
//! `String`s: an event is queued, batched and written by the thousand, and
//! 14 string headers (336 bytes) and 14 allocations per event were most of
//! the event's size and of enrichment's allocations (bench/README.md,
//! "compact context").

use super::text::{self, check_text};
use super::FieldError;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

/// The longest value any context field may hold: hostnames (253), browser
/// and OS names and versions, sources, channels, campaign parameters.
pub const MAX_CONTEXT_CHARS: usize = 300;

/// A context's text fields, in their stores' column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Hostname,
    Source,
    Channel,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    UtmContent,
    UtmTerm,
    Browser,
    BrowserVersion,
    Os,
    OsVersion,
    /// `desktop`, `mobile` or `tablet`.
    Device,
    /// ISO 3166-1 alpha-2, upper case.
    Country,
}

impl Field {
    pub const ALL: [Field; 14] = [
        Field::Hostname,
        Field::Source,
        Field::Channel,
        Field::UtmSource,
        Field::UtmMedium,
        Field::UtmCampaign,
        Field::UtmContent,
        Field::UtmTerm,
        Field::Browser,
        Field::BrowserVersion,
        Field::Os,
        Field::OsVersion,
        Field::Device,
        Field::Country,
    ];

    /// The field's name: its key in the message and its column.
    pub fn name(self) -> &'static str {
        Context::TEXT_FIELDS[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Context::TEXT_FIELDS
            .iter()
            .position(|n| *n == name)
            .map(|i| Field::ALL[i])
    }
}

/// Every text is empty (and `visitor_id` `None`) when unknown.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The cookieless visitor: a keyed hash of the day's salt, the site, the
    /// client's address and User-Agent, set only for events without a
    /// `user_id`. Never 0.
    pub visitor_id: Option<i64>,
    /// The texts one after another, in `Field` order.
    text: Box<str>,
    /// Where each field's text ends in `text`.
    ends: [u16; 14],
}

impl Context {
    /// The text fields' names: the stores' column names, in `Field` order.
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

    /// A context of client-derived texts in `Field` order, each cleaned as
    /// `clean` does (bounded, no control characters), in one allocation.
    pub fn new(visitor_id: Option<i64>, texts: [&str; 14]) -> Self {
        let mut text = String::with_capacity(texts.iter().map(|t| t.len()).sum());
        let mut ends = [0; 14];
        for (end, value) in ends.iter_mut().zip(texts) {
            text.extend(Self::cleaned(value));
            // At most 14 × 300 characters of at most 4 bytes: fits.
            *end = u16::try_from(text.len()).unwrap_or(u16::MAX);
        }
        Self {
            visitor_id,
            text: text.into_boxed_str(),
            ends,
        }
    }

    /// This context with one field's text replaced (cleaned): for tests and
    /// the rare caller that learns a field late.
    pub fn with(&self, field: Field, value: &str) -> Self {
        let mut texts = self.text_values();
        texts[field as usize] = value;
        Self::new(self.visitor_id, texts)
    }

    pub fn with_visitor(mut self, visitor_id: Option<i64>) -> Self {
        self.visitor_id = visitor_id;
        self
    }

    pub fn get(&self, field: Field) -> &str {
        let i = field as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text
            .get(usize::from(start)..usize::from(self.ends[i]))
            .unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.visitor_id.is_none() && self.text.is_empty()
    }

    /// The text fields' values, in `TEXT_FIELDS` order.
    pub fn text_values(&self) -> [&str; 14] {
        Field::ALL.map(|f| self.get(f))
    }

    /// The text fields with their names.
    pub fn texts(&self) -> impl Iterator<Item = (&'static str, &str)> {
        Self::TEXT_FIELDS.into_iter().zip(self.text_values())
    }

    /// The texts as held: equal for two contexts exactly when every text
    /// is, and hashed without splitting them into fields (writers send
    /// each distinct context of a batch once).
    pub fn texts_key(&self) -> (&str, &[u16; 14]) {
        (&self.text, &self.ends)
    }

    /// Which texts are not empty, bit `i` for `Field::ALL[i]`: read off
    /// the offsets, without splitting the text into fields.
    pub fn nonempty_fields(&self) -> u16 {
        let (mut mask, mut start) = (0, 0);
        for (i, &end) in self.ends.iter().enumerate() {
            if end > start {
                mask |= 1 << i;
            }
            start = end;
        }
        mask
    }

    /// The bytes its text holds.
    pub fn text_len(&self) -> usize {
        self.text.len()
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
        Self::cleaned(value).collect()
    }

    fn cleaned(value: &str) -> impl Iterator<Item = char> + '_ {
        value.chars().filter(|c| !c.is_ascii_control()).take(MAX_CONTEXT_CHARS)
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Context");
        s.field("visitor_id", &self.visitor_id);
        for (name, value) in self.texts().filter(|(_, v)| !v.is_empty()) {
            s.field(name, &value);
        }
        s.finish()
    }
}

/// The message's `context` object: `visitor_id` then the non-empty texts,
/// in `Field` order (the bytes the former struct of 14 strings wrote).
impl Serialize for Context {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = usize::from(self.visitor_id.is_some()) + self.texts().filter(|(_, v)| !v.is_empty()).count();
        let mut map = serializer.serialize_map(Some(len))?;
        if let Some(v) = &self.visitor_id {
            map.serialize_entry("visitor_id", v)?;
        }
        for (name, value) in self.texts().filter(|(_, v)| !v.is_empty()) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Keys in any order; unknown keys ignored (a newer producer's fields);
/// texts kept as sent (the processor's `check` judges them), borrowed from
/// the message while being read.
impl<'de> Deserialize<'de> for Context {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ContextVisitor)
    }
}

struct ContextVisitor;

impl<'de> Visitor<'de> for ContextVisitor {
    type Value = Context;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a context object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Context, A::Error> {
        let mut visitor_id = None;
        let mut texts: [Cow<'de, str>; 14] = Default::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            if key.0 == "visitor_id" {
                visitor_id = map.next_value::<Option<i64>>()?;
            } else if let Some(field) = Field::from_name(&key.0) {
                texts[field as usize] = map.next_value::<Text<'de>>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let mut text = String::with_capacity(texts.iter().map(|t| t.len()).sum());
        let mut ends = [0; 14];
        for (end, value) in ends.iter_mut().zip(&texts) {
            text.push_str(value);
            *end = u16::try_from(text.len()).map_err(|_| de::Error::custom("context texts are too long"))?;
        }
        Ok(Context {
            visitor_id,
            text: text.into_boxed_str(),
            ends,
        })
    }
}

/// A string borrowed from the input when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
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
        let c: Context = serde_json::from_value(serde_json::json!({
            "browser": "a\u{0}b",
            "os": "x".repeat(MAX_CONTEXT_CHARS + 1),
            "visitor_id": 0,
        }))
        .unwrap();
        c.check(&mut errors);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["context.browser", "context.os", "context.visitor_id"]);
        assert_eq!(Context::clean("a\u{7}b"), "ab");
        assert_eq!(Context::clean(&"é".repeat(400)).chars().count(), MAX_CONTEXT_CHARS);
    }

    #[test]
    fn fields_read_back_as_built_and_through_json() {
        let texts: [String; 14] = std::array::from_fn(|i| if i % 3 == 0 { String::new() } else { format!("v{i}é") });
        let c = Context::new(Some(-5), std::array::from_fn(|i| texts[i].as_str()));
        for f in Field::ALL {
            assert_eq!(c.get(f), texts[f as usize], "{}", f.name());
            assert_eq!(Field::from_name(f.name()), Some(f));
        }
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.starts_with(r#"{"visitor_id":-5,"source":"v1é","channel":"v2é","utm_medium""#),
            "{json}"
        );
        let back: Context = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        // Escaped texts (owned while read), any key order, unknown keys.
        let back: Context =
            serde_json::from_str(r#"{"country":"D\u0045","future":[1,{"x":2}],"browser":"Fire\"fox"}"#).unwrap();
        assert_eq!(
            (back.get(Field::Country), back.get(Field::Browser)),
            ("DE", "Fire\"fox")
        );
        assert_eq!(back.visitor_id, None);
        assert_eq!(c.with(Field::Hostname, "h\u{1}.com").get(Field::Hostname), "h.com");
        assert_eq!(c.with(Field::Hostname, "h.com").get(Field::Source), "v1é");
    }

    #[test]
    fn cleans_what_it_is_built_from_and_stays_small() {
        let long = "é".repeat(MAX_CONTEXT_CHARS + 50);
        let c = Context::new(None, [long.as_str(); 14]);
        assert!(Field::ALL
            .iter()
            .all(|&f| c.get(f).chars().count() == MAX_CONTEXT_CHARS));
        let mut errors = Vec::new();
        c.check(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(
            std::mem::size_of::<Context>() <= 64,
            "{}",
            std::mem::size_of::<Context>()
        );
    }

    #[test]
    fn refuses_texts_past_its_offsets() {
        let huge = "x".repeat(40_000);
        let json = serde_json::json!({"browser": huge, "os": huge});
        assert!(serde_json::from_value::<Context>(json).is_err());
    }
}
