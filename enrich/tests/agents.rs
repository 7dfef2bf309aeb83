//! Real User-Agent strings with the browser, OS, device or bot verdict a
//! report must show for them.

use analytics_enrich::{AgentParser, BotReason, Device};

struct Case {
    ua: &'static str,
    browser: &'static str,
    browser_version: &'static str,
    os: &'static str,
    os_version: &'static str,
    device: Device,
}

const PEOPLE: &[Case] = &[
    Case { ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", browser: "Chrome", browser_version: "131", os: "Windows", os_version: "10", device: Device::Desktop },
    Case { ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", browser: "Chrome", browser_version: "130", os: "macOS", os_version: "10.15", device: Device::Desktop },
    Case { ua: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36", browser: "Chrome", browser_version: "129", os: "Linux", os_version: "", device: Device::Desktop },
    Case { ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", browser: "Firefox", browser_version: "133", os: "Windows", os_version: "10", device: Device::Desktop },
    Case { ua: "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0", browser: "Firefox", browser_version: "132", os: "Ubuntu", os_version: "", device: Device::Desktop },
    Case { ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0", browser: "Firefox", browser_version: "133", os: "macOS", os_version: "14.7", device: Device::Desktop },
    Case { ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", browser: "Safari", browser_version: "18", os: "macOS", os_version: "10.15", device: Device::Desktop },
    Case { ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70", browser: "Edge", browser_version: "131", os: "Windows", os_version: "10", device: Device::Desktop },
    Case { ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0", browser: "Opera", browser_version: "115", os: "Windows", os_version: "10", device: Device::Desktop },
    Case { ua: "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36", browser: "Chrome", browser_version: "109", os: "Windows", os_version: "7", device: Device::Desktop },
    Case { ua: "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", browser: "Chrome", browser_version: "131", os: "ChromeOS", os_version: "14541.0", device: Device::Desktop },
    Case { ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", browser: "Safari", browser_version: "18", os: "iOS", os_version: "18.1", device: Device::Mobile },
    Case { ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", browser: "Chrome", browser_version: "131", os: "iOS", os_version: "17.6", device: Device::Mobile },
    Case { ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15", browser: "Firefox", browser_version: "133", os: "iOS", os_version: "18.1", device: Device::Mobile },
    Case { ua: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36", browser: "Chrome", browser_version: "131", os: "Android", os_version: "14", device: Device::Mobile },
    Case { ua: "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", browser: "Chrome", browser_version: "131", os: "Android", os_version: "10", device: Device::Mobile },
    Case { ua: "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", browser: "Samsung Internet", browser_version: "26", os: "Android", os_version: "14", device: Device::Mobile },
    Case { ua: "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", browser: "Firefox", browser_version: "133", os: "Android", os_version: "14", device: Device::Mobile },
    Case { ua: "Mozilla/5.0 (Linux; Android 13; M2101K6G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0", browser: "Edge", browser_version: "131", os: "Android", os_version: "13", device: Device::Mobile },
    Case { ua: "Mozilla/5.0 (Linux; Android 12; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", browser: "Chrome", browser_version: "120", os: "Android", os_version: "12", device: Device::Mobile },
    Case { ua: "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", browser: "Safari", browser_version: "17", os: "iOS", os_version: "17.7", device: Device::Tablet },
    Case { ua: "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", browser: "Chrome", browser_version: "131", os: "Android", os_version: "13", device: Device::Tablet },
    Case { ua: "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/130.3.1 like Chrome/130.0.6723.102 Safari/537.36", browser: "Amazon Silk", browser_version: "130", os: "Android", os_version: "11", device: Device::Tablet },
    Case { ua: "Mozilla/5.0 (Linux; Android 12; SM-T870) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Safari/537.36", browser: "Samsung Internet", browser_version: "25", os: "Android", os_version: "12", device: Device::Tablet },
];

const BOTS: &[(&str, BotReason)] = &[
    // ua-parser's spider class: a crawler dressed as a phone.
    ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", BotReason::Spider),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 14_7_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.1.2 Mobile/15E148 Safari/604.1 (compatible; AdsBot-Google-Mobile; +http://www.google.com/mobile/adsbot.html)", BotReason::Spider),
    // Crawler words.
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", BotReason::CrawlerToken),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", BotReason::CrawlerToken),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", BotReason::CrawlerToken),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", BotReason::CrawlerToken),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", BotReason::CrawlerToken),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", BotReason::CrawlerToken),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", BotReason::Headless),
    ("Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1", BotReason::Headless),
    ("Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse", BotReason::CrawlerToken),
    ("curl/8.5.0", BotReason::HttpClient),
    ("python-requests/2.32.3", BotReason::HttpClient),
    ("Go-http-client/2.0", BotReason::HttpClient),
    ("Wget/1.21.4", BotReason::HttpClient),
    ("", BotReason::Missing),
];

#[test]
fn browsers_oses_and_devices_of_people() {
    let parser = AgentParser::new().unwrap_or_else(|e| panic!("patterns: {e}"));
    let mut wrong = Vec::new();
    for c in PEOPLE {
        let a = parser.parse(c.ua);
        let got = (
            a.browser.as_str(),
            a.browser_version.as_str(),
            a.os.as_str(),
            a.os_version.as_str(),
            a.device,
            a.bot,
        );
        let want = (c.browser, c.browser_version, c.os, c.os_version, c.device, None);
        if got != want {
            wrong.push(format!("{}\n  got  {got:?}\n  want {want:?}", c.ua));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn bots_are_named_with_their_reason() {
    let parser = AgentParser::new().unwrap_or_else(|e| panic!("patterns: {e}"));
    let mut wrong = Vec::new();
    for (ua, reason) in BOTS {
        let got = parser.parse(ua).bot;
        if got != Some(*reason) {
            wrong.push(format!("{ua}: got {got:?}, want {reason:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(PEOPLE.len() + BOTS.len() >= 30);
}

/// The cache answers what the patterns answer.
#[test]
fn cached_answers_equal_fresh_ones() {
    let parser = AgentParser::new().unwrap_or_else(|e| panic!("patterns: {e}"));
    for c in PEOPLE {
        let first = parser.parse(c.ua);
        let again = parser.parse(c.ua);
        assert_eq!(*first, *again);
        assert_eq!(*first, parser.parse_uncached(c.ua));
    }
}
