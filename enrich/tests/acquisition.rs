//! Referrers and page URLs with the source, channel and campaign values a
//! report must show for them.

use analytics_enrich::acquisition::{classify, CHANNELS};
use analytics_enrich::page::{self, Page};

/// (page URL, referrer, source, channel)
const CASES: &[(&str, &str, &str, &str)] = &[
    ("https://example.com/", "", "Direct", "Direct"),
    ("https://example.com/a", "https://example.com/b", "Direct", "Direct"),
    ("https://www.example.com/a", "https://example.com/", "Direct", "Direct"),
    (
        "https://example.com/",
        "https://www.google.com/",
        "Google",
        "Organic Search",
    ),
    (
        "https://example.com/",
        "https://www.google.co.uk/search?q=x",
        "Google",
        "Organic Search",
    ),
    (
        "https://example.com/",
        "https://news.google.de/",
        "Google",
        "Organic Search",
    ),
    (
        "https://example.com/",
        "https://duckduckgo.com/",
        "DuckDuckGo",
        "Organic Search",
    ),
    (
        "https://example.com/",
        "https://www.bing.com/search?q=a",
        "Bing",
        "Organic Search",
    ),
    (
        "https://example.com/",
        "https://search.brave.com/search?q=a",
        "Brave Search",
        "Organic Search",
    ),
    (
        "https://example.com/",
        "https://news.ycombinator.com/item?id=1",
        "Hacker News",
        "Organic Social",
    ),
    ("https://example.com/", "https://t.co/abc", "Twitter", "Organic Social"),
    (
        "https://example.com/",
        "https://l.facebook.com/l.php?u=x",
        "Facebook",
        "Organic Social",
    ),
    (
        "https://example.com/",
        "https://www.reddit.com/r/rust/",
        "Reddit",
        "Organic Social",
    ),
    (
        "https://example.com/",
        "https://www.youtube.com/watch?v=1",
        "YouTube",
        "Organic Video",
    ),
    (
        "https://example.com/",
        "https://mail.google.com/mail/u/0/",
        "Gmail",
        "Email",
    ),
    (
        "https://example.com/",
        "https://www.amazon.de/dp/1",
        "Amazon",
        "Organic Shopping",
    ),
    (
        "https://example.com/",
        "https://github.com/org/repo",
        "GitHub",
        "Referral",
    ),
    (
        "https://example.com/",
        "https://blog.rust-lang.org/post",
        "blog.rust-lang.org",
        "Referral",
    ),
    (
        "https://example.com/",
        "https://www.someblog.net/",
        "someblog.net",
        "Referral",
    ),
    (
        "https://example.com/?utm_source=google&utm_medium=cpc&utm_campaign=brand",
        "https://www.google.com/",
        "Google",
        "Paid Search",
    ),
    (
        "https://example.com/?utm_source=facebook&utm_medium=paid_social",
        "",
        "Facebook",
        "Paid Social",
    ),
    (
        "https://example.com/?utm_source=youtube&utm_medium=cpv",
        "",
        "YouTube",
        "Paid Video",
    ),
    (
        "https://example.com/?utm_source=newsletter&utm_medium=email",
        "",
        "newsletter",
        "Email",
    ),
    (
        "https://example.com/?utm_source=partner&utm_medium=affiliate",
        "",
        "partner",
        "Affiliates",
    ),
    (
        "https://example.com/?utm_source=ads&utm_medium=display",
        "",
        "ads",
        "Display",
    ),
    (
        "https://example.com/?utm_source=ads&utm_medium=banner",
        "",
        "ads",
        "Display",
    ),
    (
        "https://example.com/?utm_source=acme&utm_medium=ppc",
        "",
        "acme",
        "Paid Other",
    ),
    (
        "https://example.com/?utm_source=acme&utm_medium=cpc&utm_campaign=summer-shopping",
        "",
        "acme",
        "Paid Shopping",
    ),
    (
        "https://example.com/?utm_source=acme&utm_campaign=cross-network-q4&utm_medium=cpc",
        "",
        "acme",
        "Cross-network",
    ),
    (
        "https://example.com/?utm_source=acme&utm_medium=social",
        "",
        "acme",
        "Organic Social",
    ),
    (
        "https://example.com/?utm_source=podcast&utm_medium=audio",
        "",
        "podcast",
        "Audio",
    ),
    ("https://example.com/?utm_source=sms&utm_medium=text", "", "sms", "SMS"),
    (
        "https://example.com/?utm_source=app&utm_medium=push",
        "",
        "app",
        "Mobile Push Notifications",
    ),
    (
        "https://example.com/?utm_source=acme&utm_medium=weird",
        "",
        "acme",
        "Unassigned",
    ),
    (
        "https://example.com/?ref=producthunt",
        "",
        "Product Hunt",
        "Organic Social",
    ),
    ("https://example.com/?source=hn", "", "Hacker News", "Organic Social"),
    (
        "https://example.com/?ref=my-friend",
        "https://www.google.com/",
        "my-friend",
        "Unassigned",
    ),
    (
        "https://example.com/?utm_medium=organic",
        "",
        "Direct",
        "Organic Search",
    ),
];

#[test]
fn sources_and_channels() {
    let mut wrong = Vec::new();
    for (url, referrer, source, channel) in CASES {
        let page = page::parse(url, false);
        let referrer = (!referrer.is_empty()).then_some(*referrer);
        let got = classify(page.as_ref(), referrer);
        if (got.source.as_str(), got.channel) != (*source, *channel) {
            wrong.push(format!(
                "{url} from {referrer:?}: got ({}, {}), want ({source}, {channel})",
                got.source, got.channel
            ));
        }
        assert!(CHANNELS.contains(&got.channel));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn urls_to_hostname_path_and_campaign() {
    let p = page::parse(
        "https://www.Example.com/docs/a%20b?utm_source=news&utm_medium=email&utm_campaign=launch&utm_content=hero&utm_term=rust+analytics&x=1#top",
        false,
    );
    assert_eq!(
        p,
        Some(Page {
            hostname: "example.com".into(),
            path: "/docs/a%20b".into(),
            utm_source: "news".into(),
            utm_medium: "email".into(),
            utm_campaign: "launch".into(),
            utm_content: "hero".into(),
            utm_term: "rust analytics".into(),
            ref_param: String::new(),
        })
    );
    // Hash routing: the fragment is part of the page.
    let p = page::parse("https://app.test/#/settings?tab=1", true);
    assert_eq!(p.map(|p| p.path), Some("/#/settings?tab=1".to_string()));
    let p = page::parse("https://app.test/#/settings", false);
    assert_eq!(p.map(|p| p.path), Some("/".to_string()));
    // Not a web page: nothing learnt.
    assert_eq!(page::parse("javascript:alert(1)", false), None);
    assert_eq!(page::parse("/relative", false), None);
    // The first of a repeated parameter wins.
    let p = page::parse("https://a.test/?utm_source=one&utm_source=two", false);
    assert_eq!(p.map(|p| p.utm_source), Some("one".to_string()));
}
