//! A funnel over `SiteEvents` in one pass: events come grouped by visitor
//! and visit, in time order, so each visit's progress is one step counter
//! and each step's distinct visitors are counted by the last one seen.

use super::columns::{nanos, Dict, SiteEvents, NONE};
use super::eval::{compile, Compiled, Segment};
use super::segments::View;
use crate::funnel::{respond, Funnel, FunnelResponse};
use crate::goal;
use crate::reference::{EvalError, NO_PROP};
use crate::time::ResolvedRange;
use chrono_tz::Tz;

/// `funnel::evaluate` over the columns.
pub fn funnel(f: &Funnel, range: ResolvedRange, tz: Tz, s: &SiteEvents) -> Result<FunnelResponse, EvalError> {
    funnel_segments(f, range, tz, &[(s, None)])
}

/// `funnel` over a view's segments: their visitors are disjoint, so the
/// steps' visitors add up.
pub fn funnel_view(f: &Funnel, range: ResolvedRange, tz: Tz, view: &View) -> Result<FunnelResponse, EvalError> {
    funnel_segments(f, range, tz, &view.borrowed())
}

fn funnel_segments(
    f: &Funnel,
    range: ResolvedRange,
    tz: Tz,
    segments: &[Segment],
) -> Result<FunnelResponse, EvalError> {
    if range.end < range.start {
        return Err(EvalError::InvalidRange);
    }
    let mut reached = vec![0u64; f.steps().len()];
    let mut audience = 0;
    for &segment in segments {
        audience += tally(f, range, segment, &mut reached);
    }
    Ok(respond(f, &reached, audience, range, tz))
}

/// Adds one segment's visitors per step to `reached`; returns its
/// visitors with a kept event.
fn tally(f: &Funnel, range: ResolvedRange, (s, exclusion): Segment, reached: &mut [u64]) -> u64 {
    let none = {
        let mut d = Dict::default();
        d.intern(NO_PROP);
        d
    };
    let goals = f.query().goals();
    let filters: Vec<Compiled> = f
        .query()
        .filters()
        .iter()
        .map(|x| compile(s, &none, &goal::expand(x, goals)))
        .collect();
    let steps: Vec<Compiled> = f.steps().iter().map(|g| compile(s, &none, &g.to_filter())).collect();
    let (start, end) = (nanos(range.start), nanos(range.end));
    let mut last_visitor = vec![NONE; steps.len()];
    let (mut audience, mut last_seen) = (0u64, NONE);
    let (mut current, mut next) = (NONE, 0usize);
    let mut i = 0;
    while i < s.len() {
        if let Some(after) = exclusion.and_then(|x| x.skip(s, i)) {
            i = after;
            continue;
        }
        let (ts, visit) = (s.ts[i], s.visit[i]);
        let at = i;
        i += 1;
        if ts < start || ts >= end || visit == NONE || !filters.iter().all(|c| c.holds(at, visit)) {
            continue;
        }
        let visitor = s.visit_visitor[visit as usize];
        if visitor != last_seen {
            last_seen = visitor;
            audience += 1;
        }
        if visit != current {
            current = visit;
            next = 0;
        }
        if next < steps.len() && steps[next].holds(at, visit) {
            if last_visitor[next] != visitor {
                last_visitor[next] = visitor;
                reached[next] += 1;
            }
            next += 1;
        }
    }
    audience
}
