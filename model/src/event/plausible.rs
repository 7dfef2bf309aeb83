//! Plausible's event payload (`POST /api/event`), from its public Events
//! API documentation: the long keys (`name`, `url`, `domain`, `referrer`,
//! `props`, `revenue`, `interactive`) and the short ones its script sends
//! (`n`, `u`, `d`, `r`, `p`, `m`, `$`, `i`, `h`), into our events: one per
//! domain of a comma list, `pageview` as `page_view`, props as ours
//! (booleans as text, `null` dropped), the revenue kept as props.

use super::{FieldError, IncomingEvent, PAGE_VIEW};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Plausible's name for a page view.
pub const PLAUSIBLE_PAGEVIEW: &str = "pageview";
/// Plausible's script reports scroll depth and time on page under this
/// name; it is not an event a visitor did, so it is answered and not kept.
pub const PLAUSIBLE_ENGAGEMENT: &str = "engagement";
/// The props a revenue becomes (Plausible's `revenue` / `$`).
pub const REVENUE_AMOUNT_PROP: &str = "revenue_amount";
pub const REVENUE_CURRENCY_PROP: &str = "revenue_currency";

/// The payload as sent. Unknown keys are ignored, as Plausible ignores them:
/// its script adds keys over time.
#[derive(Debug, Default, Deserialize)]
pub struct PlausibleEvent {
    #[serde(alias = "n")]
    pub name: Option<String>,
    #[serde(alias = "u")]
    pub url: Option<String>,
    #[serde(alias = "d")]
    pub domain: Option<String>,
    #[serde(alias = "r")]
    pub referrer: Option<Value>,
    #[serde(alias = "p", alias = "m", alias = "meta")]
    pub props: Option<Value>,
    #[serde(alias = "$")]
    pub revenue: Option<Value>,
    #[serde(alias = "i")]
    pub interactive: Option<Value>,
    #[serde(alias = "h", rename = "hashMode")]
    pub hash_mode: Option<Value>,
}

/// One of our events per domain (none for an engagement report), the page
/// URL (for enrichment), and whether the URL's fragment is part of the
/// path (`h`).
#[derive(Debug)]
pub struct Mapped {
    pub events: Vec<IncomingEvent>,
    pub url: String,
    pub hash_mode: bool,
}

/// The payload of `body`, checked: a missing or malformed field is an
/// error naming it by its long name.
pub fn parse(body: &[u8]) -> Result<Mapped, FieldError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let raw: PlausibleEvent = serde_path_to_error::deserialize(de).map_err(|e| {
        let mut error = super::parse_error(e);
        error.field = long_name(&error.field);
        error
    })?;
    let name = raw
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| FieldError::new("name", "is required"))?;
    let url = raw
        .url
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| FieldError::new("url", "is required"))?;
    let domains: Vec<String> = raw
        .domain
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    if domains.is_empty() {
        return Err(FieldError::new("domain", "is required"));
    }
    let referrer = match raw.referrer {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if r.is_empty() => None,
        Some(Value::String(r)) => Some(r),
        Some(_) => return Err(FieldError::new("referrer", "must be a string")),
    };
    let mut props = props(raw.props)?;
    if let Some(revenue) = raw.revenue.filter(|v| !v.is_null()) {
        add_revenue(&mut props, revenue)?;
    }
    let hash_mode = truthy(raw.hash_mode.as_ref());
    let event_type = if name == PLAUSIBLE_PAGEVIEW {
        PAGE_VIEW.to_string()
    } else {
        name
    };
    let kept = if event_type == PLAUSIBLE_ENGAGEMENT {
        Vec::new()
    } else {
        domains
    };
    let events = kept
        .into_iter()
        .map(|site| IncomingEvent {
            site_id: Some(site),
            event_type: Some(event_type.clone()),
            referrer: referrer.clone(),
            props: (!props.is_empty()).then(|| props.clone()),
            url: Some(url.clone()),
            ..IncomingEvent::default()
        })
        .collect();
    Ok(Mapped { events, url, hash_mode })
}

/// A short key's long name, for error messages (`n.x` → `name.x`).
fn long_name(path: &str) -> String {
    let (head, rest) = path.split_once('.').map_or((path, ""), |(h, r)| (h, r));
    let long = match head {
        "n" => "name",
        "u" => "url",
        "d" => "domain",
        "r" => "referrer",
        "p" | "m" | "meta" => "props",
        "$" => "revenue",
        "i" => "interactive",
        "h" => "hashMode",
        other => other,
    };
    if rest.is_empty() {
        long.to_string()
    } else {
        format!("{long}.{rest}")
    }
}

/// `1`, `true`, `"1"`, `"true"`.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => matches!(s.as_str(), "1" | "true"),
        _ => false,
    }
}

/// Props as an object, or as the JSON text of one (Plausible's script sent
/// `m` that way); booleans become text and `null`s are dropped.
fn props(raw: Option<Value>) -> Result<Map<String, Value>, FieldError> {
    let object = match raw {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(o)) => o,
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(o)) => o,
            Ok(Value::Null) => return Ok(Map::new()),
            _ => return Err(FieldError::new("props", "must be an object")),
        },
        Some(_) => return Err(FieldError::new("props", "must be an object")),
    };
    let mut out = Map::new();
    for (key, value) in object {
        match value {
            Value::Null => {}
            Value::Bool(b) => {
                out.insert(key, Value::String(b.to_string()));
            }
            v @ (Value::String(_) | Value::Number(_)) => {
                out.insert(key, v);
            }
            _ => {
                return Err(FieldError::new(
                    format!("props.{key}"),
                    "must be a string, a number or a boolean",
                ))
            }
        }
    }
    Ok(out)
}

/// `{"amount": 12.5, "currency": "EUR"}` (amount as a number or text).
fn add_revenue(props: &mut Map<String, Value>, revenue: Value) -> Result<(), FieldError> {
    let Value::Object(r) = revenue else {
        return Err(FieldError::new("revenue", "must be an object with amount and currency"));
    };
    let amount = match r.get("amount") {
        Some(Value::Number(n)) => Value::Number(n.clone()),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| FieldError::new("revenue.amount", "must be a number"))?,
        _ => return Err(FieldError::new("revenue.amount", "is required")),
    };
    let currency = match r.get("currency") {
        Some(Value::String(c)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => c.to_ascii_uppercase(),
        _ => {
            return Err(FieldError::new(
                "revenue.currency",
                "must be an ISO 4217 code such as EUR",
            ))
        }
    };
    props.insert(REVENUE_AMOUNT_PROP.into(), amount);
    props.insert(REVENUE_CURRENCY_PROP.into(), Value::String(currency));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_keys_map_to_the_same_events() {
        let short = br#"{"n":"pageview","u":"https://example.com/a?utm_source=x","d":"example.com","r":"https://news.ycombinator.com/","p":{"plan":"pro","n":3,"ok":true,"gone":null},"h":1}"#;
        let long = br#"{"name":"pageview","url":"https://example.com/a?utm_source=x","domain":"example.com","referrer":"https://news.ycombinator.com/","props":{"plan":"pro","n":3,"ok":true,"gone":null},"hashMode":1}"#;
        for body in [&short[..], &long[..]] {
            let m = parse(body).unwrap_or_else(|e| panic!("{e:?}"));
            assert!(m.hash_mode);
            assert_eq!(m.url, "https://example.com/a?utm_source=x");
            assert_eq!(m.events.len(), 1);
            let e = &m.events[0];
            assert_eq!(e.site_id.as_deref(), Some("example.com"));
            assert_eq!(e.event_type.as_deref(), Some("page_view"));
            assert_eq!(e.referrer.as_deref(), Some("https://news.ycombinator.com/"));
            let props = e.props.clone().unwrap_or_default();
            assert_eq!(
                serde_json::Value::Object(props),
                serde_json::json!({"plan":"pro","n":3,"ok":"true"})
            );
        }
    }

    #[test]
    fn a_comma_list_of_domains_is_one_event_each() {
        let m = parse(br#"{"n":"Signup","u":"https://a.com/","d":"a.com, B.com","m":"{\"k\":\"v\"}"}"#);
        let sites: Vec<Option<String>> = m
            .map(|m| m.events.into_iter().map(|e| e.site_id).collect())
            .unwrap_or_default();
        assert_eq!(sites, [Some("a.com".to_string()), Some("b.com".to_string())]);
    }

    #[test]
    fn engagement_reports_are_not_events() {
        let m = parse(br#"{"n":"engagement","sd":40,"e":3000,"v":36,"u":"https://a.com/","d":"a.com"}"#);
        assert!(m.is_ok_and(|m| m.events.is_empty()));
    }

    #[test]
    fn revenue_becomes_props() {
        let m = parse(br#"{"n":"Purchase","u":"https://a.com/","d":"a.com","$":{"amount":"12.50","currency":"eur"}}"#);
        let props = m
            .ok()
            .and_then(|m| m.events.into_iter().next())
            .and_then(|e| e.props)
            .unwrap_or_default();
        assert_eq!(props.get(REVENUE_AMOUNT_PROP), Some(&serde_json::json!(12.5)));
        assert_eq!(props.get(REVENUE_CURRENCY_PROP), Some(&serde_json::json!("EUR")));
    }

    #[test]
    fn missing_and_malformed_fields_are_named() {
        let field = |body: &[u8]| parse(body).err().map(|e| e.field);
        assert_eq!(field(br#"{"u":"https://a.com/","d":"a.com"}"#).as_deref(), Some("name"));
        assert_eq!(field(br#"{"n":"x","d":"a.com"}"#).as_deref(), Some("url"));
        assert_eq!(
            field(br#"{"n":"x","u":"https://a.com/","d":" , "}"#).as_deref(),
            Some("domain")
        );
        assert_eq!(
            field(br#"{"n":"x","u":"https://a.com/","d":"a","p":{"o":{"x":1}}}"#).as_deref(),
            Some("props.o")
        );
        assert_eq!(
            field(br#"{"n":"x","u":"https://a.com/","d":"a","p":[1]}"#).as_deref(),
            Some("props")
        );
        assert_eq!(
            field(br#"{"n":"x","u":"https://a.com/","d":"a","r":5}"#).as_deref(),
            Some("referrer")
        );
        assert_eq!(
            field(br#"{"n":5,"u":"https://a.com/","d":"a"}"#).as_deref(),
            Some("name")
        );
        assert_eq!(
            field(br#"{"n":"x","u":"https://a.com/","d":"a","$":{"amount":1}}"#).as_deref(),
            Some("revenue.currency")
        );
    }
}
