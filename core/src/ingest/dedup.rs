//! A batch's events without repeated `event_id`s.

use crate::event::Event;

/// The batch without repeated `event_id`s (first one kept), in `event_id`
/// order: the order every writer inserts rows in, so concurrent writers
/// take row locks in one global order.
pub fn unique_by_id(events: &[Event]) -> Vec<&Event> {
    let mut unique: Vec<&Event> = Vec::with_capacity(events.len());
    let mut seen = foldhash::HashSet::with_capacity_and_hasher(events.len(), foldhash::fast::RandomState::default());
    for e in events {
        if seen.insert(e.event_id) {
            unique.push(e);
        }
    }
    unique.sort_by_key(|e| e.event_id);
    unique
}
