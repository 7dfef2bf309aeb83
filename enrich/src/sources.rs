//! Known sources: a referrer's host (or a campaign's `utm_source`) to the
//! name reports show and the kind of site it is, which decides the
//! channel. Our own list, from the sites' public domains.

/// What kind of site a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Search,
    Social,
    Video,
    Shopping,
    Email,
    Other,
}

/// A known source: its name, category, and the hosts that are it. A host
/// written `google.*` matches `google.` followed by any public suffix
/// (`google.com`, `google.co.uk`, `news.google.de`).
pub struct Known {
    pub name: &'static str,
    pub category: Category,
    pub hosts: &'static [&'static str],
    /// Lower-case `utm_source` values that name it besides its hosts.
    pub aliases: &'static [&'static str],
}

use Category::*;

/// Most specific first: `mail.google.com` is Gmail, not Google.
pub const KNOWN: &[Known] = &[
    Known {
        name: "Gmail",
        category: Email,
        hosts: &["mail.google.com"],
        aliases: &["gmail"],
    },
    Known {
        name: "Outlook",
        category: Email,
        hosts: &["outlook.live.com", "outlook.office.com", "outlook.office365.com"],
        aliases: &["outlook"],
    },
    Known {
        name: "Yahoo Mail",
        category: Email,
        hosts: &["mail.yahoo.com"],
        aliases: &[],
    },
    Known {
        name: "Proton Mail",
        category: Email,
        hosts: &["mail.proton.me"],
        aliases: &[],
    },
    Known {
        name: "Google Shopping",
        category: Shopping,
        hosts: &["shopping.google.*"],
        aliases: &[],
    },
    Known {
        name: "Google",
        category: Search,
        hosts: &["google.*"],
        aliases: &["google"],
    },
    Known {
        name: "Bing",
        category: Search,
        hosts: &["bing.*"],
        aliases: &["bing"],
    },
    Known {
        name: "DuckDuckGo",
        category: Search,
        hosts: &["duckduckgo.com"],
        aliases: &["duckduckgo", "ddg"],
    },
    Known {
        name: "Yahoo!",
        category: Search,
        hosts: &["yahoo.*", "search.yahoo.*"],
        aliases: &["yahoo"],
    },
    Known {
        name: "Yandex",
        category: Search,
        hosts: &["yandex.*", "ya.ru"],
        aliases: &["yandex"],
    },
    Known {
        name: "Baidu",
        category: Search,
        hosts: &["baidu.com"],
        aliases: &["baidu"],
    },
    Known {
        name: "Ecosia",
        category: Search,
        hosts: &["ecosia.org"],
        aliases: &["ecosia"],
    },
    Known {
        name: "Qwant",
        category: Search,
        hosts: &["qwant.com"],
        aliases: &["qwant"],
    },
    Known {
        name: "Startpage",
        category: Search,
        hosts: &["startpage.com"],
        aliases: &["startpage"],
    },
    Known {
        name: "Brave Search",
        category: Search,
        hosts: &["search.brave.com"],
        aliases: &["brave"],
    },
    Known {
        name: "Naver",
        category: Search,
        hosts: &["naver.com"],
        aliases: &["naver"],
    },
    Known {
        name: "Seznam",
        category: Search,
        hosts: &["seznam.cz"],
        aliases: &["seznam"],
    },
    Known {
        name: "Kagi",
        category: Search,
        hosts: &["kagi.com"],
        aliases: &["kagi"],
    },
    Known {
        name: "Perplexity",
        category: Search,
        hosts: &["perplexity.ai"],
        aliases: &["perplexity"],
    },
    Known {
        name: "ChatGPT",
        category: Search,
        hosts: &["chatgpt.com", "chat.openai.com"],
        aliases: &["chatgpt", "chatgpt.com"],
    },
    Known {
        name: "Facebook",
        category: Social,
        hosts: &["facebook.com", "fb.com", "fb.me"],
        aliases: &["facebook", "fb"],
    },
    Known {
        name: "Instagram",
        category: Social,
        hosts: &["instagram.com"],
        aliases: &["instagram", "ig"],
    },
    Known {
        name: "Twitter",
        category: Social,
        hosts: &["twitter.com", "t.co", "x.com"],
        aliases: &["twitter"],
    },
    Known {
        name: "LinkedIn",
        category: Social,
        hosts: &["linkedin.com", "lnkd.in"],
        aliases: &["linkedin"],
    },
    Known {
        name: "Reddit",
        category: Social,
        hosts: &["reddit.com", "old.reddit.com", "out.reddit.com"],
        aliases: &["reddit"],
    },
    Known {
        name: "Hacker News",
        category: Social,
        hosts: &["news.ycombinator.com"],
        aliases: &["hackernews", "hn"],
    },
    Known {
        name: "Pinterest",
        category: Social,
        hosts: &["pinterest.*", "pin.it"],
        aliases: &["pinterest"],
    },
    Known {
        name: "Mastodon",
        category: Social,
        hosts: &["mastodon.social", "mastodon.online", "mstdn.social"],
        aliases: &["mastodon"],
    },
    Known {
        name: "Bluesky",
        category: Social,
        hosts: &["bsky.app"],
        aliases: &["bluesky", "bsky"],
    },
    Known {
        name: "Threads",
        category: Social,
        hosts: &["threads.net", "threads.com"],
        aliases: &["threads"],
    },
    Known {
        name: "TikTok",
        category: Social,
        hosts: &["tiktok.com"],
        aliases: &["tiktok"],
    },
    Known {
        name: "VKontakte",
        category: Social,
        hosts: &["vk.com"],
        aliases: &["vk"],
    },
    Known {
        name: "Discord",
        category: Social,
        hosts: &["discord.com", "discordapp.com"],
        aliases: &["discord"],
    },
    Known {
        name: "Slack",
        category: Social,
        hosts: &["slack.com", "app.slack.com"],
        aliases: &["slack"],
    },
    Known {
        name: "Telegram",
        category: Social,
        hosts: &["t.me", "web.telegram.org"],
        aliases: &["telegram"],
    },
    Known {
        name: "WhatsApp",
        category: Social,
        hosts: &["whatsapp.com", "web.whatsapp.com", "wa.me"],
        aliases: &["whatsapp"],
    },
    Known {
        name: "Product Hunt",
        category: Social,
        hosts: &["producthunt.com"],
        aliases: &["producthunt"],
    },
    Known {
        name: "Stack Overflow",
        category: Social,
        hosts: &["stackoverflow.com"],
        aliases: &["stackoverflow"],
    },
    Known {
        name: "GitHub",
        category: Other,
        hosts: &["github.com"],
        aliases: &["github"],
    },
    Known {
        name: "Wikipedia",
        category: Other,
        hosts: &["wikipedia.org"],
        aliases: &["wikipedia"],
    },
    Known {
        name: "Medium",
        category: Other,
        hosts: &["medium.com"],
        aliases: &["medium"],
    },
    Known {
        name: "Substack",
        category: Other,
        hosts: &["substack.com"],
        aliases: &["substack"],
    },
    Known {
        name: "YouTube",
        category: Video,
        hosts: &["youtube.com", "youtu.be", "m.youtube.com"],
        aliases: &["youtube", "yt"],
    },
    Known {
        name: "Vimeo",
        category: Video,
        hosts: &["vimeo.com"],
        aliases: &["vimeo"],
    },
    Known {
        name: "Twitch",
        category: Video,
        hosts: &["twitch.tv"],
        aliases: &["twitch"],
    },
    Known {
        name: "Netflix",
        category: Video,
        hosts: &["netflix.com"],
        aliases: &["netflix"],
    },
    Known {
        name: "Amazon",
        category: Shopping,
        hosts: &["amazon.*"],
        aliases: &["amazon"],
    },
    Known {
        name: "eBay",
        category: Shopping,
        hosts: &["ebay.*"],
        aliases: &["ebay"],
    },
    Known {
        name: "Etsy",
        category: Shopping,
        hosts: &["etsy.com"],
        aliases: &["etsy"],
    },
    Known {
        name: "AliExpress",
        category: Shopping,
        hosts: &["aliexpress.com"],
        aliases: &["aliexpress"],
    },
    Known {
        name: "Shopify",
        category: Shopping,
        hosts: &["shopify.com"],
        aliases: &["shopify"],
    },
];

/// The known source a host is (already lower case, without `www.`).
pub fn by_host(host: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.hosts.iter().any(|h| host_matches(host, h)))
}

/// The known source a campaign's `utm_source` names: an alias, a name or
/// a host.
pub fn by_name(value: &str) -> Option<&'static Known> {
    let lower = value.trim().to_ascii_lowercase();
    KNOWN
        .iter()
        .find(|k| k.aliases.contains(&lower.as_str()) || k.name.eq_ignore_ascii_case(&lower))
        .or_else(|| by_host(lower.strip_prefix("www.").unwrap_or(&lower)))
}

/// `host` is `pattern` or a subdomain of it; a pattern ending in `.*`
/// takes any public suffix of at most two short labels (`com`, `co.uk`).
/// Without allocating: every referrer of every event comes through here.
fn host_matches(host: &str, pattern: &str) -> bool {
    match pattern.strip_suffix(".*") {
        None => host == pattern || host.strip_suffix(pattern).is_some_and(|rest| rest.ends_with('.')),
        Some(stem) => host.match_indices(stem).any(|(at, _)| {
            let at_label = at == 0 || host.as_bytes().get(at - 1) == Some(&b'.');
            let suffix = host[at + stem.len()..].strip_prefix('.');
            at_label
                && suffix.is_some_and(|suffix| {
                    suffix.split('.').count() <= 2 && suffix.split('.').all(|l| !l.is_empty() && l.len() <= 3)
                })
        }),
    }
}
