//! Enrichment of ingest requests: who the client is (its address under the
//! trusted-proxy rule, its User-Agent, a CDN's country header) and the
//! context every accepted event gets from it before it is queued. Bots are
//! dropped here and counted by reason.

use crate::error::ApiError;
use crate::state::AppState;
use analytics_core::event::{ClientHints, Event};
use analytics_enrich::{BotRule, Client, Salt, CDN_COUNTRY_HEADER};
use axum::extract::FromRequestParts;
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use std::net::{IpAddr, Ipv4Addr};

/// The request's client, as enrichment needs it. Never logged: neither the
/// address nor the agent is kept past the request.
pub struct RequestClient {
    pub addr: IpAddr,
    pub user_agent: String,
    pub cdn_country: Option<String>,
}

impl FromRequestParts<AppState> for RequestClient {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        Ok(Self {
            addr: super::client_of(state, &parts.extensions, &parts.headers)
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            user_agent: header(USER_AGENT.as_str()).unwrap_or("").to_string(),
            cdn_country: header(CDN_COUNTRY_HEADER).map(str::to_string),
        })
    }
}

impl RequestClient {
    /// Enriches every event; returns those to keep (bots are dropped and
    /// counted). The day's salt is read only when an event needs one.
    pub async fn enrich(
        &self,
        state: &AppState,
        events: Vec<(Event, ClientHints)>,
        hash_mode: bool,
        rule: BotRule,
    ) -> Result<Vec<Event>, ApiError> {
        let Some(enricher) = &state.enricher else {
            return Ok(events.into_iter().map(|(e, _)| e).collect());
        };
        let salt: Salt = if events.iter().any(|(e, _)| e.user_id.is_empty()) {
            state.salts.today(&state.db).await?
        } else {
            [0; 16]
        };
        let prepared = enricher.prepare(Client {
            user_agent: &self.user_agent,
            addr: self.addr,
            cdn_country: self.cdn_country.as_deref(),
            salt: &salt,
        });
        let mut kept = Vec::with_capacity(events.len());
        for (mut event, hints) in events {
            match enricher.enrich(&mut event, &hints, &prepared, hash_mode, rule) {
                Ok(()) => kept.push(event),
                Err(reason) => state.metrics.bots_dropped.with_label_values(&[reason.as_str()]).inc(),
            }
        }
        Ok(kept)
    }
}
