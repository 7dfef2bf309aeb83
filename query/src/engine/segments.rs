//! A view of a site's events in segments of disjoint visitors, answered as
//! one: an older segment (columns built once, kept) with the visitors that
//! changed since left out, and a small newer segment holding those
//! visitors whole. A site receiving events then costs a query the read of
//! its recent events, not of the whole range.
//!
//! Each segment holds every event of its visitors that the range's visits
//! need, so distinct visitors and visits of the segments add up; events
//! without a visitor are split by time (`Exclusion::cut`).

use super::columns::{attribute_slots, SiteEvents, ATTRIBUTE_COUNT, NONE};
use crate::reference::{RawEvent, NO_PROP};
use chrono::DateTime;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// What a segment leaves to a later one: the visits of some visitors, and
/// the events without a visitor from `cut` (nanoseconds) on.
#[derive(Debug, Clone, Default)]
pub struct Exclusion {
    visits: Vec<bool>,
    cut: i64,
}

impl Exclusion {
    /// When event `i` is left out, where the scan goes on (the end of its
    /// visit, or the next event).
    #[inline]
    pub(crate) fn skip(&self, s: &SiteEvents, i: usize) -> Option<usize> {
        match s.visit[i] {
            NONE => (s.ts[i] >= self.cut).then_some(i + 1),
            v if self.visits[v as usize] => {
                let v = v as usize;
                Some((s.visit_start[v] + s.visit_len[v]) as usize)
            }
            _ => None,
        }
    }

    /// Whether event `i` of `s` is left out.
    #[inline]
    pub fn excludes(&self, s: &SiteEvents, i: usize) -> bool {
        self.skip(s, i).is_some()
    }

    pub fn heap_bytes(&self) -> usize {
        self.visits.len()
    }
}

/// The segments of a view, oldest first.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub segments: Vec<(Arc<SiteEvents>, Option<Arc<Exclusion>>)>,
}

impl View {
    pub fn single(events: Arc<SiteEvents>) -> View {
        View {
            segments: vec![(events, None)],
        }
    }

    pub(crate) fn borrowed(&self) -> Vec<(&SiteEvents, Option<&Exclusion>)> {
        self.segments.iter().map(|(s, x)| (&**s, x.as_deref())).collect()
    }

    pub fn heap_bytes(&self) -> usize {
        self.segments
            .iter()
            .map(|(s, x)| s.heap_bytes() + x.as_ref().map_or(0, |x| x.heap_bytes()))
            .sum()
    }
}

/// Leaves `visitors` (by name) and the visitor-less events from `cut` on out
/// of `s`, and gives back their events before `cut` as raw events, for a
/// newer segment that adds their events from `cut` on.
///
/// The raw events keep what the columns keep: an event's name, path,
/// hostname and props, and its visit's attributes (those of the visit's
/// first event; a later event can only ever be first of a visit when
/// nothing precedes it within the timeout, and then it was first here too).
/// Their ids are their positions, which keeps their order among equal
/// times.
pub fn split_off(s: &SiteEvents, visitors: &HashSet<&str>, cut: DateTime<chrono::Utc>) -> (Exclusion, Vec<RawEvent>) {
    let cut = super::columns::nanos(cut);
    let mut excluded = vec![false; s.visit_visitor.len()];
    let mut events = Vec::new();
    for code in visitors.iter().filter_map(|v| s.visitors.code(v)) {
        // Visits are ordered by their visitor's code (`Builder::finish`).
        let first = s.visit_visitor.partition_point(|&v| v < code);
        let last = first + s.visit_visitor[first..].partition_point(|&v| v == code);
        excluded[first..last].fill(true);
        for v in first..last {
            let (start, len) = (s.visit_start[v] as usize, s.visit_len[v] as usize);
            let attributes: [&str; ATTRIBUTE_COUNT] = std::array::from_fn(|k| s.visit_attribute(v, k));
            for i in (start..start + len).filter(|&i| s.ts[i] < cut) {
                events.push(raw_event(s, i, Some(s.visitors.text(code)), &attributes));
            }
        }
    }
    (Exclusion { visits: excluded, cut }, events)
}

fn raw_event(s: &SiteEvents, i: usize, visitor: Option<&str>, attributes: &[&str; ATTRIBUTE_COUNT]) -> RawEvent {
    let props: BTreeMap<String, String> = s
        .props
        .iter()
        .filter_map(|(key, c)| {
            let value = c.dict.text(c.values.get(i));
            (value != NO_PROP).then(|| (key.clone(), value.to_string()))
        })
        .collect();
    let mut e = RawEvent {
        event_id: i as u128,
        timestamp: DateTime::from_timestamp_nanos(s.ts[i]),
        name: s.names.text(s.name.get(i)).to_string(),
        path: s.paths.text(s.path.get(i)).to_string(),
        visitor: visitor.map(str::to_string),
        props,
        hostname: s.hostnames.text(s.hostname.get(i)).to_string(),
        ..RawEvent::default()
    };
    for (slot, text) in attribute_slots(&mut e).into_iter().zip(attributes) {
        *slot = text.to_string();
    }
    e
}
