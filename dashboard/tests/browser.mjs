// Browser test of the dashboard: seeds known events into the real api binary
// (embedded mode, a temp SQLite file, free ports), opens the page in headless
// Chromium at 1280 px and 375 px, and checks that what is on screen equals
// both the API's answers and the truth computed here from the seeded events.
// The visit tiles, the Visitors line and the panels (Stats API v2) are held
// to POST /api/v2/query and to visits computed here (site delta: visitors
// with known sources, agents, countries and pages); clicking panel rows adds
// filters (chips, in the URL, kept on reload, removable).
// Then a second api in keys mode (bound to 0.0.0.0, its own SQLite file, a
// site, a read key and a shared link made with analytics-admin): login,
// logout and the shared link's read-only view. Every page runs under the
// api's Content-Security-Policy; any violation, and any browser console
// error, fails the test.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BIN = process.env.ANALYTICS_API_BIN;
const ADMIN_BIN = process.env.ANALYTICS_ADMIN_BIN || join(dirname(BIN), 'analytics-admin');
const SHOTS = process.env.SCREENSHOT_DIR || 'target/dashboard-screenshots';
mkdirSync(SHOTS, { recursive: true });

const freePort = () => new Promise((resolve) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const isoDay = (d) => d.toISOString().slice(0, 10);
const addDays = (day, n) => { const d = new Date(`${day}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + n); return isoDay(d); };

// ---- time zones ----
// Sites registered (over the admin API) in a zone other than UTC; every
// other site is in UTC. Kathmandu is +05:45 (its hours start at :15 UTC),
// St John's -03:30 (-02:30 in summer).
const ZONES = { ktm: 'Asia/Kathmandu', nfld: 'America/St_Johns' };
const zoneOf = (site) => ZONES[site] || 'UTC';
const wallFormats = new Map();
// The wall clock of an instant (ms or an ISO string) in `zone`: 'YYYY-MM-DD', 'HH', 'MM'.
function wall(t, zone) {
  if (!wallFormats.has(zone)) {
    wallFormats.set(zone, new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }));
  }
  const p = Object.fromEntries(wallFormats.get(zone).formatToParts(new Date(t)).map((x) => [x.type, x.value]));
  return { day: `${p.year}-${p.month}-${p.day}`, hour: p.hour, minute: p.minute };
}
const dayIn = (t, zone) => wall(t, zone).day;
// The UTC instants (ms) at which the local hours of days from..to begin in
// `zone`, found on a 15-minute grid (every zone's offset is a multiple of
// 15 minutes): 24 a day, 23 or 25 on a DST change, a repeated hour twice.
function localHourStarts(from, to, zone) {
  const out = [];
  const end = Date.parse(`${addDays(to, 2)}T00:00:00Z`);
  for (let t = Date.parse(`${addDays(from, -1)}T00:00:00Z`); t < end; t += 15 * 60000) {
    const w = wall(t, zone);
    if (w.minute === '00' && w.day >= from && w.day <= to) out.push(t);
  }
  return out;
}
// The UTC instant (ms) at which `day` begins in `zone`.
const localMidnight = (day, zone) => localHourStarts(day, day, zone)[0];

// ---- seed data and its truth ----
const today = isoDay(new Date());
function ev(site, day, type, path, user, second = 0) {
  // 00:00:ss UTC of the day: never in the future, whatever the time now.
  return { site_id: site, event_type: type, path, user_id: user, timestamp: `${day}T00:00:${String(second).padStart(2, '0')}Z` };
}
const events = [];
// alpha, today: 12 views over 3 paths, 4 users, 3 clicks.
for (let i = 0; i < 12; i++) events.push(ev('alpha', today, 'page_view', ['/home', '/pricing', '/docs'][i % 3 === 0 ? 0 : i % 4 === 1 ? 1 : i < 8 ? 0 : 2], `u${i % 4}`, i));
for (let i = 0; i < 3; i++) events.push(ev('alpha', today, 'click', '/home', `u${i}`, 20 + i));
// alpha, yesterday: 8 views, 6 users, 2 sign-ups.
for (let i = 0; i < 8; i++) events.push(ev('alpha', addDays(today, -1), 'page_view', i < 5 ? '/home' : '/blog', `u${i % 6}`, i));
for (let i = 0; i < 2; i++) events.push(ev('alpha', addDays(today, -1), 'sign_up', '/signup', `u${10 + i}`, 30 + i));
// beta: 30 days of traffic over 300 paths (the table must stay quick).
for (let d = 0; d < 30; d++) {
  for (let i = 0; i < 12; i++) {
    events.push(ev('beta', addDays(today, -d), 'page_view', `/article/${(d * 12 + i) % 300}`, `b${(d + i) % 50}`, i));
  }
  events.push(ev('beta', addDays(today, -d), 'video:play', '/v', `b${d}`, 40));
}

// gamma: a year (366 days) of daily points over 400 paths, to show the page
// stays quick at the longest period the API allows.
for (let d = 0; d < 366; d++) {
  for (let i = 0; i < 2; i++) {
    events.push(ev('gamma', addDays(today, -d), 'page_view', `/g/${(d * 2 + i) % 400}`, `g${(d * 7 + i) % 120}`, i));
  }
}

// delta, yesterday: visitors with known referrers, campaigns, agents,
// countries (the CF-IPCountry header, trusted by the api here) and pages.
// `ctx` is what the api's enrichment makes of them (enrich/src: the known
// sources and GA4's channel rules, ua-parser's names), kept here only.
const UA = {
  chromeWin: ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', 'Chrome', 'Windows', 'desktop'],
  firefoxWin: ['Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0', 'Firefox', 'Windows', 'desktop'],
  chromeMac: ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36', 'Chrome', 'macOS', 'desktop'],
  safariIphone: ['Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1', 'Safari', 'iOS', 'mobile'],
  chromeAndroid: ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36', 'Chrome', 'Android', 'mobile'],
  safariIpad: ['Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1', 'Safari', 'iOS', 'tablet'],
};
// How a visit arrives: [referrer, url query, source, channel, utm_source, utm_medium, utm_campaign].
const ARRIVAL = {
  google: ['https://www.google.com/search?q=analytics', '', 'Google', 'Organic Search', '', '', ''],
  hn: ['https://news.ycombinator.com/item?id=1', '', 'Hacker News', 'Organic Social', '', '', ''],
  blog: ['https://blog.example.org/post/1', '', 'blog.example.org', 'Referral', '', '', ''],
  direct: [undefined, '', 'Direct', 'Direct', '', '', ''],
  spring: [undefined, '?utm_source=newsletter&utm_medium=email&utm_campaign=spring', 'newsletter', 'Email', 'newsletter', 'email', 'spring'],
  autumn: [undefined, '?utm_source=newsletter&utm_medium=email&utm_campaign=autumn', 'newsletter', 'Email', 'newsletter', 'email', 'autumn'],
};
const yesterday = addDays(today, -1);
// [user, agent, country ('' = none), [[arrival, 'HH:MM:SS', [[seconds after, type, path], …]], …]]
const VISITORS = [
  ['d0', 'chromeWin', 'US', [['google', '01:00:00', [[0, 'page_view', '/home'], [65, 'page_view', '/pricing']]]]],
  ['d1', 'firefoxWin', 'DE', [['google', '01:10:00', [[0, 'page_view', '/home']]]]],
  ['d2', 'safariIphone', 'US', [['direct', '02:00:00', [[0, 'page_view', '/docs'], [20, 'page_view', '/home'], [100, 'page_view', '/pricing']]]]],
  ['d3', 'chromeMac', 'GB', [['hn', '03:00:00', [[0, 'page_view', '/blog/launch'], [30, 'click', '/blog/launch']]]]],
  ['d4', 'chromeAndroid', 'FR', [['spring', '04:00:00', [[0, 'page_view', '/pricing']]]]],
  ['d5', 'firefoxWin', 'DE', [['blog', '05:00:00', [[0, 'page_view', '/blog/launch'], [40, 'page_view', '/home']]]]],
  // Two visits (2 hours apart): Google, then direct.
  ['d6', 'chromeMac', 'US', [['google', '06:00:00', [[0, 'page_view', '/home']]], ['direct', '08:00:00', [[0, 'page_view', '/docs'], [15, 'page_view', '/docs/api']]]]],
  ['d7', 'safariIpad', '', [['direct', '09:00:00', [[0, 'page_view', '/home'], [5, 'click', '/home']]]]],
  ['d8', 'safariIphone', 'GB', [['hn', '10:00:00', [[0, 'page_view', '/home']]]]],
  ['d9', 'chromeWin', 'DE', [['google', '11:00:00', [[0, 'page_view', '/pricing'], [200, 'page_view', '/home']]]]],
  ['d10', 'firefoxWin', 'US', [['autumn', '12:00:00', [[0, 'page_view', '/docs']]]]],
  ['d11', 'chromeWin', 'US', [['direct', '13:00:00', [[0, 'page_view', '/home'], [10, 'page_view', '/home']]]]],
];
for (const [user, agent, country, visits] of VISITORS) {
  const [ua, browser, os, device] = UA[agent];
  for (const [arrival, start, steps] of visits) {
    const [referrer, query, source, channel, utmSource, utmMedium, utmCampaign] = ARRIVAL[arrival];
    steps.forEach(([after, type, path], i) => {
      const t = new Date(Date.parse(`${yesterday}T${start}Z`) + after * 1000);
      const e = { site_id: 'delta', event_type: type, path, user_id: user, timestamp: t.toISOString().replace('.000Z', 'Z'), user_agent: ua };
      // The visit's first event says where it came from.
      if (i === 0) {
        if (referrer) e.referrer = referrer;
        if (query) e.url = `https://delta.example${path}${query}`;
      }
      Object.defineProperty(e, 'ctx', {
        enumerable: false,
        value: { 'visit:source': source, 'visit:channel': channel, 'visit:utm_source': utmSource, 'visit:utm_medium': utmMedium, 'visit:utm_campaign': utmCampaign, 'visit:browser': browser, 'visit:os': os, 'visit:device': device, 'visit:country': country },
      });
      events.push(e);
    });
  }
}

// ktm (Asia/Kathmandu) and nfld (America/St_Johns), registered with their
// zones: events on both sides of the local midnight that begins the local
// today, and of yesterday's. 18:20 UTC is 00:05 the next day in Kathmandu,
// and 03:35 UTC is 00:05 in St John's (in winter), so a local day and the
// UTC date of the same name hold different events. Never in the future:
// "00:05" is at most half the time since the local midnight.
const seededAt = Date.now();
const zoneDays = {};
for (const [site, zone] of Object.entries(ZONES)) {
  const day = dayIn(seededAt, zone);
  const [midnight, prevMidnight] = [localMidnight(day, zone), localMidnight(addDays(day, -1), zone)];
  const after = Math.min(300, Math.floor((seededAt - midnight) / 2000)) * 1000;
  const at = (ms, type, path, user) => ({ site_id: site, event_type: type, path, user_id: `${site}-${user}`, timestamp: new Date(ms).toISOString().replace('.000Z', 'Z') });
  events.push(
    at(midnight + after, 'page_view', '/after-midnight', 1), // today 00:05
    at(midnight + after, 'click', '/after-midnight', 1),
    at(midnight - 10 * 60000, 'page_view', '/before-midnight', 2), // yesterday 23:50
    at(midnight - 20 * 60000, 'page_view', '/evening', 2), // yesterday 23:40
    at(midnight - 20 * 60000, 'sign_up', '/evening', 2),
    at(prevMidnight + 5 * 60000, 'page_view', '/early', 3), // yesterday 00:05
    at(prevMidnight - 10 * 60000, 'page_view', '/late', 4), // the day before, 23:50
  );
  zoneDays[site] = { today: day, yesterday: addDays(day, -1), midnight, after };
}

// The keys-mode api's events: two registered sites.
const keyedEvents = [];
for (let i = 0; i < 9; i++) keyedEvents.push(ev('north', today, 'page_view', ['/a', '/b', '/c'][i % 3 === 0 ? 0 : i % 2 + 1], `n${i % 5}`, i));
for (let i = 0; i < 2; i++) keyedEvents.push(ev('north', today, 'sign_up', '/signup', `n${i}`, 20 + i));
for (let i = 0; i < 4; i++) keyedEvents.push(ev('north', addDays(today, -1), 'page_view', '/a', `n${i}`, i));
for (let i = 0; i < 6; i++) keyedEvents.push(ev('south', today, 'page_view', i < 4 ? '/s/home' : '/s/menu', `s${i % 3}`, i));
keyedEvents.push(ev('south', today, 'download', '/s/menu.pdf', 's9', 30));
for (let i = 0; i < 10; i++) keyedEvents.push(ev('south', addDays(today, -1 - (i % 3)), 'page_view', `/s/${i % 4}`, `s${i}`, i));

// The site's local days from..to (its zone: UTC unless ZONES names another).
function truth(site, from, to, list = events, zone = zoneOf(site)) {
  const inRange = (e) => { const d = dayIn(e.timestamp, zone); return d >= from && d <= to; };
  const sel = list.filter((e) => e.site_id === site && inRange(e));
  const views = sel.filter((e) => e.event_type === 'page_view');
  const paths = new Map();
  for (const e of views) paths.set(e.path, (paths.get(e.path) || 0) + 1);
  const types = new Map();
  for (const e of sel) types.set(e.event_type, (types.get(e.event_type) || 0) + 1);
  const rank = (m) => [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return {
    views: views.length,
    users: new Set(sel.map((e) => e.user_id).filter(Boolean)).size,
    events: sel.length,
    paths: rank(paths),
    types: rank(types),
  };
}

// ---- the truth of the Stats API v2 (query/README.md's semantics) ----
// The dashboard's URL names of the filterable dimensions.
const DIM_KEYS = {
  source: 'visit:source', channel: 'visit:channel', utm_source: 'visit:utm_source', utm_medium: 'visit:utm_medium',
  utm_campaign: 'visit:utm_campaign', page: 'event:page', entry_page: 'visit:entry_page', exit_page: 'visit:exit_page',
  country: 'visit:country', browser: 'visit:browser', os: 'visit:os', device: 'visit:device',
};
const KEY_OF = Object.fromEntries(Object.entries(DIM_KEYS).map(([k, d]) => [d, k]));
const PANEL_TABS = {
  sources: ['visit:source', 'visit:channel', 'visit:utm_source', 'visit:utm_medium', 'visit:utm_campaign'],
  pages: ['event:page', 'visit:entry_page', 'visit:exit_page'],
  locations: ['visit:country'],
  devices: ['visit:browser', 'visit:os', 'visit:device'],
};
const NON_EMPTY = new Set(['visit:utm_source', 'visit:utm_medium', 'visit:utm_campaign']);
const halfUp = (num, den) => (den === 0 ? 0 : Math.floor((2 * num + den) / (2 * den)));
const byteOrder = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

// Visits over all of a site's events: a gap over 30 minutes starts a new one.
function sessionize(site, list) {
  const byUser = new Map();
  for (const e of list.filter((x) => x.site_id === site && x.user_id)) {
    if (!byUser.has(e.user_id)) byUser.set(e.user_id, []);
    byUser.get(e.user_id).push(e);
  }
  const visitOf = new Map();
  for (const evs of byUser.values()) {
    evs.sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
    let visit = null;
    for (const e of evs) {
      if (!visit || Date.parse(e.timestamp) - Date.parse(visit.events.at(-1).timestamp) > 30 * 60000) {
        visit = { events: [] };
      }
      visit.events.push(e);
      visitOf.set(e, visit);
    }
  }
  for (const v of new Set(visitOf.values())) {
    const views = v.events.filter((e) => e.event_type === 'page_view');
    v.entry = views[0]?.path;
    v.exit = views.at(-1)?.path;
    v.bounce = v.events.length === 1 && v.events[0].event_type === 'page_view';
    v.duration = Math.floor((Date.parse(v.events.at(-1).timestamp) - Date.parse(v.events[0].timestamp)) / 1000);
    v.ctx = v.events[0].ctx;
  }
  return visitOf;
}

// A dimension's value for an event (undefined: none, or not known here).
function dimValue(e, visit, dim) {
  if (dim === 'event:page') return e.path;
  if (!visit) return undefined;
  if (dim === 'visit:entry_page') return visit.entry;
  if (dim === 'visit:exit_page') return visit.exit;
  return visit.ctx ? visit.ctx[dim] : undefined;
}

function visitTruth(site, from, to, filters, list = events) {
  const zone = zoneOf(site);
  const visitOf = sessionize(site, list);
  const kept = list.filter((e) => e.site_id === site && dayIn(e.timestamp, zone) >= from && dayIn(e.timestamp, zone) <= to
    && filters.every((f) => dimValue(e, visitOf.get(e), f.dim) === f.value));
  const visits = new Set(kept.map((e) => visitOf.get(e)).filter(Boolean));
  const pageviews = kept.filter((e) => e.event_type === 'page_view');
  const vs = [...visits];
  const tiles = {
    visitors: new Set(kept.map((e) => e.user_id).filter(Boolean)).size,
    visits: visits.size,
    pageviews: pageviews.length,
    views_per_visit: halfUp(100 * pageviews.filter((e) => visitOf.get(e)).length, visits.size) / 100,
    bounce_rate: halfUp(100 * vs.filter((v) => v.bounce).length, visits.size),
    visit_duration: halfUp(vs.reduce((a, v) => a + v.duration, 0), visits.size),
  };
  // A panel's rows: [value, visitors], visitors descending then value; null
  // when the value is not known here (a site seeded without ctx).
  const rows = (dim) => {
    const by = new Map();
    for (const e of kept) {
      const value = dimValue(e, visitOf.get(e), dim);
      if (value === undefined && dim.startsWith('visit:') && !['visit:entry_page', 'visit:exit_page'].includes(dim) && visitOf.get(e)) return null;
      if (value === undefined || (NON_EMPTY.has(dim) && value === '')) continue;
      if (!by.has(value)) by.set(value, new Set());
      by.get(value).add(e.user_id);
    }
    return [...by].map(([v, users]) => [v, users.size]).sort((a, b) => b[1] - a[1] || byteOrder(a[0], b[0])).slice(0, 10);
  };
  // Visitors per local hour (`YYYY-MM-DD HH:00:00`) or day.
  const perBucket = (hourly) => {
    const by = new Map();
    for (const e of kept) {
      const w = wall(e.timestamp, zone);
      const key = hourly ? `${w.day} ${w.hour}:00:00` : w.day;
      if (!by.has(key)) by.set(key, new Set());
      by.get(key).add(e.user_id);
    }
    return by;
  };
  return { tiles, rows, perBucket };
}

// "1m 5s", as the dashboard writes a visit duration.
function formatDuration(s) {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

// ---- the api ----
const dir = mkdtempSync(join(tmpdir(), 'dashboard-test-'));
const [http, metrics] = [await freePort(), await freePort()];
const log = openSync(join(SHOTS, 'analytics-api.log'), 'w');
const api = spawn(BIN, [], {
  // TRUST_CDN_COUNTRY: the test gives its visitors countries with CF-IPCountry.
  env: { PATH: process.env.PATH, RUST_LOG: 'warn', DATABASE_URL: `sqlite://${join(dir, 'a.db')}?mode=rwc`, HTTP_ADDR: `127.0.0.1:${http}`, METRICS_ADDR: `127.0.0.1:${metrics}`, TRUST_CDN_COUNTRY: 'true' },
  stdio: ['ignore', log, log],
});
const base = `http://127.0.0.1:${http}`;
let browser;
let keyedApi;
const cleanup = () => {
  api.kill('SIGKILL');
  if (keyedApi) keyedApi.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
};

// An api as the test reads it: where, with which credentials, and the
// events it was sent (the truth of its numbers).
const openSrv = { base, headers: {}, events };

async function getJson(path, srv = openSrv) {
  const r = await fetch(`${srv.base}${path}`, { headers: srv.headers });
  assert.equal(r.status, 200, path);
  return r.json();
}
async function post(body, srv = openSrv, headers = {}) {
  const r = await fetch(`${srv.base}/events/batch`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  assert.equal(r.status, 202, await r.text());
}
async function v2(body, srv = openSrv) {
  const r = await fetch(`${srv.base}/api/v2/query`, { method: 'POST', headers: { 'content-type': 'application/json', ...srv.headers }, body: JSON.stringify(body) });
  const text = await r.text();
  assert.equal(r.status, 200, `POST /api/v2/query ${JSON.stringify(body)}: ${text}`);
  return JSON.parse(text);
}

async function waitReady(metricsPort) {
  const deadline = Date.now() + 30000;
  for (;;) {
    try { if ((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok) return; } catch { /* not up yet */ }
    assert.ok(Date.now() < deadline, 'api not ready in 30 s');
    await sleep(100);
  }
}

// Console errors, and Content-Security-Policy violations apart: Chromium
// reports each as a console message ("Refused to …"), and the page's
// securitypolicyviolation event is logged too, in case one is not.
// `expect401`: where the test sends a page without credentials on purpose,
// Chromium's "Failed to load resource: … 401" for that request is expected.
const consoleErrors = [];
const cspViolations = [];
let expected401s = 0;
async function watch(page, label, { expect401 = false } = {}) {
  page.on('console', (m) => {
    const text = m.text();
    if (/Content Security Policy|Refused to/.test(text)) cspViolations.push(`${label} ${page.url()}: ${text}`);
    else if (m.type() === 'error' && expect401 && /status of 401/.test(text)) expected401s += 1;
    else if (m.type() === 'error') consoleErrors.push(`${label}: ${text}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`${label}: ${e.message}`));
  page.on('requestfailed', (r) => consoleErrors.push(`${label}: request failed ${r.url()}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`Refused by Content Security Policy: ${e.effectiveDirective} ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
}

// The api's security headers are on the page: the CSP check means something.
function checkHeaders(resp, label) {
  const h = resp.headers();
  const csp = h['content-security-policy'] || '';
  assert.ok(csp.includes("default-src 'none'") && csp.includes("script-src 'self'") && csp.includes("style-src 'self'"), `${label}: CSP header "${csp}"`);
  assert.ok(!csp.includes('unsafe-'), `${label}: CSP allows unsafe-*: "${csp}"`);
  assert.equal(h['x-content-type-options'], 'nosniff', `${label}: nosniff`);
  assert.equal(h['x-frame-options'], 'DENY', `${label}: X-Frame-Options`);
  return csp;
}

const num = async (page, sel) => Number((await page.locator(sel).innerText()).replace(/,/g, ''));

// Waits until the tiles show the period and filters in the URL (no request
// in flight): the status names the filters the chips show.
async function settled(page) {
  await page.waitForFunction((zones) => {
    const s = document.getElementById('status').textContent;
    const chips = [...document.querySelectorAll('#chips .chip')].map((li) => li.textContent.replace('×', '').trim());
    const zone = zones[new URLSearchParams(location.search).get('site')] || 'UTC';
    const tail = chips.length ? `, filtered by ${chips.join(' and ')}` : `(${zone})`;
    return s.startsWith('Showing') && s.endsWith(tail) && document.querySelector('#tile-views .value').dataset.value !== undefined
      && document.getElementById('chart').dataset.ticks !== undefined;
  }, ZONES, { timeout: 10000 });
}

// WCAG 2.1 contrast of every visible text element against its effective
// background: 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold).
async function contrastFailures(page) {
  return page.evaluate(() => {
    const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.99)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const failures = [];
    let checked = 0;
    for (const el of document.querySelectorAll('body *')) {
      const hasText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      const style = getComputedStyle(el);
      if (!hasText || style.visibility === 'hidden' || el.getClientRects().length === 0) continue;
      if (el.closest('[hidden], .visually-hidden, .sr-only')) continue;
      checked += 1;
      const [a, b] = [lum(rgb(style.color).slice(0, 3)), lum(background(el))];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) failures.push(`${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1`);
    }
    return { failures, checked };
  });
}

async function checkScreen(page, site, from, to, label, srv = openSrv) {
  await settled(page);
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('site'), site, `${label}: site in URL`);
  // The heading: the site's local dates, and its zone.
  const zone = zoneOf(site);
  const heading = await page.locator('#period-title').innerText();
  assert.ok(heading.endsWith(`: ${from === to ? from : `${from} to ${to}`} (${zone})`), `${label}: heading "${heading}"`);
  const t = truth(site, from, to, srv.events);
  const apiStats = await getJson(`/stats?site_id=${site}&from=${from}&to=${to}&compare=previous`, srv);
  const shown = {
    views: await num(page, '#tile-views .value'),
    users: await num(page, '#tile-users .value'),
    events: await num(page, '#tile-events .value'),
  };
  assert.deepEqual(shown, { views: t.views, users: t.users, events: t.events }, `${label}: tiles vs truth`);
  assert.deepEqual(shown, { views: apiStats.total_views, users: apiStats.unique_users, events: apiStats.total_events }, `${label}: tiles vs API`);
  // The change figure names the previous period's value.
  const prev = truth(site, apiStats.previous.from, apiStats.previous.to, srv.events);
  assert.equal(apiStats.previous.total_views, prev.views, `${label}: previous views`);
  const change = await page.locator('#tile-views .change').innerText();
  assert.ok(change.includes(`(${prev.views.toLocaleString('en-US')})`), `${label}: change text "${change}"`);
  // Tables: every path row (up to 500) and every event type, in rank order.
  const rows = await page.locator('#paths tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  const wantPaths = t.paths.slice(0, 500).map(([p, n]) => [p, n.toLocaleString('en-US')]);
  assert.deepEqual(rows, wantPaths.length ? wantPaths : [['No page views in this period']], `${label}: paths`);
  const types = await page.locator('#types tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.deepEqual(types, t.types.map(([k, n]) => [k, n.toLocaleString('en-US')]), `${label}: event types`);
  // The chart is uPlot's canvas with one point per hour or day.
  await page.locator('#chart canvas').waitFor();
  const series = await getJson(`/stats/timeseries?site_id=${site}&from=${from}&to=${to}`, srv);
  const days = (Date.parse(to) - Date.parse(from)) / 86400000 + 1;
  // Points start where the site's local hours (or days) begin.
  const starts = days <= 2 ? localHourStarts(from, to, zone) : Array.from({ length: days }, (_, i) => localMidnight(addDays(from, i), zone));
  assert.deepEqual(series.points.map((p) => Date.parse(p.start)), starts, `${label}: series starts (${zone})`);
  assert.equal(series.points.reduce((a, p) => a + p.views, 0), t.views, `${label}: series views`);
  // The x axis is labelled in the site's zone: the first label is the
  // first local day (its 00:00 for hours), every label a point's local time.
  const ticks = (await page.locator('#chart').getAttribute('data-ticks')).split('|');
  const pointLabels = starts.map((ms) => { const w = wall(ms, zone); return days <= 2 ? (`${w.hour}:${w.minute}` === '00:00' ? `${w.day.slice(5)} 00:00` : `${w.hour}:${w.minute}`) : w.day.slice(5); });
  assert.equal(ticks[0], days <= 2 ? `${from.slice(5)} 00:00` : from.slice(5), `${label}: first x label ${JSON.stringify(ticks)}`);
  assert.ok(ticks.length >= 2 && ticks.every((x) => pointLabels.includes(x)), `${label}: x labels ${JSON.stringify(ticks)}`);
  const contrast = await contrastFailures(page);
  assert.ok(contrast.checked >= 20, `${label}: only ${contrast.checked} text elements found for the contrast check`);
  assert.deepEqual(contrast.failures, [], `${label}: text below WCAG AA contrast`);
  const visits = await checkVisits(page, site, from, to, label, srv);
  console.log(`ok ${label}: ${JSON.stringify(shown)}, ${rows.length} path rows; visits ${JSON.stringify(visits)}`);
}

// The filters in the page's URL, as the dashboard reads them.
const urlFilters = (page) => [...new URL(page.url()).searchParams]
  .filter(([k]) => DIM_KEYS[k]).map(([k, value]) => ({ dim: DIM_KEYS[k], value }));
const apiFilters = (filters) => filters.map((f) => ['is', f.dim, [f.value]]);
const TILES = [['visitors', 'visitors'], ['visits', 'visits'], ['pageviews', 'pageviews'], ['views_per_visit', 'views-per-visit'], ['bounce_rate', 'bounce-rate'], ['visit_duration', 'visit-duration']];
const regionName = new Intl.DisplayNames(['en'], { type: 'region' });

// The visit tiles, every panel's rows (its tab on screen) and the Visitors
// line equal POST /api/v2/query's answers and the truth computed here.
async function checkVisits(page, site, from, to, label, srv = openSrv) {
  const filters = urlFilters(page);
  const chips = await page.locator('#chips .chip').evaluateAll((lis) => lis.map((li) => ({ dim: li.dataset.dim, value: li.dataset.value })));
  assert.deepEqual(chips, filters, `${label}: chips vs URL`);
  assert.equal(await page.locator('#filters').isVisible(), filters.length > 0, `${label}: filter bar shown`);
  const t = visitTruth(site, from, to, filters, srv.events);
  const shown = {};
  for (const [m, id] of TILES) shown[m] = Number(await page.locator(`#tile-${id} .value`).getAttribute('data-value'));
  const res = await v2({ site_id: site, metrics: TILES.map(([m]) => m), date_range: [from, to], filters: apiFilters(filters) }, srv);
  assert.deepEqual(shown, Object.fromEntries(TILES.map(([m], i) => [m, res.results[0].metrics[i]])), `${label}: visit tiles vs API`);
  assert.deepEqual(shown, t.tiles, `${label}: visit tiles vs truth`);
  const text = async (id) => page.locator(`#tile-${id} .value`).innerText();
  assert.equal(await text('visitors'), t.tiles.visitors.toLocaleString('en-US'), `${label}: visitors text`);
  assert.equal(await text('views-per-visit'), t.tiles.views_per_visit.toLocaleString('en-US', { maximumFractionDigits: 2 }), `${label}: views per visit text`);
  assert.equal(await text('bounce-rate'), `${t.tiles.bounce_rate}%`, `${label}: bounce rate text`);
  assert.equal(await text('visit-duration'), formatDuration(t.tiles.visit_duration), `${label}: visit duration text`);
  const panels = {};
  for (const id of Object.keys(PANEL_TABS)) {
    const dim = await page.locator(`#panel-${id}`).getAttribute('data-dim');
    panels[dim] = (await checkPanel(page, id, dim, site, from, to, label, srv, t)).length;
  }
  // The chart's Visitors line: one value per bucket of /stats/timeseries.
  const series = await getJson(`/stats/timeseries?site_id=${site}&from=${from}&to=${to}`, srv);
  const hourly = series.interval === 'hour';
  const keyOf = (start) => { const w = wall(start, zoneOf(site)); return hourly ? `${w.day} ${w.hour}:00:00` : w.day; };
  const line = (await page.locator('#chart').getAttribute('data-visitors')).split(',').map(Number);
  const perApi = new Map((await v2({ site_id: site, metrics: ['visitors'], date_range: [from, to], dimensions: [hourly ? 'time:hour' : 'time:day'], filters: apiFilters(filters) }, srv))
    .results.map((r) => [r.dimensions[0], r.metrics[0]]));
  const perTruth = t.perBucket(hourly);
  assert.deepEqual(line, series.points.map((p) => perApi.get(keyOf(p.start)) || 0), `${label}: Visitors line vs API`);
  assert.deepEqual(line, series.points.map((p) => perTruth.get(keyOf(p.start))?.size || 0), `${label}: Visitors line vs truth`);
  const legend = await page.locator('#chart .u-legend').innerText();
  assert.ok(legend.includes(filters.length ? 'Visitors (filtered)' : 'Visitors'), `${label}: legend "${legend}"`);
  return { ...shown, panels };
}

// A panel's rows ([value, visitors], at most 10) equal the API's and, where
// this test knows the dimension's values, the truth's.
async function checkPanel(page, id, dim, site, from, to, label, srv, t) {
  const rows = await page.locator(`#panel-${id} tbody tr[data-value]`).evaluateAll((trs) => trs.map((tr) => [tr.dataset.value, Number(tr.dataset.visitors)]));
  const filters = urlFilters(page);
  const res = await v2({
    site_id: site, metrics: ['visitors', 'percentage'], date_range: [from, to], dimensions: [dim],
    filters: [...apiFilters(filters), ...(NON_EMPTY.has(dim) ? [['is_not', dim, ['']]] : [])],
    order_by: [['visitors', 'desc']], pagination: { limit: 10, offset: 0 }, include: { total_rows: true },
  }, srv);
  assert.deepEqual(rows, res.results.map((r) => [r.dimensions[0], r.metrics[0]]), `${label}: ${dim} rows vs API`);
  // More rows than shown: "Top 10 of N".
  const more = page.locator(`#panel-${id} .more`);
  if (res.meta.total_rows > rows.length) assert.equal(await more.innerText(), `Top ${rows.length} of ${res.meta.total_rows.toLocaleString('en-US')}`, `${label}: ${dim} row count`);
  else assert.equal(await more.isVisible(), false, `${label}: ${dim} no row count`);
  const want = (t || visitTruth(site, from, to, filters, srv.events)).rows(dim);
  if (want) assert.deepEqual(rows, want, `${label}: ${dim} rows vs truth`);
  if (rows.length === 0) assert.equal(await page.locator(`#panel-${id} tbody td.none`).count(), 1, `${label}: ${dim} empty row`);
  // Each row names its value (countries by name) and is a button.
  const labels = await page.locator(`#panel-${id} tbody button.row-filter`).allInnerTexts();
  assert.deepEqual(labels.map((l) => l.trim()), rows.map(([v]) => {
    if (v === '') return dim === 'visit:country' ? '(unknown)' : '(none)';
    if (dim === 'visit:country') return `${String.fromCodePoint(...[...v].map((c) => 0x1f1a5 + c.charCodeAt(0)))}${regionName.of(v)}`;
    if (dim === 'visit:device') return v[0].toUpperCase() + v.slice(1);
    return v;
  }), `${label}: ${dim} row labels`);
  return rows;
}

// Shows a panel's tab and waits for its rows.
async function selectTab(page, id, dim) {
  await page.click(`#panel-${id} .tab[data-dim="${dim}"]`);
  await page.locator(`#panel-${id}[data-dim="${dim}"]`).waitFor();
  assert.equal(await page.locator(`#panel-${id} .tab[data-dim="${dim}"]`).getAttribute('aria-pressed'), 'true');
}

// Clicks a panel row; waits for the URL to carry its filter.
async function clickRow(page, id, value) {
  const dim = await page.locator(`#panel-${id}`).getAttribute('data-dim');
  await page.locator(`#panel-${id} tbody tr`).filter({ has: page.locator(`button.row-filter[data-value="${value}"]`) }).locator('button').click();
  await page.waitForURL((u) => u.searchParams.get(KEY_OF[dim]) === value);
}

// ---- keys mode: login, logout, shared links ----
const run = promisify(execFile);
// analytics-admin on the keys-mode api's database; its last line of output.
async function admin(db, ...args) {
  const { stdout } = await run(ADMIN_BIN, args, { env: { PATH: process.env.PATH, RUST_LOG: 'warn', DATABASE_URL: db } });
  return stdout.trim().split('\n').at(-1).trim();
}

const noScroll = async (page, label) => {
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(w <= page.viewportSize().width, `${label}: page is ${w} px wide`);
};

async function checkLoginPage(page, label) {
  assert.equal(new URL(page.url()).pathname, '/login', `${label}: on /login`);
  assert.equal(await page.locator('main.login h1').innerText(), 'Analytics');
  assert.equal(await page.locator('label[for=key]').innerText(), 'API key (scope read or admin)');
  assert.equal(await page.locator('#key').getAttribute('type'), 'password');
  // The dashboard's stylesheet styles it (a card, not the browser's default).
  assert.equal(await page.locator('main.login form').evaluate((f) => getComputedStyle(f).display), 'flex', `${label}: login page styled`);
  const contrast = await contrastFailures(page);
  assert.ok(contrast.checked >= 4, `${label}: only ${contrast.checked} text elements`);
  assert.deepEqual(contrast.failures, [], `${label}: text below WCAG AA contrast`);
  await noScroll(page, label);
}

async function keysMode() {
  const db = `sqlite://${join(dir, 'keys.db')}?mode=rwc`;
  // In keys mode ingest takes registered sites only: register them first.
  for (const site of ['north', 'south']) await admin(db, 'sites', 'add', site);
  const key = await admin(db, 'keys', 'create', '--name', 'dashboard-test', '--scope', 'read');
  assert.match(key, /^ak_/, `read key: ${key}`);
  const link = await admin(db, 'links', 'create', '--site', 'south');
  assert.match(link, /^\/share\/sl_/, `shared link: ${link}`);

  const [kHttp, kMetrics] = [await freePort(), await freePort()];
  const klog = openSync(join(SHOTS, 'analytics-api-keys.log'), 'w');
  keyedApi = spawn(BIN, [], {
    // Bound off loopback: reads need a key or a session.
    env: { PATH: process.env.PATH, RUST_LOG: 'warn', DATABASE_URL: db, HTTP_ADDR: `0.0.0.0:${kHttp}`, METRICS_ADDR: `127.0.0.1:${kMetrics}` },
    stdio: ['ignore', klog, klog],
  });
  const kbase = `http://127.0.0.1:${kHttp}`;
  const srv = { base: kbase, headers: { authorization: `Bearer ${key}` }, events: keyedEvents };
  await waitReady(kMetrics);
  await post(keyedEvents, srv);
  console.log(`keys mode: sites north and south registered, ${keyedEvents.length} events, read key and ${link.slice(0, 10)}… made with analytics-admin`);

  // A read without credentials: 401 with a JSON error; with the key: both sites.
  const anon = await fetch(`${kbase}/sites`);
  assert.equal(anon.status, 401, 'keys mode: /sites without a key');
  assert.ok((await anon.json()).error, 'keys mode: 401 body has an error');
  assert.deepEqual((await getJson('/sites', srv)).sites, ['north', 'south']);

  // ---- 1280 px: login, wrong key, right key, logout ----
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  await watch(page, 'keys 1280', { expect401: true });
  checkHeaders(await page.goto(`${kbase}/`), 'keys /');
  await page.waitForURL(`${kbase}/login`);
  await checkLoginPage(page, 'keys 1280 login');
  console.log('ok keys mode: / without a session goes to /login');
  await page.screenshot({ path: join(SHOTS, '1280-login.png'), fullPage: true });

  await page.fill('#key', 'ak_not_a_key');
  await page.click('main.login button[type=submit]');
  await page.locator('main.login .error').waitFor();
  assert.equal(await page.locator('main.login .error').innerText(), 'That key is not a live read or admin key.');
  await checkLoginPage(page, 'keys 1280 wrong key');
  assert.equal((await ctx.cookies()).filter((c) => c.name === 'analytics_session').length, 0, 'no session for a wrong key');
  console.log('ok keys mode: a wrong key shows the error');
  await page.screenshot({ path: join(SHOTS, '1280-login-wrong-key.png'), fullPage: true });

  await page.fill('#key', key);
  await page.click('main.login button[type=submit]');
  await page.waitForURL((u) => u.pathname === '/');
  await checkScreen(page, 'north', today, today, 'keys 1280 north today', srv);
  assert.deepEqual(await page.locator('#site option').allTextContents(), ['north', 'south']);
  assert.equal(await page.locator('#logout button').isVisible(), true, 'a session has Log out');
  assert.equal(await page.locator('#shared').isVisible(), false, 'a session has no shared banner');
  const session = (await ctx.cookies()).find((c) => c.name === 'analytics_session');
  assert.ok(session && session.httpOnly && session.sameSite === 'Strict', `session cookie ${JSON.stringify(session)}`);
  // Tab order: the pickers, then Log out.
  const focused = [];
  for (let i = 0; i < 4; i++) {
    await page.keyboard.press('Tab');
    focused.push(await page.evaluate(() => document.activeElement.id || document.activeElement.className || document.activeElement.textContent.trim()));
  }
  assert.deepEqual(focused, ['skip', 'site', 'period', 'Log out'], 'keys mode tab order');
  await page.selectOption('#site', 'south');
  await page.selectOption('#period', '7d');
  await checkScreen(page, 'south', addDays(today, -6), today, 'keys 1280 south 7d', srv);
  await page.screenshot({ path: join(SHOTS, '1280-keys-south-7d.png'), fullPage: true });

  await page.click('#logout button');
  await page.waitForURL(`${kbase}/login`);
  assert.equal((await ctx.cookies()).filter((c) => c.name === 'analytics_session').length, 0, 'logout clears the session');
  await page.goto(`${kbase}/?site=north`);
  await page.waitForURL(`${kbase}/login`);
  console.log('ok keys mode: logout returns to /login, and / goes there again');

  // ---- the shared link: south only, read-only ----
  await page.goto(`${kbase}${link}`);
  await page.waitForURL((u) => u.pathname === '/' && u.searchParams.get('site') === 'south');
  await checkShared(page, srv, 'shared 1280');
  await page.screenshot({ path: join(SHOTS, '1280-shared-south.png'), fullPage: true });
  // Its cookie reads south and nothing else.
  const share = (await ctx.cookies()).find((c) => c.name === 'analytics_share');
  assert.ok(share && share.httpOnly, 'shared-link cookie');
  const withLink = { headers: { cookie: `analytics_share=${share.value}` } };
  const q = `from=${today}&to=${today}`;
  assert.equal((await fetch(`${kbase}/stats?site_id=south&${q}`, withLink)).status, 200, 'a shared link reads its site');
  assert.equal((await fetch(`${kbase}/stats?site_id=north&${q}`, withLink)).status, 403, 'a shared link reads its site only');
  await page.selectOption('#period', 'yesterday');
  await checkScreen(page, 'south', addDays(today, -1), addDays(today, -1), 'shared 1280 south yesterday', srv);
  await ctx.close();

  // ---- 375 px: the login page and the shared view ----
  const mctx = await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true });
  const mpage = await mctx.newPage();
  await watch(mpage, 'keys 375', { expect401: true });
  await mpage.goto(`${kbase}/`);
  await mpage.waitForURL(`${kbase}/login`);
  await checkLoginPage(mpage, 'keys 375 login');
  await mpage.screenshot({ path: join(SHOTS, '375-login.png'), fullPage: true });
  await mpage.goto(`${kbase}${link}`);
  await mpage.waitForURL((u) => u.pathname === '/' && u.searchParams.get('site') === 'south');
  await checkShared(mpage, srv, 'shared 375');
  await noScroll(mpage, 'shared 375');
  await mpage.screenshot({ path: join(SHOTS, '375-shared-south.png'), fullPage: true });
  await mctx.close();
  assert.ok(expected401s > 0, 'the unauthenticated visits got their 401');
  console.log(`keys mode: ${expected401s} expected 401s logged by Chromium on the way to /login`);
}

// Site delta on the wide page: every tab of every panel, then filters added
// by clicking rows (chips, URL, reload, back), removed, and cleared.
async function visitsAndFilters(page) {
  const [from, to] = [yesterday, yesterday];
  await page.goto(`${base}/?site=delta&period=yesterday`);
  await checkScreen(page, 'delta', from, to, '1280 delta yesterday');
  const all = visitTruth('delta', from, to, []);
  let tabsChecked = 0;
  for (const [id, dims] of Object.entries(PANEL_TABS)) {
    for (const dim of dims.length > 1 ? [...dims.slice(1), dims[0]] : dims) {
      if (dims.length > 1) await selectTab(page, id, dim);
      const rows = await checkPanel(page, id, dim, 'delta', from, to, `1280 delta ${dim}`, openSrv, all);
      assert.ok(rows.length >= 1, `delta ${dim}: ${JSON.stringify(rows)}`);
      tabsChecked += 1;
    }
  }
  console.log(`ok 1280 delta: ${tabsChecked} panel tabs equal the API and the truth`);
  await page.screenshot({ path: join(SHOTS, '1280-delta-yesterday.png'), fullPage: true });

  // A click on a row adds a chip, the URL keeps it, everything else follows.
  await clickRow(page, 'sources', 'Google');
  await checkScreen(page, 'delta', from, to, '1280 delta source Google');
  assert.deepEqual(await page.locator('#chips .chip').allTextContents().then((t) => t.map((x) => x.replace('×', '').trim())), ['Source is Google']);
  const google = visitTruth('delta', from, to, [{ dim: 'visit:source', value: 'Google' }]).tiles;
  assert.ok(google.visitors < all.tiles.visitors && google.visitors > 0, `Google filters: ${JSON.stringify(google)}`);

  await clickRow(page, 'devices', 'Chrome');
  await checkScreen(page, 'delta', from, to, '1280 delta source Google, browser Chrome');
  assert.deepEqual(urlFilters(page), [{ dim: 'visit:source', value: 'Google' }, { dim: 'visit:browser', value: 'Chrome' }]);
  assert.equal(await page.locator('#clear-filters').isVisible(), true, 'Clear all with two filters');
  await page.screenshot({ path: join(SHOTS, '1280-delta-filtered.png'), fullPage: true });

  // The URL is the view: a reload, and a fresh page on the same URL.
  const shared = page.url();
  await page.reload();
  await checkScreen(page, 'delta', from, to, '1280 delta two filters after reload');
  assert.equal(page.url(), shared);
  const other = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await watch(other, '1280 shared url');
  await other.goto(shared);
  await checkScreen(other, 'delta', from, to, '1280 delta two filters, opened anew');
  await other.close();

  // Back and forward step through the filters.
  await page.goBack();
  await page.waitForURL((u) => !u.searchParams.has('browser'));
  await checkScreen(page, 'delta', from, to, '1280 delta back: source Google');
  await page.goForward();
  await page.waitForURL((u) => u.searchParams.has('browser'));
  await checkScreen(page, 'delta', from, to, '1280 delta forward: two filters');

  // Removing the Source chip leaves the browser filter.
  await page.click('#chips .chip[data-dim="visit:source"] .chip-remove');
  await page.waitForURL((u) => !u.searchParams.has('source') && u.searchParams.get('browser') === 'Chrome');
  await checkScreen(page, 'delta', from, to, '1280 delta browser Chrome');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Remove filter: Browser is Chrome', 'focus stays in the filter bar');

  // An event filter (a page) with the session metrics, and a channel.
  await clickRow(page, 'pages', '/pricing');
  await selectTab(page, 'sources', 'visit:channel');
  await clickRow(page, 'sources', 'Organic Search');
  await checkScreen(page, 'delta', from, to, '1280 delta browser Chrome, page /pricing, channel Organic Search');
  assert.equal(urlFilters(page).length, 3);

  // Clear all restores the totals.
  await page.click('#clear-filters');
  await page.waitForURL((u) => !Object.keys(DIM_KEYS).some((k) => u.searchParams.has(k)));
  await checkScreen(page, 'delta', from, to, '1280 delta cleared');
  const readTiles = async () => {
    const got = {};
    for (const [m, id] of TILES) got[m] = Number(await page.locator(`#tile-${id} .value`).getAttribute('data-value'));
    return got;
  };
  assert.deepEqual(await readTiles(), all.tiles, 'clearing restores the totals');
  assert.equal(await page.locator('#filters').isVisible(), false, 'no filter bar without filters');

  // One filter again, removed by its chip: the totals again.
  await clickRow(page, 'locations', 'DE');
  await checkScreen(page, 'delta', from, to, '1280 delta country DE');
  await page.click('#chips .chip-remove');
  await page.waitForURL((u) => !u.searchParams.has('country'));
  await checkScreen(page, 'delta', from, to, '1280 delta chip removed');
  assert.deepEqual(await readTiles(), all.tiles, 'removing the chip restores the totals');
  console.log(`ok filters: rows add chips, kept in the URL through reload, back and forward; removing them restores ${JSON.stringify(all.tiles)}`);
}

async function checkShared(page, srv, label) {
  await checkScreen(page, 'south', today, today, `${label} south today`, srv);
  assert.deepEqual(await page.locator('#site option').allTextContents(), ['south'], `${label}: only its site`);
  assert.equal(await page.locator('#shared').isVisible(), true, `${label}: banner`);
  assert.equal(await page.locator('#shared').innerText(), 'Shared view of south (read-only)');
  assert.equal(await page.locator('#logout').isVisible(), false, `${label}: no Log out`);
}

// ktm and nfld: Today, Yesterday and the last 7 days are their local dates,
// the heading names the zone, the chart's hours and the hover readout are
// local. The ktm page's clock is set to 00:06 (or earlier) of Kathmandu's
// today, when the UTC date is still the day before: a dashboard reading
// UTC dates would show other days and numbers.
async function zonedSites() {
  const sites = await getJson('/sites');
  assert.deepEqual(sites.timezones, { alpha: 'UTC', beta: 'UTC', delta: 'UTC', gamma: 'UTC', ktm: 'Asia/Kathmandu', nfld: 'America/St_Johns' }, 'GET /sites names the zones');
  for (const [site, zone] of Object.entries(ZONES)) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await watch(page, `1280 ${site}`);
    const { midnight, after } = zoneDays[site];
    if (site === 'ktm') {
      const pinned = Math.min(Date.now(), midnight + after + 60000);
      await page.clock.setFixedTime(pinned);
      assert.notEqual(dayIn(pinned, 'UTC'), dayIn(pinned, zone), 'ktm: the pinned clock is on another UTC date');
    }
    // What the page's clock says today is there (the pinned one for ktm).
    const now = await page.evaluate(() => Date.now());
    const today = dayIn(now, zone);
    const yesterday = addDays(today, -1);
    assert.equal(today, zoneDays[site].today, `${site}: the local day did not change during the test`);
    await page.goto(`${base}/?site=${site}&period=today`);
    await checkScreen(page, site, today, today, `1280 ${site} today (${zone})`);
    assert.equal(await page.locator('#period-title').innerText(), `Today: ${today} (${zone})`);
    const localToday = truth(site, today, today);
    assert.deepEqual(
      { views: await num(page, '#tile-views .value'), events: await num(page, '#tile-events .value') },
      { views: 1, events: 2 },
      `${site} today: the one visit after the local midnight`,
    );
    // The hover readout: the first point is the local 00:00.
    await page.locator('#chart .u-over').hover({ position: { x: 1, y: 20 } });
    const readout = page.locator('#chart .u-legend .u-series').first();
    await page.waitForFunction(() => document.querySelector('#chart .u-legend .u-series .u-value').textContent.includes(':'));
    assert.equal(await readout.locator('.u-value').innerText(), `${today} 00:00`, `${site}: hover readout`);
    assert.equal(await readout.locator('.u-label').innerText(), `Hour (${zone})`, `${site}: readout label`);
    await page.screenshot({ path: join(SHOTS, `1280-${site}-today.png`), fullPage: true });

    await page.selectOption('#period', 'yesterday');
    await checkScreen(page, site, yesterday, yesterday, `1280 ${site} yesterday (${zone})`);
    assert.equal(await page.locator('#period-title').innerText(), `Yesterday: ${yesterday} (${zone})`);
    const localYesterday = truth(site, yesterday, yesterday);
    assert.deepEqual([localYesterday.views, localYesterday.events], [3, 4], `${site} yesterday truth`);
    assert.equal(await num(page, '#tile-views .value'), 3, `${site} yesterday: 00:05, 23:40 and 23:50`);
    if (site === 'ktm') {
      // The UTC dates' numbers are other: the test can tell them apart.
      const utc = (day) => truth(site, day, day, events, 'UTC');
      assert.notDeepEqual(utc(dayIn(now, 'UTC')), localToday, 'ktm today differs from the UTC date');
      assert.notDeepEqual(utc(addDays(dayIn(now, 'UTC'), -1)), localYesterday, 'ktm yesterday differs from the UTC date');
    }

    await page.selectOption('#period', '7d');
    await checkScreen(page, site, addDays(today, -6), today, `1280 ${site} 7d (${zone})`);
    await page.close();
  }
}

try {
  await waitReady(metrics);
  // Register the zoned sites first (open admin API on loopback).
  for (const [site, timezone] of Object.entries(ZONES)) {
    const r = await fetch(`${base}/api/admin/sites`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ site_id: site, timezone }) });
    assert.equal(r.status, 201, `register ${site}: ${await r.text()}`);
  }
  const plain = events.filter((e) => !e.ctx);
  for (let i = 0; i < plain.length; i += 500) await post(plain.slice(i, i + 500));
  // delta's visitors: one batch per country, named by the CDN header.
  const countries = [...new Set(events.filter((e) => e.ctx).map((e) => e.ctx['visit:country']))];
  for (const c of countries) {
    await post(events.filter((e) => e.ctx && e.ctx['visit:country'] === c), openSrv, c ? { 'CF-IPCountry': c } : {});
  }
  console.log(`seeded ${events.length} events (${events.length - plain.length} of delta's visitors from ${countries.length} countries)`);

  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });

  // ---- 1280 px ----
  const wide = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await watch(wide, '1280');
  const csp = checkHeaders(await wide.goto(`${base}/`), 'open /');
  console.log(`page served with Content-Security-Policy: ${csp}`);
  // The first site in byte order, today, by default.
  await checkScreen(wide, 'alpha', today, today, '1280 alpha today');
  assert.deepEqual(await wide.locator('#site option').allTextContents(), ['alpha', 'beta', 'delta', 'gamma', 'ktm', 'nfld']);
  // Open mode: no login, so no Log out and no shared-view banner.
  assert.equal(await wide.locator('#logout').isVisible(), false, 'open mode: no Log out');
  assert.equal(await wide.locator('#shared').isVisible(), false, 'open mode: no shared banner');
  // The CSP watch catches a violation (an inline style attribute), so the
  // zero-violation checks below mean something.
  await wide.evaluate(() => document.getElementById('empty').setAttribute('style', 'color: red'));
  // Both channels report it: Chromium's own message and the event listener.
  const seen = () => [/inline style.*Content Security Policy directive|Refused to apply inline style/, /Refused by Content Security Policy: style-src-attr/]
    .every((re) => cspViolations.some((v) => re.test(v)));
  for (let i = 0; i < 100 && !seen(); i++) await sleep(20);
  assert.ok(seen() && cspViolations.length === 2, `CSP watch self-test: ${JSON.stringify(cspViolations)}`);
  console.log('ok CSP watch self-test: an inline style attribute is reported (by Chromium and by the listener)');
  cspViolations.length = 0;
  await wide.screenshot({ path: join(SHOTS, '1280-alpha-today.png'), fullPage: true });

  await wide.selectOption('#period', 'yesterday');
  assert.equal(new URL(wide.url()).searchParams.get('period'), 'yesterday');
  await checkScreen(wide, 'alpha', addDays(today, -1), addDays(today, -1), '1280 alpha yesterday');

  await wide.selectOption('#period', '7d');
  await checkScreen(wide, 'alpha', addDays(today, -6), today, '1280 alpha 7d');

  await wide.selectOption('#site', 'beta');
  await wide.selectOption('#period', '30d');
  assert.equal(new URL(wide.url()).searchParams.get('period'), '30d');
  await checkScreen(wide, 'beta', addDays(today, -29), today, '1280 beta 30d');
  await wide.screenshot({ path: join(SHOTS, '1280-beta-30d.png'), fullPage: true });

  // Custom range, set with the keyboard-reachable form and Apply.
  await wide.selectOption('#period', 'custom');
  await wide.fill('#from', addDays(today, -10));
  await wide.fill('#to', addDays(today, -3));
  await wide.click('#apply');
  await wide.waitForURL((u) => u.searchParams.get('from') === addDays(today, -10));
  await checkScreen(wide, 'beta', addDays(today, -10), addDays(today, -3), '1280 beta custom');

  // The state is in the URL: a reload shows the same view.
  await wide.reload();
  await checkScreen(wide, 'beta', addDays(today, -10), addDays(today, -3), '1280 beta custom after reload');
  assert.equal(await wide.inputValue('#site'), 'beta');
  assert.equal(await wide.inputValue('#period'), 'custom');

  await visitsAndFilters(wide);
  await zonedSites();

  // A year of daily points and 400 paths: measured from navigation to a
  // settled screen (reported, not asserted: this machine is shared).
  const yearFrom = addDays(today, -365);
  const t0 = Date.now();
  await wide.goto(`${base}/?site=gamma&period=custom&from=${yearFrom}&to=${today}`);
  await settled(wide);
  const yearMs = Date.now() - t0;
  await checkScreen(wide, 'gamma', yearFrom, today, '1280 gamma 366 days');
  console.log(`year view (366 daily points, 400 path rows) settled in ${yearMs} ms`);
  await wide.screenshot({ path: join(SHOTS, '1280-gamma-year.png'), fullPage: true });

  // Keyboard: Tab reaches the skip link, then the site and period pickers.
  await wide.goto(`${base}/?site=alpha&period=today`);
  await settled(wide);
  const focused = [];
  for (let i = 0; i < 3; i++) {
    await wide.keyboard.press('Tab');
    focused.push(await wide.evaluate(() => document.activeElement.id || document.activeElement.className));
  }
  assert.deepEqual(focused, ['skip', 'site', 'period'], 'tab order');
  // Every form control has a label.
  const unlabelled = await wide.evaluate(() => [...document.querySelectorAll('select, input')].filter((el) => !el.labels || el.labels.length === 0).map((el) => el.id));
  assert.deepEqual(unlabelled, [], 'unlabelled controls');

  // Live panel: the seeded events were all received just now; new ones show
  // up without a reload (the panel polls every 5 s).
  await wide.evaluate(() => { window.notReloaded = true; });
  const aliveTruth = events.filter((e) => e.site_id === 'alpha').length;
  await wide.waitForFunction((n) => document.getElementById('live-count').dataset.value === String(n), aliveTruth, { timeout: 8000 });
  assert.equal((await getJson('/stats/live?site_id=alpha')).events, aliveTruth);
  const liveEvents = Array.from({ length: 7 }, (_, i) => ({ site_id: 'alpha', event_type: 'click', path: '/live', user_id: `live${i}`, timestamp: new Date().toISOString() }));
  await post(liveEvents);
  events.push(...liveEvents);
  await wide.waitForFunction((n) => document.getElementById('live-count').dataset.value === String(n), aliveTruth + 7, { timeout: 12000 });
  assert.equal(await wide.evaluate(() => window.notReloaded), true, 'live panel changed without a reload');
  assert.equal((await getJson('/stats/live?site_id=alpha')).events, aliveTruth + 7);
  console.log(`ok live panel: ${aliveTruth} -> ${aliveTruth + 7} without a reload`);
  await wide.goto(`${base}/?site=alpha&period=today`);
  await checkScreen(wide, 'alpha', today, today, '1280 alpha today with live events');
  await wide.screenshot({ path: join(SHOTS, '1280-alpha-live.png'), fullPage: true });

  // ---- 375 px ----
  const narrow = await browser.newPage({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true });
  await watch(narrow, '375');
  await narrow.goto(`${base}/?site=alpha&period=today`);
  await checkScreen(narrow, 'alpha', today, today, '375 alpha today');
  const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= 375, `page is ${overflow} px wide at 375 px`);
  await narrow.screenshot({ path: join(SHOTS, '375-alpha-today.png'), fullPage: true });
  // A filtered view from a shared URL: chips and panels fit 375 px.
  await narrow.goto(`${base}/?site=delta&period=yesterday&country=DE&device=desktop`);
  await checkScreen(narrow, 'delta', yesterday, yesterday, '375 delta yesterday, country DE and device desktop');
  assert.ok((await narrow.evaluate(() => document.documentElement.scrollWidth)) <= 375, 'filtered view fits 375 px');
  await narrow.screenshot({ path: join(SHOTS, '375-delta-filtered.png'), fullPage: true });
  // Another site starts without filters (they name one site's values).
  await narrow.selectOption('#site', 'beta');
  await narrow.selectOption('#period', '7d');
  await checkScreen(narrow, 'beta', addDays(today, -6), today, '375 beta 7d');
  assert.deepEqual(urlFilters(narrow), [], 'switching site drops the filters');
  assert.ok((await narrow.evaluate(() => document.documentElement.scrollWidth)) <= 375);
  await narrow.screenshot({ path: join(SHOTS, '375-beta-7d.png'), fullPage: true });

  await keysMode();

  assert.deepEqual(cspViolations, [], 'Content-Security-Policy violations');
  assert.deepEqual(consoleErrors, [], 'browser console errors');
  console.log(`dashboard browser test passed (0 CSP violations, 0 console errors); screenshots in ${SHOTS}`);
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  cleanup();
}
