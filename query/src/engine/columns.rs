//! A site's events as columns: every text replaced by its code in a
//! dictionary, events ordered by visitor, then time, so that each visit's
//! events and each visitor's visits are contiguous; the visits in columns
//! of their own (the first event's attributes, entry and exit page, bounce,
//! duration). Built once from raw events (`Builder`), read by `evaluate`.

use super::codes::{Codes, CodesRef};
use crate::dimension::VisitDimension;
use crate::reference::{RawEvent, NO_PROP, PAGEVIEW, VISIT_TIMEOUT};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

/// No value: an event without a visitor has no visit, a visit without
/// pageviews no entry or exit page.
pub const NONE: u32 = u32::MAX;

/// Hashing of the builder's maps: every text of a read is interned, and
/// SipHash stood out in a large site's read (foldhash is seeded per map
/// as well, so texts from clients cannot aim at its buckets in advance).
type Hasher = foldhash::fast::RandomState;

/// Interned texts: each distinct text once, by code.
#[derive(Debug, Default, Clone)]
pub struct Dict {
    index: HashMap<Box<str>, u32, Hasher>,
    values: Vec<Box<str>>,
}

impl Dict {
    pub fn intern(&mut self, text: &str) -> u32 {
        if let Some(&code) = self.index.get(text) {
            return code;
        }
        let code = u32::try_from(self.values.len()).unwrap_or(NONE - 1);
        self.values.push(text.into());
        self.index.insert(text.into(), code);
        code
    }

    pub fn code(&self, text: &str) -> Option<u32> {
        self.index.get(text).copied()
    }

    pub fn text(&self, code: u32) -> &str {
        self.values.get(code as usize).map_or("", |t| t)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Each text twice (the list and the index), with their boxes and the
    /// index's slots.
    pub fn heap_bytes(&self) -> usize {
        self.values.iter().map(|t| 2 * (t.len() + 16) + 8).sum()
    }

    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|t| &**t)
    }
}

/// Distinct texts sorted, in one buffer, found by binary search: a large
/// set that no longer grows (a site's visitors) in about a quarter of a
/// `Dict`'s memory (no index, no box per text).
#[derive(Debug, Default, Clone)]
pub struct Names {
    buffer: String,
    /// Where each text ends in `buffer` (a read's visitors' names are far
    /// below 4 GiB: `QUERY_MAX_EVENTS` of at most a few hundred bytes).
    ends: Vec<u32>,
}

/// A text's first sixteen bytes as a number that orders as they do
/// (shorter texts padded with zeros: where two are equal, the texts
/// themselves decide).
fn prefix(text: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let n = text.len().min(16);
    bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
    u128::from_be_bytes(bytes)
}

impl Names {
    /// The dictionary's texts sorted, and each old code's new one.
    fn sorted(dict: Dict) -> (Names, Vec<u32>) {
        let values = dict.values;
        // Sorted by each text's first sixteen bytes held beside its code,
        // the texts themselves compared only where those are equal: the
        // comparisons of a large site's visitors through their boxes were
        // a large part of building its columns.
        let mut order: Vec<(u128, u32)> = values
            .iter()
            .enumerate()
            .map(|(code, text)| (prefix(text), code as u32))
            .collect();
        order.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| values[a.1 as usize].cmp(&values[b.1 as usize]))
        });
        let order: Vec<u32> = order.into_iter().map(|(_, code)| code).collect();
        let mut names = Names {
            buffer: String::with_capacity(values.iter().map(|v| v.len()).sum()),
            ends: Vec::with_capacity(values.len()),
        };
        let mut remap = vec![0u32; values.len()];
        for (new, &old) in order.iter().enumerate() {
            names.buffer.push_str(&values[old as usize]);
            names.ends.push(u32::try_from(names.buffer.len()).unwrap_or(u32::MAX));
            remap[old as usize] = new as u32;
        }
        (names, remap)
    }

    pub fn code(&self, text: &str) -> Option<u32> {
        let (mut low, mut high) = (0, self.ends.len());
        while low < high {
            let mid = (low + high) / 2;
            match self.text(mid as u32).cmp(text) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Some(mid as u32),
            }
        }
        None
    }

    pub fn text(&self, code: u32) -> &str {
        let k = code as usize;
        let Some(&end) = self.ends.get(k) else {
            return "";
        };
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        self.buffer.get(start as usize..end as usize).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn texts(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len() as u32).map(|k| self.text(k))
    }

    pub fn heap_bytes(&self) -> usize {
        self.buffer.capacity() + self.ends.capacity() * 4
    }
}

/// The visit attributes taken from a visit's first event: every visit
/// dimension after the entry and exit pages, in `VisitDimension::ALL` order.
pub(crate) const ATTRIBUTES: &[VisitDimension] = VisitDimension::ALL.split_at(2).1;

/// How many attributes a visit has.
pub(crate) const ATTRIBUTE_COUNT: usize = 14;

/// A raw event's attributes, in `ATTRIBUTES` order, to write.
pub(crate) fn attribute_slots(e: &mut RawEvent) -> [&mut String; ATTRIBUTE_COUNT] {
    [
        &mut e.source,
        &mut e.referrer,
        &mut e.channel,
        &mut e.utm_source,
        &mut e.utm_medium,
        &mut e.utm_campaign,
        &mut e.utm_content,
        &mut e.utm_term,
        &mut e.device,
        &mut e.browser,
        &mut e.browser_version,
        &mut e.os,
        &mut e.os_version,
        &mut e.country,
    ]
}

/// One event as `Builder::push_ref` reads it: its texts borrowed (from a
/// database row, say), so that a read of millions of events does not
/// allocate each of their twenty texts only to intern and drop them.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub event_id: u128,
    /// Nanoseconds since the epoch (`nanos`).
    pub ts: i64,
    pub name: &'a str,
    pub path: &'a str,
    pub hostname: &'a str,
    pub visitor: Option<&'a str>,
    /// In `ATTRIBUTES` order.
    pub attributes: [&'a str; ATTRIBUTE_COUNT],
    pub props: &'a BTreeMap<String, String>,
}

impl<'a> EventRef<'a> {
    pub fn of(e: &'a RawEvent) -> EventRef<'a> {
        EventRef {
            event_id: e.event_id,
            ts: nanos(e.timestamp),
            name: &e.name,
            path: &e.path,
            hostname: &e.hostname,
            visitor: e.visitor.as_deref(),
            attributes: attribute_texts(e),
            props: &e.props,
        }
    }
}

fn attribute_texts(e: &RawEvent) -> [&str; ATTRIBUTE_COUNT] {
    [
        &e.source,
        &e.referrer,
        &e.channel,
        &e.utm_source,
        &e.utm_medium,
        &e.utm_campaign,
        &e.utm_content,
        &e.utm_term,
        &e.device,
        &e.browser,
        &e.browser_version,
        &e.os,
        &e.os_version,
        &e.country,
    ]
}

/// A custom property's values, one per event (`(none)` where absent).
#[derive(Debug, Clone)]
pub struct PropColumn {
    pub dict: Dict,
    pub values: Codes,
}

/// The columns (see the module).
#[derive(Debug, Clone, Default)]
pub struct SiteEvents {
    /// Nanoseconds since the epoch.
    pub ts: Vec<i64>,
    pub name: Codes,
    pub path: Codes,
    pub hostname: Codes,
    /// The event's visit, `NONE` without a visitor.
    pub visit: Vec<u32>,
    pub props: HashMap<String, PropColumn>,
    pub names: Dict,
    /// Paths, and the visits' entry and exit pages.
    pub paths: Dict,
    pub hostnames: Dict,
    /// The code of `page_view` in `names`.
    pub pageview: u32,
    /// The visitors' names, by the codes in `visit_visitor` (sorted, so
    /// that a visitor's visits are found by name).
    pub visitors: Names,

    pub visit_visitor: Vec<u32>,
    pub visit_entry: Vec<u32>,
    pub visit_exit: Vec<u32>,
    pub visit_bounced: Vec<bool>,
    pub visit_duration: Vec<u64>,
    /// Where each visit's events begin, how many there are, and how many
    /// of them are pageviews (a visit's events are contiguous).
    pub visit_start: Vec<u32>,
    pub visit_len: Vec<u32>,
    pub visit_pageviews: Vec<u32>,
    /// One dictionary per `ATTRIBUTES`.
    pub attribute_dicts: Vec<Dict>,
    /// One column per `ATTRIBUTES`: each visit's code in its dictionary
    /// (a scan by a visit dimension reads one byte a visit in order, not
    /// a combination of all fourteen elsewhere in memory).
    pub visit_attributes: Vec<Codes>,
}

impl SiteEvents {
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// The memory the columns hold (their capacity, and the dictionaries'
    /// texts and index), roughly: what a cache of them accounts.
    pub fn heap_bytes(&self) -> usize {
        fn codes(v: &[u32]) -> usize {
            v.len() * 4
        }
        let events = self.ts.len() * 8
            + self.name.heap_bytes()
            + self.path.heap_bytes()
            + self.hostname.heap_bytes()
            + codes(&self.visit);
        let props: usize = self
            .props
            .values()
            .map(|c| c.values.heap_bytes() + c.dict.heap_bytes())
            .sum();
        let visits = codes(&self.visit_visitor)
            + codes(&self.visit_entry)
            + codes(&self.visit_exit)
            + self.visit_bounced.len()
            + self.visit_duration.len() * 8
            + codes(&self.visit_start)
            + codes(&self.visit_len)
            + codes(&self.visit_pageviews);
        let attributes: usize = self.visit_attributes.iter().map(Codes::heap_bytes).sum::<usize>()
            + self.attribute_dicts.iter().map(Dict::heap_bytes).sum::<usize>();
        events
            + props
            + visits
            + attributes
            + self.visitors.heap_bytes()
            + self.names.heap_bytes()
            + self.paths.heap_bytes()
            + self.hostnames.heap_bytes()
    }

    /// The dictionary of a visit dimension and where a visit's code is.
    pub fn visit_column(&self, d: VisitDimension) -> (&Dict, VisitCodes<'_>) {
        match d {
            VisitDimension::EntryPage => (&self.paths, VisitCodes::Direct(&self.visit_entry)),
            VisitDimension::ExitPage => (&self.paths, VisitCodes::Direct(&self.visit_exit)),
            other => {
                let k = ATTRIBUTES.iter().position(|a| *a == other).unwrap_or(0);
                (
                    &self.attribute_dicts[k],
                    VisitCodes::Column(self.visit_attributes[k].slice()),
                )
            }
        }
    }

    /// Attribute `k` (in `ATTRIBUTES`) of visit `v`, as text.
    pub fn visit_attribute(&self, v: usize, k: usize) -> &str {
        self.attribute_dicts[k].text(self.visit_attributes[k].get(v))
    }

    pub fn build(events: &[RawEvent]) -> SiteEvents {
        let mut b = Builder::default();
        for e in events {
            b.push(e);
        }
        b.finish()
    }
}

/// Where a visit dimension's code of a visit is.
#[derive(Debug, Clone, Copy)]
pub enum VisitCodes<'a> {
    /// One code per visit, `NONE` for none (entry and exit pages).
    Direct(&'a [u32]),
    /// One code per visit, as narrow as its dictionary.
    Column(CodesRef<'a>),
}

impl VisitCodes<'_> {
    #[inline]
    pub fn code(self, visit: usize) -> u32 {
        match self {
            VisitCodes::Direct(codes) => codes[visit],
            VisitCodes::Column(codes) => codes.get(visit),
        }
    }
}

/// One event before ordering.
pub(super) struct Pending {
    pub(super) id: u128,
    pub(super) ts: i64,
    pub(super) visitor: u32,
    pub(super) name: u32,
    pub(super) path: u32,
    pub(super) hostname: u32,
    /// The event's attribute combination.
    pub(super) tuple: u32,
}

/// The events' order by (visitor, time, id), those without a visitor
/// (`NONE`) last: each visitor's events put together by counting (visitor
/// codes are below `visitors`), then each visitor's few sorted by time.
/// One comparison sort of every event by the three was a sixth of
/// building a large site's columns.
fn by_visitor_then_time(pending: &[Pending], visitors: usize) -> Vec<u32> {
    let bucket = |p: &Pending| {
        if p.visitor == NONE {
            visitors
        } else {
            (p.visitor as usize).min(visitors)
        }
    };
    let mut starts = vec![0usize; visitors + 2];
    for p in pending {
        starts[bucket(p) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut next = starts.clone();
    let mut order = vec![0u32; pending.len()];
    for (i, p) in pending.iter().enumerate() {
        let b = bucket(p);
        order[next[b]] = i as u32;
        next[b] += 1;
    }
    for b in 0..=visitors {
        let events = &mut order[starts[b]..starts[b + 1]];
        if events.len() > 1 {
            events.sort_unstable_by_key(|&i| {
                let p = &pending[i as usize];
                (p.ts, p.id)
            });
        }
    }
    order
}

/// Collects raw events one at a time (the texts are interned, the event
/// itself can go), then orders and sessionizes them.
#[derive(Default)]
pub struct Builder {
    pub(super) pending: Vec<Pending>,
    /// (event index, key, value) of every custom property.
    pub(super) props: Vec<(u32, u32, u32)>,
    pub(super) prop_keys: Dict,
    pub(super) prop_values: Dict,
    pub(super) visitors: Dict,
    pub(super) names: Dict,
    pub(super) paths: Dict,
    pub(super) hostnames: Dict,
    pub(super) attributes: Vec<Dict>,
    tuples: HashMap<[u32; 14], u32, Hasher>,
    pub(super) tuple_list: Vec<[u32; 14]>,
}

/// Nanoseconds since the epoch, saturated (events outside 1677–2262
/// cannot be stored; the range ends are clamped the same way).
pub fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt()
        .unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

impl Builder {
    /// Adds an event; returns its visitor's code (`NONE` without one).
    pub fn push(&mut self, e: &RawEvent) -> u32 {
        self.push_ref(EventRef::of(e))
    }

    /// `push` of borrowed texts.
    pub fn push_ref(&mut self, e: EventRef) -> u32 {
        self.ensure_attributes();
        let index = u32::try_from(self.pending.len()).unwrap_or(NONE);
        let texts = e.attributes;
        let attributes: [u32; 14] = std::array::from_fn(|k| self.attributes[k].intern(texts[k]));
        let tuple = self.intern_tuple(attributes);
        for (key, value) in e.props {
            let key = self.prop_keys.intern(key);
            self.props.push((index, key, self.prop_values.intern(value)));
        }
        let visitor = e.visitor.map_or(NONE, |v| self.visitors.intern(v));
        self.pending.push(Pending {
            id: e.event_id,
            ts: e.ts,
            visitor,
            name: self.names.intern(e.name),
            path: self.paths.intern(e.path),
            hostname: self.hostnames.intern(e.hostname),
            tuple,
        });
        visitor
    }

    /// The code of an attribute combination (of the builder's codes).
    pub(super) fn intern_tuple(&mut self, attributes: [u32; 14]) -> u32 {
        match self.tuples.get(&attributes) {
            Some(&t) => t,
            None => {
                let t = u32::try_from(self.tuple_list.len()).unwrap_or(NONE - 1);
                self.tuple_list.push(attributes);
                self.tuples.insert(attributes, t);
                t
            }
        }
    }

    /// Makes sure the attributes' dictionaries exist (a builder starts
    /// without them, so that `Default` stays cheap).
    pub(super) fn ensure_attributes(&mut self) {
        if self.attributes.is_empty() {
            self.attributes = vec![Dict::default(); ATTRIBUTES.len()];
        }
    }

    /// A visitor's name by code.
    pub fn visitor(&self, code: u32) -> &str {
        self.visitors.text(code)
    }

    /// Every visitor's name so far.
    pub fn visitors(&self) -> impl Iterator<Item = &str> {
        self.visitors.texts()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn finish(mut self) -> SiteEvents {
        self.ensure_attributes();
        let (visitors, remap) = Names::sorted(std::mem::take(&mut self.visitors));
        for p in &mut self.pending {
            if p.visitor != NONE {
                p.visitor = remap[p.visitor as usize];
            }
        }
        let timeout = VISIT_TIMEOUT.num_nanoseconds().unwrap_or(i64::MAX);
        let order = by_visitor_then_time(&self.pending, visitors.len());
        let pageview = self.names.intern(PAGEVIEW);
        let n = order.len();
        // Four bytes a code while building; narrowed at the end.
        let (mut name, mut path, mut hostname) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let mut out = SiteEvents {
            ts: Vec::with_capacity(n),
            visit: Vec::with_capacity(n),
            pageview,
            ..SiteEvents::default()
        };
        // Each visit's attribute combination, until they become columns.
        let mut visit_tuple: Vec<u32> = Vec::new();
        // Where each pending event landed, for the props.
        let mut position = vec![0u32; n];
        let mut visit_first = 0usize; // index in `out` of the current visit's first event
        for (at, &i) in order.iter().enumerate() {
            position[i as usize] = at as u32;
            let p = &self.pending[i as usize];
            let visit = if p.visitor == NONE {
                NONE
            } else {
                let continues = at > 0
                    && out.visit[at - 1] != NONE
                    && out.visit_visitor[out.visit[at - 1] as usize] == p.visitor
                    && p.ts - out.ts[at - 1] <= timeout;
                if continues {
                    out.visit[at - 1]
                } else {
                    visit_first = at;
                    let v = out.visit_visitor.len() as u32;
                    out.visit_visitor.push(p.visitor);
                    out.visit_entry.push(NONE);
                    out.visit_exit.push(NONE);
                    out.visit_bounced.push(true);
                    out.visit_duration.push(0);
                    visit_tuple.push(p.tuple);
                    out.visit_start.push(at as u32);
                    out.visit_len.push(0);
                    out.visit_pageviews.push(0);
                    v
                }
            };
            out.ts.push(p.ts);
            name.push(p.name);
            path.push(p.path);
            hostname.push(p.hostname);
            out.visit.push(visit);
            if visit != NONE {
                let v = visit as usize;
                let is_pageview = p.name == pageview;
                out.visit_len[v] += 1;
                out.visit_pageviews[v] += u32::from(is_pageview);
                if is_pageview {
                    if out.visit_entry[v] == NONE {
                        out.visit_entry[v] = p.path;
                    }
                    out.visit_exit[v] = p.path;
                }
                // Bounced: exactly one event, and it is a pageview.
                out.visit_bounced[v] = at == visit_first && is_pageview;
                out.visit_duration[v] = ((p.ts - out.ts[visit_first]) / 1_000_000_000) as u64;
            }
        }
        out.visit_attributes = self
            .attributes
            .iter()
            .enumerate()
            .map(|(k, dict)| {
                let codes = visit_tuple.iter().map(|&t| self.tuple_list[t as usize][k]).collect();
                Codes::new(codes, dict.len())
            })
            .collect();
        drop(visit_tuple);
        out.attribute_dicts = std::mem::take(&mut self.attributes);
        // One column per property key, `(none)` where the event lacks it.
        let mut props: Vec<(Dict, Vec<u32>)> = (0..self.prop_keys.len())
            .map(|_| {
                let mut dict = Dict::default();
                let none = dict.intern(NO_PROP);
                (dict, vec![none; n])
            })
            .collect();
        for &(i, key, value) in &self.props {
            let (dict, values) = &mut props[key as usize];
            values[position[i as usize] as usize] = dict.intern(self.prop_values.text(value));
        }
        for (key, (dict, values)) in self.prop_keys.texts().zip(props) {
            let values = Codes::new(values, dict.len());
            out.props.insert(key.to_string(), PropColumn { dict, values });
        }
        out.name = Codes::new(name, self.names.len());
        out.path = Codes::new(path, self.paths.len());
        out.hostname = Codes::new(hostname, self.hostnames.len());
        out.visitors = visitors;
        out.names = self.names;
        out.paths = self.paths;
        out.hostnames = self.hostnames;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_as_their_texts_whatever_their_first_sixteen_bytes() {
        let texts = [
            "c:1234567890123456789",
            "c:1234567890123456788",
            "c:12345678901234",
            "c:123456789012345",
            "ab",
            "ab\0",
            "ab\0\0",
            "a",
            "",
            "u:user-with-a-long-shared-prefix-2",
            "u:user-with-a-long-shared-prefix-10",
            "é",
            "z",
        ];
        let mut dict = Dict::default();
        for t in texts {
            dict.intern(t);
        }
        let (names, remap) = Names::sorted(dict);
        let mut expected = texts.to_vec();
        expected.sort_unstable();
        assert_eq!(names.texts().collect::<Vec<_>>(), expected);
        for (old, t) in texts.iter().enumerate() {
            assert_eq!(names.text(remap[old]), *t);
            assert_eq!(names.code(t), Some(remap[old]));
        }
    }
}
