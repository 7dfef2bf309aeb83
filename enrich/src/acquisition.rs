//! Where a visit came from: its source (a known source's name, else the
//! referrer's host; `Direct` when there is none or it is the site itself)
//! and its channel, following the public definitions of Google Analytics 4's
//! default channel group (its order of rules, its medium patterns).

use crate::page::{referrer_host, Page};
use crate::sources::{self, Category};

pub const DIRECT: &str = "Direct";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquisition {
    pub source: String,
    pub channel: &'static str,
}

/// Every channel, in the order of the rules.
pub const CHANNELS: [&str; 19] = [
    "Direct",
    "Cross-network",
    "Paid Shopping",
    "Paid Search",
    "Paid Social",
    "Paid Video",
    "Display",
    "Paid Other",
    "Organic Shopping",
    "Organic Social",
    "Organic Video",
    "Organic Search",
    "Referral",
    "Email",
    "Affiliates",
    "Audio",
    "SMS",
    "Mobile Push Notifications",
    "Unassigned",
];

/// The source and channel of a page view with `page` (when the URL was
/// known) and `referrer`. A campaign source (`utm_source`, then `source` or
/// `ref`) wins over the referrer, as in Plausible and Google Analytics.
pub fn classify(page: Option<&Page>, referrer: Option<&str>) -> Acquisition {
    let campaign_source = page
        .map(|p| {
            if p.utm_source.is_empty() {
                p.ref_param.as_str()
            } else {
                p.utm_source.as_str()
            }
        })
        .unwrap_or("");
    let own_host = page.map(|p| p.hostname.as_str()).unwrap_or("");
    let referrer_host = referrer
        .and_then(referrer_host)
        .filter(|h| !h.is_empty() && h != own_host);

    let (source, category) = if !campaign_source.is_empty() {
        match sources::by_name(campaign_source) {
            Some(k) => (k.name.to_string(), Some(k.category)),
            None => (campaign_source.to_string(), None),
        }
    } else if let Some(host) = &referrer_host {
        match sources::by_host(host) {
            Some(k) => (k.name.to_string(), Some(k.category)),
            None => (host.clone(), None),
        }
    } else {
        (DIRECT.to_string(), None)
    };

    let explicit_medium = page.map(|p| p.utm_medium.to_ascii_lowercase()).unwrap_or_default();
    // Traffic without a campaign has the medium a browser's referral
    // implies: organic from a search engine, email from a webmail, else a
    // referral.
    let medium = if !explicit_medium.is_empty() {
        explicit_medium
    } else if campaign_source.is_empty() && referrer_host.is_some() {
        match category {
            Some(Category::Search) => "organic".into(),
            Some(Category::Email) => "email".into(),
            _ => "referral".into(),
        }
    } else {
        String::new()
    };
    let campaign = page.map(|p| p.utm_campaign.to_ascii_lowercase()).unwrap_or_default();
    let channel = channel(&source, category, &medium, &campaign);
    Acquisition { source, channel }
}

/// GA4's default channel group, first matching rule wins.
fn channel(source: &str, category: Option<Category>, medium: &str, campaign: &str) -> &'static str {
    let source_lower = source.to_ascii_lowercase();
    let is = |c: Category| category == Some(c);
    let paid = is_paid_medium(medium);
    let shopping_campaign = is_shopping_campaign(campaign);
    if source == DIRECT && matches!(medium, "" | "(none)" | "(not set)") {
        "Direct"
    } else if campaign.contains("cross-network") {
        "Cross-network"
    } else if (is(Category::Shopping) || shopping_campaign) && paid {
        "Paid Shopping"
    } else if is(Category::Search) && paid {
        "Paid Search"
    } else if is(Category::Social) && paid {
        "Paid Social"
    } else if is(Category::Video) && paid {
        "Paid Video"
    } else if matches!(medium, "display" | "banner" | "expandable" | "interstitial" | "cpm") {
        "Display"
    } else if paid {
        "Paid Other"
    } else if is(Category::Shopping) || shopping_campaign {
        "Organic Shopping"
    } else if is(Category::Social)
        || matches!(
            medium,
            "social" | "social-network" | "social-media" | "sm" | "social network" | "social media"
        )
    {
        "Organic Social"
    } else if is(Category::Video) || medium.contains("video") {
        "Organic Video"
    } else if is(Category::Search) || medium == "organic" {
        "Organic Search"
    } else if matches!(medium, "referral" | "app" | "link") {
        "Referral"
    } else if is(Category::Email) || is_email(&source_lower) || is_email(medium) {
        "Email"
    } else if medium == "affiliate" {
        "Affiliates"
    } else if medium == "audio" {
        "Audio"
    } else if source_lower == "sms" || medium == "sms" {
        "SMS"
    } else if medium.ends_with("push") || medium.contains("mobile") || medium.contains("notification") {
        "Mobile Push Notifications"
    } else {
        "Unassigned"
    }
}

/// `^(.*cp.*|ppc|retargeting|paid.*)$`
fn is_paid_medium(medium: &str) -> bool {
    medium.contains("cp") || medium == "ppc" || medium == "retargeting" || medium.starts_with("paid")
}

/// `^(.*(([^a-df-z]|^)shop|shopping).*)$`: "shop" not preceded by a
/// letter other than `e` ("eshop" counts, "workshop" does not).
fn is_shopping_campaign(campaign: &str) -> bool {
    if campaign.contains("shopping") {
        return true;
    }
    campaign.match_indices("shop").any(|(i, _)| {
        campaign[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_lowercase() && c != 'e'))
    })
}

/// `email|e-mail|e_mail|e mail`
fn is_email(s: &str) -> bool {
    ["email", "e-mail", "e_mail", "e mail"].iter().any(|p| s.contains(p))
}
