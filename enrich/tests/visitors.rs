//! The cookieless visitor id: equal for the same (salt, site, address,
//! agent), different when any of them changes; and what enrichment puts in
//! an event's context from a whole request.

use analytics_enrich::{visitor_id, BotReason, BotRule, Client, Enricher, Geo};
use analytics_model::event::{ClientHints, ContextField, IncomingEvent};
use std::net::IpAddr;

const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

#[test]
fn same_inputs_same_visitor_any_change_another() {
    let (today, tomorrow) = ([1u8; 16], [2u8; 16]);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap_or_default();
    let other_day = day.succ_opt().unwrap_or_default();
    let base = visitor_id(&today, "site", day, ip("203.0.113.7"), CHROME);
    assert_eq!(base, visitor_id(&today, "site", day, ip("203.0.113.7"), CHROME));
    let others = [
        visitor_id(&tomorrow, "site", day, ip("203.0.113.7"), CHROME),
        visitor_id(&today, "site", other_day, ip("203.0.113.7"), CHROME),
        visitor_id(&today, "other", day, ip("203.0.113.7"), CHROME),
        visitor_id(&today, "site", day, ip("203.0.113.8"), CHROME),
        visitor_id(&today, "site", day, ip("2001:db8::7"), CHROME),
        visitor_id(&today, "site", day, ip("203.0.113.7"), FIREFOX),
        visitor_id(&today, "sit", day, ip("203.0.113.7"), CHROME),
    ];
    for (i, other) in others.iter().enumerate() {
        assert_ne!(base, *other, "change {i} kept the same visitor");
    }
    assert!(others.iter().all(|v| *v != 0) && base != 0);
}

fn event(
    user: Option<&str>,
    url: Option<&str>,
    referrer: Option<&str>,
    user_agent: Option<&str>,
) -> (analytics_model::event::Event, ClientHints) {
    let incoming = IncomingEvent {
        site_id: Some("site".into()),
        event_type: Some("page_view".into()),
        user_id: user.map(str::to_string),
        url: url.map(str::to_string),
        referrer: referrer.map(str::to_string),
        user_agent: user_agent.map(str::to_string),
        ..IncomingEvent::default()
    };
    incoming
        .validate_parts(chrono::Utc::now(), analytics_model::event::Policy::default())
        .unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn a_request_becomes_a_context() {
    let enricher =
        Enricher::new(Geo::open(None, true).unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    let salt = [7u8; 16];
    let client = Client {
        user_agent: CHROME,
        addr: ip("198.51.100.4"),
        cdn_country: Some("de"),
        salt: &salt,
    };
    let (mut e, hints) = event(
        None,
        Some("https://www.shop.test/p/1?utm_source=newsletter&utm_medium=email&utm_campaign=dec"),
        Some("https://mail.google.com/"),
        None,
    );
    assert_eq!(
        enricher.enrich(&mut e, &hints, &enricher.prepare(client), false, BotRule::RequestAgent),
        Ok(())
    );
    let c = &e.context;
    assert_eq!(e.path, "/p/1", "the path comes from the URL when none was sent");
    let day = e.timestamp.date_naive();
    assert_eq!(
        c.visitor_id,
        Some(visitor_id(&salt, "site", day, ip("198.51.100.4"), CHROME))
    );
    assert_eq!(
        (
            c.get(ContextField::Hostname),
            c.get(ContextField::Source),
            c.get(ContextField::Channel),
            c.get(ContextField::UtmCampaign)
        ),
        ("shop.test", "newsletter", "Email", "dec")
    );
    assert_eq!(
        (
            c.get(ContextField::Browser),
            c.get(ContextField::Os),
            c.get(ContextField::Device),
            c.get(ContextField::Country)
        ),
        ("Chrome", "Windows", "desktop", "DE")
    );
    // An explicit user wins: no cookieless visitor.
    let (mut e, hints) = event(Some("u1"), None, None, None);
    assert_eq!(
        enricher.enrich(&mut e, &hints, &enricher.prepare(client), false, BotRule::RequestAgent),
        Ok(())
    );
    assert_eq!(e.context.visitor_id, None);
    assert_eq!(e.context.get(ContextField::Source), "Direct");
}

#[test]
fn bots_by_the_request_agent_or_only_a_forwarded_one() {
    let enricher = Enricher::new(Geo::none()).unwrap_or_else(|e| panic!("{e}"));
    let salt = [7u8; 16];
    let curl = Client {
        user_agent: "curl/8.5.0",
        addr: ip("198.51.100.4"),
        cdn_country: None,
        salt: &salt,
    };
    // A tracker's request from curl is a bot.
    let (mut e, hints) = event(None, None, None, None);
    assert_eq!(
        enricher.enrich(&mut e, &hints, &enricher.prepare(curl), false, BotRule::RequestAgent),
        Err(BotReason::HttpClient)
    );
    // A server sending with curl keeps its events ...
    let (mut e, hints) = event(None, None, None, None);
    assert_eq!(
        enricher.enrich(
            &mut e,
            &hints,
            &enricher.prepare(curl),
            false,
            BotRule::ForwardedAgentOnly
        ),
        Ok(())
    );
    // ... unless the event forwards a bot's agent.
    let (mut e, hints) = event(
        None,
        None,
        None,
        Some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    );
    assert_eq!(
        enricher.enrich(
            &mut e,
            &hints,
            &enricher.prepare(curl),
            false,
            BotRule::ForwardedAgentOnly
        ),
        Err(BotReason::CrawlerToken)
    );
    // A forwarded person's agent is what the context describes.
    let (mut e, hints) = event(None, None, None, Some(FIREFOX));
    assert_eq!(
        enricher.enrich(
            &mut e,
            &hints,
            &enricher.prepare(curl),
            false,
            BotRule::ForwardedAgentOnly
        ),
        Ok(())
    );
    assert_eq!(
        (e.context.get(ContextField::Browser), e.context.get(ContextField::Os)),
        ("Firefox", "Linux")
    );
    // The CDN header is believed only when configured.
    assert_eq!(e.context.get(ContextField::Country), "");
}
