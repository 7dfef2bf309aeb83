//! A User-Agent to the browser, OS and device type a report shows, or the
//! reason it is a bot. The patterns are ua-parser's (`data/uap-core`);
//! names are normalised so that one browser is one row ("Chrome Mobile"
//! and "Chrome" are Chrome; the device column says mobile).

use quick_cache::sync::Cache;
use std::sync::Arc;

/// What a User-Agent says of its client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agent {
    pub browser: String,
    /// The major version only: minor versions split every report row.
    pub browser_version: String,
    pub os: String,
    /// Major, and minor when the OS has one (`17.1`, `10.15`).
    pub os_version: String,
    pub device: Device,
    /// Why this is not a person's browser; `None` for people.
    pub bot: Option<BotReason>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Device {
    #[default]
    Desktop,
    Mobile,
    Tablet,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
        }
    }
}

/// Why an agent is dropped: the label of `events_dropped_bots_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotReason {
    /// No User-Agent at all (a browser always sends one).
    Missing,
    /// ua-parser's spider class (its list of known crawlers).
    Spider,
    /// A crawler word in the agent (`bot`, `crawler`, `spider`, …).
    CrawlerToken,
    /// A headless or scripted browser (HeadlessChrome, PhantomJS, …).
    Headless,
    /// An HTTP library or command-line client (curl, python-requests, …).
    HttpClient,
}

impl BotReason {
    pub const ALL: [BotReason; 5] = [
        BotReason::Missing,
        BotReason::Spider,
        BotReason::CrawlerToken,
        BotReason::Headless,
        BotReason::HttpClient,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BotReason::Missing => "missing_user_agent",
            BotReason::Spider => "spider",
            BotReason::CrawlerToken => "crawler_token",
            BotReason::Headless => "headless",
            BotReason::HttpClient => "http_client",
        }
    }
}

/// Lower-case words that only crawlers and link previewers put in their
/// agent. Matched as substrings of the lower-cased agent (after removing
/// "cubot", a phone maker whose name holds "bot").
const CRAWLER_TOKENS: &[&str] = &[
    "bot",
    "crawl",
    "spider",
    "slurp",
    "scrape",
    "fetcher",
    "preview",
    "archiver",
    "monitor",
    "uptime",
    "facebookexternalhit",
    "feedfetcher",
    "mediapartners",
    "lighthouse",
    "pagespeed",
    "gtmetrix",
    "pingdom",
];

/// Headless and scripted browsers.
const HEADLESS_TOKENS: &[&str] = &[
    "headlesschrome",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
    "webdriver",
    "electron/",
    "slimerjs",
    "cypress",
];

/// Agents that are programs, not browsers: they begin with one of these.
const HTTP_CLIENT_PREFIXES: &[&str] = &[
    "curl/",
    "wget/",
    "python-requests/",
    "python-urllib/",
    "python-httpx/",
    "aiohttp/",
    "go-http-client/",
    "okhttp/",
    "java/",
    "apache-httpclient/",
    "axios/",
    "node-fetch/",
    "undici",
    "got ",
    "libwww-perl/",
    "ruby",
    "php/",
    "guzzlehttp/",
    "rest-client/",
    "httpie/",
    "postmanruntime/",
    "insomnia/",
    "dart:io",
    "reqwest/",
    "hyper/",
];

/// How many distinct agents the cache keeps (an agent is about 150 bytes
/// of text plus its answer).
pub const AGENT_CACHE_ENTRIES: usize = 10_000;

/// The compiled patterns and a cache of answers: agents repeat (a site's
/// visitors run a few hundred distinct ones a day), and matching an agent
/// against the patterns costs tens of microseconds.
pub struct AgentParser {
    browsers: ua_parser::user_agent::Extractor<'static>,
    oses: ua_parser::os::Extractor<'static>,
    /// Only the leading device patterns, which name spiders: the others (a
    /// thousand phone and tablet models) were half the patterns' memory
    /// (34 MB with them, 17 MB without), and the device type comes from
    /// the agent's own tokens.
    spiders: ua_parser::device::Extractor<'static>,
    cache: Cache<String, Arc<Agent>>,
}

/// Why the embedded patterns could not be built (a bad `regexes.yaml`).
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("the embedded regexes.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("the embedded regexes.yaml does not compile: {0}")]
    Compile(#[from] ua_parser::Error),
}

const REGEXES: &str = include_str!("../data/uap-core/regexes.yaml");
/// ua-parser's device family for crawlers.
const SPIDER: &str = "Spider";

impl AgentParser {
    pub fn new() -> Result<Self, PatternError> {
        let regexes: ua_parser::Regexes<'static> = serde_yaml_ng::from_str(REGEXES)?;
        // The leading block of spider patterns only: the catch-all one at
        // the end of the list ("bot", "silk", …) relies on the phone and
        // tablet patterns before it matching first (a CUBOT phone, a
        // Kindle's Silk); what it would catch, the crawler words catch.
        let spider_patterns = regexes
            .device_parsers
            .into_iter()
            .take_while(|p| p.device_replacement.as_deref() == Some(SPIDER));
        Ok(Self {
            browsers: ua_parser::user_agent::Builder::new()
                .push_all(regexes.user_agent_parsers)?
                .build()
                .map_err(ua_parser::Error::from)?,
            oses: ua_parser::os::Builder::new()
                .push_all(regexes.os_parsers)
                .map_err(ua_parser::Error::from)?
                .build()
                .map_err(ua_parser::Error::from)?,
            spiders: ua_parser::device::Builder::new()
                .push_all(spider_patterns)
                .map_err(ua_parser::Error::from)?
                .build()
                .map_err(ua_parser::Error::from)?,
            cache: Cache::new(AGENT_CACHE_ENTRIES),
        })
    }

    /// The agent's answer, from the cache when it was seen before.
    pub fn parse(&self, user_agent: &str) -> Arc<Agent> {
        if let Some(hit) = self.cache.get(user_agent) {
            return hit;
        }
        let agent = Arc::new(self.parse_uncached(user_agent));
        self.cache.insert(user_agent.to_string(), agent.clone());
        agent
    }

    pub fn parse_uncached(&self, user_agent: &str) -> Agent {
        let ua = user_agent.trim();
        if ua.is_empty() {
            return Agent {
                bot: Some(BotReason::Missing),
                ..Agent::default()
            };
        }
        let (browser, os) = (self.browsers.extract(ua), self.oses.extract(ua));
        let lower = ua.to_ascii_lowercase();
        let bot = if HEADLESS_TOKENS.iter().any(|t| lower.contains(t)) {
            Some(BotReason::Headless)
        } else if self.spiders.extract(ua).is_some() {
            Some(BotReason::Spider)
        } else if HTTP_CLIENT_PREFIXES.iter().any(|p| lower.starts_with(p)) {
            Some(BotReason::HttpClient)
        } else if CRAWLER_TOKENS.iter().any(|t| lower.replace("cubot", "").contains(t)) {
            Some(BotReason::CrawlerToken)
        } else {
            None
        };
        let (browser_name, browser_version) = match &browser {
            Some(b) if b.family != "Other" => (browser_name(&b.family), b.major.unwrap_or("").to_string()),
            _ => (String::new(), String::new()),
        };
        let (os_name, os_version) = match &os {
            Some(o) if o.os != "Other" => {
                let version = match (&o.major, &o.minor) {
                    (Some(major), Some(minor)) => format!("{major}.{minor}"),
                    (Some(major), None) => major.to_string(),
                    _ => String::new(),
                };
                (os_name(&o.os), version)
            }
            _ => (String::new(), String::new()),
        };
        let device = device_type(ua, &os_name);
        Agent {
            browser: browser_name,
            browser_version,
            os: os_name,
            os_version,
            device,
            bot,
        }
    }
}

/// One name per browser, whatever the platform.
fn browser_name(family: &str) -> String {
    let name = match family {
        "Mobile Safari" | "Mobile Safari UI/WKWebView" | "Safari" => "Safari",
        "Chrome Mobile" | "Chrome Mobile iOS" | "Chrome" | "Chromium" => "Chrome",
        "Chrome Mobile WebView" => "Android WebView",
        "Firefox Mobile" | "Firefox iOS" | "Firefox" => "Firefox",
        "Edge Mobile" | "Edge" => "Edge",
        "Opera Mobile" | "Opera Mini" | "Opera" => "Opera",
        "Samsung Internet" => "Samsung Internet",
        "Facebook" => "Facebook",
        other => other,
    };
    name.to_string()
}

fn os_name(os: &str) -> String {
    let name = match os {
        "Mac OS X" => "macOS",
        "Chrome OS" => "ChromeOS",
        other => other,
    };
    name.to_string()
}

/// Tablets by their tokens (iPad, Kindle and Silk, `Tablet`), phones by
/// the `Mobi` token (the convention browsers follow) or iPhone/iOS/Android;
/// an Android agent without `Mobile` is a tablet (Google's guidance to
/// Android browsers); the rest are desktops.
fn device_type(ua: &str, os: &str) -> Device {
    let android_tablet = os == "Android" && !ua.contains("Mobile");
    let tablet_token = ["iPad", "Tablet", "Kindle", "Silk/", "PlayBook"]
        .iter()
        .any(|t| ua.contains(t));
    if android_tablet || tablet_token {
        Device::Tablet
    } else if ua.contains("Mobi") || ua.contains("iPhone") || ua.contains("iPod") || os == "iOS" || os == "Android" {
        Device::Mobile
    } else {
        Device::Desktop
    }
}
