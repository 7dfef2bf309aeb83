//! A batch's events without repeated ids. An event's identity is
//! `(event_id, site_id)`: ids are unique within a site (migration 10), so
//! no site can suppress another's events by sending their ids first.

use crate::event::Event;

/// The batch without repeated `(event_id, site_id)`s (first one kept), in
/// that order: the order of the unique index, which every writer inserts
/// rows in, so concurrent writers take row locks in one global order.
pub fn unique_by_id(events: &[Event]) -> Vec<&Event> {
    let mut unique: Vec<&Event> = Vec::with_capacity(events.len());
    let mut seen = foldhash::HashSet::with_capacity_and_hasher(events.len(), foldhash::fast::RandomState::default());
    for e in events {
        if seen.insert((e.event_id, e.site_id.as_str())) {
            unique.push(e);
        }
    }
    unique.sort_by(|a, b| (a.event_id, &a.site_id).cmp(&(b.event_id, &b.site_id)));
    unique
}
