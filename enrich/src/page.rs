//! A page URL to what reports group by: its hostname (without `www.`),
//! its path (without the query string; with the fragment in hash-routing
//! mode), and its campaign parameters.

use url::Url;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub hostname: String,
    pub path: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_content: String,
    pub utm_term: String,
    /// `ref` or `source`, the short forms many links carry.
    pub ref_param: String,
}

/// The page of `raw`, or `None` when it is not an absolute http(s) URL.
pub fn parse(raw: &str, hash_mode: bool) -> Option<Page> {
    let url = Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let mut page = Page {
        hostname: strip_www(&host).to_string(),
        path: url.path().to_string(),
        ..Page::default()
    };
    if hash_mode {
        if let Some(fragment) = url.fragment().filter(|f| !f.is_empty()) {
            page.path.push('#');
            page.path.push_str(fragment);
        }
    }
    for (key, value) in url.query_pairs() {
        let slot = match key.as_ref() {
            "utm_source" => &mut page.utm_source,
            "utm_medium" => &mut page.utm_medium,
            "utm_campaign" => &mut page.utm_campaign,
            "utm_content" => &mut page.utm_content,
            "utm_term" => &mut page.utm_term,
            "ref" | "source" => &mut page.ref_param,
            _ => continue,
        };
        // The first occurrence wins, as browsers' URLSearchParams.get does.
        if slot.is_empty() {
            *slot = value.trim().to_string();
        }
    }
    Some(page)
}

/// The host of a referrer URL (`scheme://[user@]host[:port]/…`), lower
/// case, without `www.`. Read directly rather than with a URL parser: it
/// runs for every event with a referrer, and the host is all it needs.
pub fn referrer_host(raw: &str) -> Option<String> {
    let (scheme, rest) = raw.trim().split_once("://")?;
    let valid_scheme = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return None;
    }
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    let host = host.trim_end_matches('.');
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some(strip_www(&host.to_ascii_lowercase()).to_string())
}

fn strip_www(host: &str) -> &str {
    host.strip_prefix("www.").unwrap_or(host)
}
