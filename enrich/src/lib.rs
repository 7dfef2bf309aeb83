//! Enrichment: what the api learns from a request and writes into an
//! event's `context` before the event is queued, so the processor parses
//! nothing. Pure functions and in-memory tables; the api supplies the
//! client address (its trusted-proxy rule) and the day's salt.

pub mod acquisition;
pub mod agent;
pub mod geo;
pub mod page;
pub mod sources;
pub mod visitor;

pub use agent::{Agent, AgentParser, BotReason, Device, PatternError};
pub use geo::{Geo, GeoError, CDN_COUNTRY_HEADER};
pub use visitor::{visitor_id, Salt};

use analytics_model::event::{ClientHints, Context, Event, MAX_PATH_CHARS};
use std::net::IpAddr;

/// What the request tells about its client.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// The request's `User-Agent` (empty when absent).
    pub user_agent: &'a str,
    /// Its address under the trusted-proxy rule.
    pub addr: IpAddr,
    /// The CDN's country header, if any (believed only when configured).
    pub cdn_country: Option<&'a str>,
    /// Today's salt for cookieless visitors.
    pub salt: &'a Salt,
}

/// Whether an event's agent is judged for bots: always from a browser's
/// tracker; from a server (`/events`) only by the agent the event itself
/// forwards, so that a sender's own agent (curl, an SDK) never drops its
/// events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotRule {
    RequestAgent,
    ForwardedAgentOnly,
}

pub struct Enricher {
    agents: AgentParser,
    geo: Geo,
}

/// What a request's client gives every event of the request: its agent's
/// answer and its country, looked up once (a batch of 1,000 events is one
/// client).
pub struct Prepared<'a> {
    client: Client<'a>,
    agent: std::sync::Arc<Agent>,
    country: String,
}

impl Enricher {
    pub fn new(geo: Geo) -> Result<Self, PatternError> {
        Ok(Self {
            agents: AgentParser::new()?,
            geo,
        })
    }

    pub fn agents(&self) -> &AgentParser {
        &self.agents
    }

    /// The request's part of every event's context.
    pub fn prepare<'a>(&self, client: Client<'a>) -> Prepared<'a> {
        Prepared {
            agent: self.agents.parse(client.user_agent),
            country: self.geo.country(client.addr, client.cdn_country),
            client,
        }
    }

    /// Fills `event.context` (and its path from the URL when it has none),
    /// or says why the event comes from a bot and must be dropped.
    pub fn enrich(
        &self,
        event: &mut Event,
        hints: &ClientHints,
        prepared: &Prepared<'_>,
        hash_mode: bool,
        rule: BotRule,
    ) -> Result<(), BotReason> {
        let client = &prepared.client;
        let user_agent = hints.user_agent.as_deref().unwrap_or(client.user_agent);
        let agent = match &hints.user_agent {
            Some(forwarded) => self.agents.parse(forwarded),
            None => prepared.agent.clone(),
        };
        let judged = rule == BotRule::RequestAgent || hints.user_agent.is_some();
        if let (true, Some(reason)) = (judged, agent.bot) {
            return Err(reason);
        }
        let page = hints.url.as_deref().and_then(|u| page::parse(u, hash_mode));
        if event.path.is_empty() {
            if let Some(p) = &page {
                event.path = cut_to_bytes(&p.path, MAX_PATH_CHARS).to_string();
            }
        }
        let acquisition = acquisition::classify(page.as_ref(), event.referrer.as_deref());
        let page = page.unwrap_or_default();
        let known_agent = !user_agent.trim().is_empty();
        let visitor_id = event.user_id.is_empty().then(|| {
            visitor_id(
                client.salt,
                &event.site_id,
                event.timestamp.date_naive(),
                client.addr,
                user_agent,
            )
        });
        let device = if known_agent { agent.device.as_str() } else { "" };
        event.context = Context::new(
            visitor_id,
            [
                &page.hostname,
                &acquisition.source,
                acquisition.channel,
                &page.utm_source,
                &page.utm_medium,
                &page.utm_campaign,
                &page.utm_content,
                &page.utm_term,
                &agent.browser,
                &agent.browser_version,
                &agent.os,
                &agent.os_version,
                device,
                &prepared.country,
            ],
        );
        Ok(())
    }
}

/// The longest prefix of `s` of at most `max` bytes ending on a character.
fn cut_to_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
