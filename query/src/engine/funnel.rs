//! A funnel over `SiteEvents` in one pass: events come grouped by visitor
//! and visit, in time order, so each visit's progress is one step counter
//! and each step's distinct visitors are counted by the last one seen.

use super::columns::{nanos, Dict, SiteEvents, NONE};
use super::eval::{compile, Compiled};
use crate::funnel::{respond, Funnel, FunnelResponse};
use crate::goal;
use crate::reference::{EvalError, NO_PROP};
use crate::time::ResolvedRange;
use chrono_tz::Tz;

/// `funnel::evaluate` over the columns.
pub fn funnel(f: &Funnel, range: ResolvedRange, tz: Tz, s: &SiteEvents) -> Result<FunnelResponse, EvalError> {
    if range.end < range.start {
        return Err(EvalError::InvalidRange);
    }
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
    let mut reached = vec![0u64; steps.len()];
    let mut last_visitor = vec![NONE; steps.len()];
    let (mut audience, mut last_seen) = (0u64, NONE);
    let (mut current, mut next) = (NONE, 0usize);
    for i in 0..s.len() {
        let (ts, visit) = (s.ts[i], s.visit[i]);
        if ts < start || ts >= end || visit == NONE || !filters.iter().all(|c| c.holds(i, visit)) {
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
        if next < steps.len() && steps[next].holds(i, visit) {
            if last_visitor[next] != visitor {
                last_visitor[next] = visitor;
                reached[next] += 1;
            }
            next += 1;
        }
    }
    Ok(respond(f, &reached, audience, range, tz))
}
