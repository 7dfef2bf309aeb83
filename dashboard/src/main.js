// The dashboard: reads the public stats API (/stats…) and the Stats API v2
// (POST /api/v2/query) and keeps its state (site, period, filters) in the URL
// so a view can be shared or reloaded. Where reads need a key, any 401 sends
// the browser to the api's /login page.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { fillFunnels, goalMetrics, renderFunnel, renderGoals } from './conversions.js';
import { csvBlob, fetchCsv, fileSafe, save, zipBlob } from './downloads.js';
import { createMap } from './map.js';

const LIVE_POLL_MS = 5000;
const PATH_ROWS = 500;
const PERIODS = {
  today: 'Today',
  yesterday: 'Yesterday',
  '7d': 'Last 7 days',
  '30d': 'Last 30 days',
  custom: 'Custom range',
};
const fmt = new Intl.NumberFormat('en-US');
const fmt2 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
const $ = (id) => document.getElementById(id);

// The dimensions a click on a panel row can filter by: their name in the URL
// (`?source=Google&browser=Firefox`) and on a chip.
export const DIMENSIONS = {
  'visit:source': { key: 'source', label: 'Source' },
  'visit:channel': { key: 'channel', label: 'Channel' },
  'visit:utm_source': { key: 'utm_source', label: 'UTM source' },
  'visit:utm_medium': { key: 'utm_medium', label: 'UTM medium' },
  'visit:utm_campaign': { key: 'utm_campaign', label: 'UTM campaign' },
  'event:page': { key: 'page', label: 'Page' },
  'visit:entry_page': { key: 'entry_page', label: 'Entry page' },
  'visit:exit_page': { key: 'exit_page', label: 'Exit page' },
  'visit:country': { key: 'country', label: 'Country' },
  'visit:browser': { key: 'browser', label: 'Browser' },
  'visit:os': { key: 'os', label: 'OS' },
  'visit:device': { key: 'device', label: 'Device' },
  'event:goal': { key: 'goal', label: 'Goal' },
};
const BY_KEY = Object.fromEntries(Object.entries(DIMENSIONS).map(([dim, d]) => [d.key, dim]));
// UTM tabs leave out visits without a campaign (an empty value), as Plausible does.
const NON_EMPTY = new Set(['visit:utm_source', 'visit:utm_medium', 'visit:utm_campaign']);
export const PANELS = [
  { id: 'sources', title: 'Sources', tabs: [['visit:source', 'Source'], ['visit:channel', 'Channel'], ['visit:utm_source', 'UTM source'], ['visit:utm_medium', 'UTM medium'], ['visit:utm_campaign', 'UTM campaign']] },
  { id: 'pages', title: 'Pages', tabs: [['event:page', 'Top pages'], ['visit:entry_page', 'Entry pages'], ['visit:exit_page', 'Exit pages']] },
  // A tab's third item, 'map', shows its dimension on the world map.
  { id: 'locations', title: 'Locations', tabs: [['visit:country', 'Countries'], ['visit:country', 'Map', 'map']] },
  { id: 'devices', title: 'Devices', tabs: [['visit:browser', 'Browser'], ['visit:os', 'OS'], ['visit:device', 'Device']] },
];
const PANEL_ROWS = 10;
const TILE_METRICS = ['visitors', 'visits', 'pageviews', 'views_per_visit', 'bounce_rate', 'visit_duration'];

// "1m 5s", "42s", "1h 3m".
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

const regionNames = typeof Intl.DisplayNames === 'function' ? new Intl.DisplayNames(['en'], { type: 'region' }) : null;
function countryName(code) {
  try { return (regionNames && regionNames.of(code)) || code; } catch { return code; }
}
// A two-letter code as its flag (regional indicator symbols).
const flag = (code) => (/^[A-Z]{2}$/.test(code) ? String.fromCodePoint(...[...code].map((c) => 0x1f1a5 + c.charCodeAt(0))) : '');

// How a dimension's value reads on a row or a chip.
export function valueLabel(dim, value) {
  if (value === '') return dim === 'visit:country' ? '(unknown)' : '(none)';
  if (dim === 'visit:country') return countryName(value);
  if (dim === 'visit:device') return value.charAt(0).toUpperCase() + value.slice(1);
  return value;
}

// Days, hours and weeks are the site's own, in its IANA time zone (GET
// /sites names it; UTC unless an admin set another): the api reads the
// dates it is sent as the site's local days, and a timeseries point's
// `start` is the UTC instant its local hour or day begins.
const zoneParts = new Map();
// The wall clock of `date` (a Date or epoch ms) in `zone`:
// { day: 'YYYY-MM-DD', hour: 'HH', minute: 'MM' }.
export function wallClock(date, zone) {
  let f = zoneParts.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
    });
    zoneParts.set(zone, f);
  }
  const p = Object.fromEntries(f.formatToParts(date).map((x) => [x.type, x.value]));
  return { day: `${p.year}-${p.month}-${p.day}`, hour: p.hour === '24' ? '00' : p.hour, minute: p.minute };
}
// The site's local date now: what Today means there.
export const localToday = (zone, now = new Date()) => wallClock(now, zone).day;
// Calendar arithmetic on a YYYY-MM-DD date (no zone involved).
function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}
const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

export function resolvePeriod(period, from, to, today) {
  switch (period) {
    case 'yesterday': return { from: addDays(today, -1), to: addDays(today, -1) };
    case '7d': return { from: addDays(today, -6), to: today };
    case '30d': return { from: addDays(today, -29), to: today };
    case 'custom':
      if (DAY_RE.test(from || '') && DAY_RE.test(to || '') && from <= to) return { from, to };
      return { from: today, to: today };
    default: return { from: today, to: today };
  }
}

function readUrl() {
  const p = new URLSearchParams(location.search);
  const period = PERIODS[p.get('period')] ? p.get('period') : 'today';
  // One `is` filter per dimension, in the order they were added.
  const filters = [];
  for (const [key, value] of p) {
    const dim = BY_KEY[key];
    if (dim && !filters.some((f) => f.dim === dim)) filters.push({ dim, value });
  }
  return { site: p.get('site') || '', period, from: p.get('from') || '', to: p.get('to') || '', filters };
}

function writeUrl(state, push) {
  const p = new URLSearchParams();
  if (state.site) p.set('site', state.site);
  p.set('period', state.period);
  if (state.period === 'custom') {
    p.set('from', state.from);
    p.set('to', state.to);
  }
  for (const f of state.filters) p.append(DIMENSIONS[f.dim].key, f.value);
  const url = `${location.pathname}?${p}`;
  if (url !== `${location.pathname}${location.search}`) {
    history[push ? 'pushState' : 'replaceState'](null, '', url);
  }
}

// Thrown once a 401 has sent the page to /login: nothing more to show.
class LoggedOut extends Error {}
let leaving = false;

function toLogin() {
  if (leaving) return;
  leaving = true;
  clearInterval(liveTimer);
  location.assign('/login');
}

async function api(path, params, payload) {
  if (leaving) throw new LoggedOut('going to /login');
  const r = payload === undefined
    ? await fetch(`${path}?${new URLSearchParams(params)}`, { headers: { accept: 'application/json' } })
    : await fetch(path, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  // Read first even on a 401: leaving with the body unread aborts it.
  const body = await r.json().catch(() => ({}));
  if (r.status === 401) {
    toLogin();
    throw new LoggedOut('not logged in');
  }
  if (!r.ok) {
    const detail = (body.details || []).map((d) => `${d.field}: ${d.message}`).join('; ');
    throw new Error(`${body.error || r.statusText}${detail ? ` (${detail})` : ''}`);
  }
  return body;
}

// How this page reads, from GET /session (api/src/routes/session.rs): 'key'
// (a session opened at /login), 'link' (a shared link: one site, read-only),
// 'open' (embedded mode on loopback, where reads need no key) or 'none'.
// Asking the api rather than guessing from cookies keeps the page right when
// cookies of another api on the same host are present (cookies ignore ports).
export async function accessKind() {
  try {
    return (await api('/session', {})).kind;
  } catch (e) {
    if (e instanceof LoggedOut) throw e;
    return 'none';
  }
}

let state = readUrl();
let generation = 0;
let chart = null;
let liveTimer = null;
// Each panel's chosen tab (a dimension, shown as a list or a map), and the
// date range on screen.
const panelTab = Object.fromEntries(PANELS.map((p) => [p.id, p.tabs[0][0]]));
const panelView = Object.fromEntries(PANELS.map((p) => [p.id, 'list']));
const panelMaps = {};
const panelGeneration = {};
let dateRange = null;
// Each listed site's time zone (GET /sites); a site not listed reads as UTC.
let siteZones = {};
const siteZone = () => siteZones[state.site] || 'UTC';

function showError(message) {
  const el = $('error');
  el.textContent = message || '';
  el.hidden = !message;
}

function changeText(cur, prev, label) {
  const was = `vs ${label} (${fmt.format(prev)})`;
  if (prev === 0) return cur === 0 ? `no change ${was}` : `new ${was}`;
  const pct = ((cur - prev) / prev) * 100;
  const rounded = Math.abs(pct) < 10 ? pct.toFixed(1) : pct.toFixed(0);
  if (Number(rounded) === 0) return `no change ${was}`;
  return `${pct > 0 ? '▲ +' : '▼ '}${rounded}% ${was}`;
}

function setTile(id, cur, prev, label) {
  const tile = $(id);
  const value = tile.querySelector('.value');
  value.textContent = fmt.format(cur);
  value.dataset.value = String(cur);
  const change = tile.querySelector('.change');
  change.textContent = changeText(cur, prev, label);
  change.className = `change ${cur > prev ? 'up' : cur < prev ? 'down' : ''}`;
}

function fillTable(id, rows, empty) {
  const body = $(id).tBodies[0];
  const frag = document.createDocumentFragment();
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = 2;
    td.className = 'none';
    td.textContent = empty;
    tr.append(td);
    frag.append(tr);
  }
  for (const r of rows) {
    const tr = document.createElement('tr');
    const k = document.createElement('td');
    k.textContent = r.key;
    k.title = r.key;
    const n = document.createElement('td');
    n.className = 'num';
    n.textContent = fmt.format(r.count);
    tr.append(k, n);
    frag.append(tr);
  }
  body.replaceChildren(frag);
}

function chartSize() {
  const w = $('chart').clientWidth || 320;
  return { width: w, height: w < 500 ? 220 : 300 };
}

// The zone's offset from UTC at an instant (epoch ms), in minutes.
export function utcOffset(ms, zone) {
  const w = wallClock(ms, zone);
  const [y, mo, d] = w.day.split('-').map(Number);
  return Math.round((Date.UTC(y, mo - 1, d, Number(w.hour), Number(w.minute)) - Math.floor(ms / 60000) * 60000) / 60000);
}
// "UTC+2", "UTC+5:45", "UTC-2:30".
export function offsetText(minutes) {
  const a = Math.abs(minutes);
  return `UTC${minutes < 0 ? '-' : '+'}${Math.floor(a / 60)}${a % 60 ? `:${String(a % 60).padStart(2, '0')}` : ''}`;
}
// "+02:00": the offset as RFC 3339 writes it.
function offsetIso(minutes) {
  const a = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

// The points (epoch seconds) whose local wall-clock hour comes twice: where
// the clock goes back (Europe/Berlin's last Sunday of October: 02:00 at
// UTC+2, then 02:00 again at UTC+1), /stats/timeseries has a point for each.
// Their labels carry the offset to tell them apart.
export function repeatedHours(xs, zone) {
  const seen = new Map();
  for (const ts of xs) {
    const w = wallClock(ts * 1000, zone);
    const key = `${w.day} ${w.hour}:${w.minute}`;
    seen.set(key, [...(seen.get(key) || []), ts]);
  }
  return new Set([...seen.values()].filter((v) => v.length > 1).flat());
}

// An x-axis label: the local hour ("05:00"; "12-07 00:00" where a day
// begins; "02:00 (UTC+2)" for a repeated hour) or day ("12-07") in the
// site's zone.
function axisLabel(ts, hourly, zone, repeated) {
  const w = wallClock(ts * 1000, zone);
  if (!hourly) return w.day.slice(5);
  const hm = `${w.hour}:${w.minute}`;
  const label = hm === '00:00' ? `${w.day.slice(5)} 00:00` : hm;
  return repeated.has(ts) ? `${label} (${offsetText(utcOffset(ts * 1000, zone))})` : label;
}

// The hover readout: "2026-12-07 05:00" or "2026-12-07", in the site's zone;
// "2026-10-25 02:00 (UTC+2)" for a repeated hour.
function pointLabel(ts, hourly, zone, repeated) {
  if (ts == null) return '–';
  const w = wallClock(ts * 1000, zone);
  if (!hourly) return w.day;
  const label = `${w.day} ${w.hour}:${w.minute}`;
  return repeated.has(ts) ? `${label} (${offsetText(utcOffset(ts * 1000, zone))})` : label;
}

// Where the x axis has labels: on points (each the start of a local hour or
// day), every `step` hours of the local clock or every `step` days, as many
// as fit; so they read 00:00, 03:00… in any zone, DST and :45 offsets too.
// A repeated hour is labelled twice only when every hour is (its two labels
// would otherwise sit an hour apart, closer than the others).
function xSplits(xs, hourly, zone, width, repeated) {
  const room = Math.max(2, Math.floor(width / (hourly ? 56 : 64)));
  if (hourly) {
    // Every hour labelled, a repeated one's "02:00 (UTC+2)" needs 90 px.
    const fits = (s) => xs.length / s <= (s === 1 && repeated.size ? Math.floor(width / 90) : room);
    const step = [1, 2, 3, 4, 6, 12, 24].find(fits) || 24;
    const labelled = new Set();
    return xs.filter((ts) => {
      const w = wallClock(ts * 1000, zone);
      if (w.minute !== '00' || Number(w.hour) % step !== 0) return false;
      const key = `${w.day} ${w.hour}`;
      if (step > 1 && labelled.has(key)) return false;
      labelled.add(key);
      return true;
    });
  }
  const step = [1, 2, 3, 7, 14, 28, 56, 91, 182].find((s) => xs.length / s <= room) || 182;
  return xs.filter((_, i) => i % step === 0);
}

// The bucket label the Stats API v2 gives the same hour or day: its wall
// clock in the site's time zone.
function bucketLabel(start, hourly, zone) {
  const w = wallClock(Date.parse(start), zone);
  return hourly ? `${w.day} ${w.hour}:00:00` : w.day;
}

// The v2 hour buckets are local wall-clock hours, so a repeated hour is one
// bucket there: each of its two points gets its own visitors from a query
// over that hour's instants (`date_range` as datetimes with the offset).
async function repeatedVisitors(series, zone, filters) {
  if (series.interval !== 'hour') return new Map();
  const repeated = [...repeatedHours(series.points.map((p) => Date.parse(p.start) / 1000), zone)];
  const at = (ms, off) => `${new Date(ms + off * 60000).toISOString().slice(0, 19)}${offsetIso(off)}`;
  const counts = await Promise.all(repeated.map((ts) => {
    const off = utcOffset(ts * 1000, zone);
    return v2({ metrics: ['visitors'], date_range: [at(ts * 1000, off), at(ts * 1000 + 3599000, off)], filters })
      .then((r) => r.results[0]?.metrics[0] ?? 0);
  }));
  return new Map(repeated.map((ts, i) => [ts, counts[i]]));
}

function drawChart(series, visitors, zone, ownVisitors) {
  const hourly = series.interval === 'hour';
  const xs = series.points.map((p) => Date.parse(p.start) / 1000);
  const repeated = hourly ? repeatedHours(xs, zone) : new Set();
  const perBucket = new Map(visitors.results.map((r) => [r.dimensions[0], r.metrics[0]]));
  const data = [
    xs,
    series.points.map((p) => p.views),
    series.points.map((p) => p.unique_users),
    series.points.map((p, i) => (ownVisitors.has(xs[i]) ? ownVisitors.get(xs[i]) : perBucket.get(bucketLabel(p.start, hourly, zone)) || 0)),
  ];
  const el = $('chart');
  const totalViews = data[1].reduce((a, b) => a + b, 0);
  const visitorsLabel = state.filters.length ? 'Visitors (filtered)' : 'Visitors';
  el.setAttribute('aria-label', `${hourly ? 'Hourly' : 'Daily'} page views, unique users and ${visitorsLabel.toLowerCase()}, ${series.points.length} points, ${fmt.format(totalViews)} views in all`);
  el.dataset.visitors = data[3].join(',');
  el.dataset.zone = zone;
  delete el.dataset.ticks;
  if (chart) chart.destroy();
  chart = new uPlot({
    ...chartSize(),
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), zone === 'UTC' ? 'Etc/UTC' : zone),
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [
      // 24-hour labels on the site's local hours and days; the ones drawn
      // are kept in data-ticks (the canvas has no text to read).
      {
        stroke: '#333',
        grid: { stroke: '#e5e5e5' },
        splits: (u) => xSplits(xs, hourly, zone, u.width - 60, repeated),
        values: (u, splits) => {
          const labels = splits.map((ts) => axisLabel(ts, hourly, zone, repeated));
          el.dataset.ticks = labels.join('|');
          return labels;
        },
      },
      { stroke: '#333', grid: { stroke: '#e5e5e5' }, size: 56, values: (u, vals) => vals.map((v) => fmt.format(v)) },
    ],
    series: [
      { label: `${hourly ? 'Hour' : 'Day'} (${zone})`, value: (u, ts) => pointLabel(ts, hourly, zone, repeated) },
      { label: 'Views', stroke: '#1f5fbf', width: 2, fill: 'rgba(31,95,191,0.08)', points: { show: xs.length <= 60 } },
      { label: 'Unique users', stroke: '#b3361d', width: 2, dash: [6, 4], points: { show: xs.length <= 60 } },
      { label: visitorsLabel, stroke: '#1d6b2f', width: 2, dash: [2, 3], points: { show: xs.length <= 60 } },
    ],
  }, data, el);
}

// ---- the Stats API v2: visit tiles, the Visitors line, panels, filters ----

const v2 = (body) => api('/api/v2/query', {}, { site_id: state.site, date_range: dateRange, ...body });
const v2Filters = (extra = []) => [...state.filters.map((f) => ['is', f.dim, [f.value]]), ...extra];
const filterText = (f) => `${DIMENSIONS[f.dim].label} is ${valueLabel(f.dim, f.value)}`;

function setValue(id, value, text) {
  const el = $(id).querySelector('.value');
  el.textContent = text;
  el.dataset.value = String(value);
}

function setVisitTiles(res) {
  const m = Object.fromEntries(TILE_METRICS.map((k, i) => [k, res.results[0]?.metrics[i] ?? 0]));
  setValue('tile-visitors', m.visitors, fmt.format(m.visitors));
  setValue('tile-visits', m.visits, fmt.format(m.visits));
  setValue('tile-pageviews', m.pageviews, fmt.format(m.pageviews));
  setValue('tile-views-per-visit', m.views_per_visit, fmt2.format(m.views_per_visit));
  setValue('tile-bounce-rate', m.bounce_rate, `${fmt.format(m.bounce_rate)}%`);
  setValue('tile-visit-duration', m.visit_duration, formatDuration(m.visit_duration));
}

function panelQuery(panel) {
  const dim = panelTab[panel.id];
  return v2({
    metrics: ['visitors', 'percentage'],
    dimensions: [dim],
    filters: v2Filters(NON_EMPTY.has(dim) ? [['is_not', dim, ['']]] : []),
    order_by: [['visitors', 'desc']],
    pagination: { limit: PANEL_ROWS, offset: 0 },
    include: { total_rows: true },
  });
}

// ---- goals, funnels and downloads ----

let siteGoals = [];
let funnelChoice = '';
const goalsQuery = () => ({ metrics: goalMetrics(siteGoals), dimensions: ['event:goal'], filters: v2Filters(), order_by: [['visitors', 'desc']] });
// A panel's whole answer (every row) for a download.
const panelExport = (dim) => ({
  metrics: ['visitors', 'visits', 'pageviews', 'percentage'],
  dimensions: [dim],
  filters: v2Filters(NON_EMPTY.has(dim) ? [['is_not', dim, ['']]] : []),
  order_by: [['visitors', 'desc']],
});
const csvOf = (body) => fetchCsv({ site_id: state.site, date_range: dateRange, ...body }, toLogin);
const fileStem = () => fileSafe(`${state.site}_${dateRange[0]}_${dateRange[1]}`);

async function loadConversions(gen) {
  try {
    const site = state.site;
    const [{ goals }, { funnels }] = await Promise.all([api('/api/v2/goals', { site_id: site }), api('/api/v2/funnels', { site_id: site })]);
    if (gen !== generation) return;
    siteGoals = goals;
    const res = goals.length ? await v2(goalsQuery()) : null;
    if (gen !== generation) return;
    renderGoals($('goals'), goals, res);
    funnelChoice = fillFunnels($('funnel-select'), funnels, funnelChoice);
    $('funnel-none').hidden = funnels.length > 0;
    await loadFunnel(gen);
  } catch (e) {
    if (gen !== generation || e instanceof LoggedOut) return;
    showError(`Could not load goals and funnels: ${e.message}`);
  }
}

async function loadFunnel(gen) {
  const list = $('funnel-steps');
  if (!funnelChoice) {
    list.replaceChildren();
    delete list.dataset.funnel;
    return;
  }
  const res = await api('/api/v2/funnel', {}, { site_id: state.site, date_range: dateRange, filters: v2Filters(), funnel: funnelChoice });
  if (gen !== generation) return;
  renderFunnel(list, res);
  list.dataset.funnel = funnelChoice;
}

async function downloading(button, work) {
  button.disabled = true;
  try {
    await work();
  } catch (e) {
    if (!(e instanceof LoggedOut)) showError(`Could not download: ${e.message}`);
  } finally {
    button.disabled = false;
  }
}

function downloadPanel(panel) {
  const dim = panelTab[panel.id];
  const button = $(`panel-${panel.id}`).querySelector('button.download');
  return downloading(button, async () => {
    const text = await csvOf(panelExport(dim));
    save(`${fileStem()}_${DIMENSIONS[dim].key}.csv`, csvBlob(text));
  });
}

function downloadGoals() {
  return downloading($('goals').querySelector('button.download'), async () => {
    save(`${fileStem()}_goals.csv`, csvBlob(await csvOf(goalsQuery())));
  });
}

// The whole site for the period and filters: every panel tab, the goals,
// and the visit tiles by day, one CSV each, in one zip.
function downloadAll() {
  return downloading($('download-all'), async () => {
    const wanted = PANELS.flatMap((p) => p.tabs.map(([dim]) => [`${DIMENSIONS[dim].key}.csv`, panelExport(dim)]));
    wanted.push(['days.csv', { metrics: TILE_METRICS, dimensions: ['time:day'], filters: v2Filters() }]);
    if (siteGoals.length) wanted.push(['goals.csv', goalsQuery()]);
    const texts = await Promise.all(wanted.map(([, body]) => csvOf(body)));
    save(`${fileStem()}.zip`, zipBlob(wanted.map(([name], i) => [name, texts[i]])));
  });
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function buildPanels() {
  const root = $('panels');
  for (const panel of PANELS) {
    const section = el('section', { class: 'card panel', id: `panel-${panel.id}`, 'aria-labelledby': `${panel.id}-title`, 'data-dim': panelTab[panel.id] });
    const head = el('div', { class: 'panel-head' }, el('h2', { id: `${panel.id}-title`, text: panel.title }));
    if (panel.tabs.length > 1) {
      const tabs = el('div', { class: 'tabs', role: 'group', 'aria-label': `${panel.title}: show by` });
      for (const [dim, label, view = 'list'] of panel.tabs) {
        const b = el('button', { type: 'button', class: 'tab', ...(view === 'list' ? { 'data-dim': dim } : {}), 'data-view': view, text: label });
        b.addEventListener('click', () => switchTab(panel, dim, view));
        tabs.append(b);
      }
      head.append(tabs);
    }
    const download = el('button', { type: 'button', class: 'download', 'data-panel': panel.id, title: `Download ${panel.title.toLowerCase()} as CSV`, text: 'CSV' });
    download.addEventListener('click', () => downloadPanel(panel));
    head.append(download);
    const table = el('table', { class: 'top' },
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: DIMENSIONS[panelTab[panel.id]].label }), el('th', { scope: 'col', class: 'num', text: 'Visitors' }))),
      el('tbody'));
    table.addEventListener('click', (e) => {
      const b = e.target.closest('button.row-filter');
      if (b) addFilter(b.dataset.dim, b.dataset.value);
    });
    section.append(head, table, el('p', { class: 'more', hidden: '' }));
    if (panel.tabs.some((t) => t[2] === 'map')) section.append(el('div', { class: 'map', hidden: '' }));
    root.append(section);
    pressTabs(panel);
  }
}

function pressTabs(panel) {
  const section = $(`panel-${panel.id}`);
  const view = panelView[panel.id];
  section.dataset.view = view;
  for (const b of section.querySelectorAll('.tab')) {
    b.setAttribute('aria-pressed', String(b.dataset.view === view && (view === 'map' || b.dataset.dim === panelTab[panel.id])));
  }
  const map = section.querySelector('.map');
  if (map) map.hidden = view !== 'map';
  section.querySelector('table').hidden = view === 'map';
}

// Every country's visitors (the map needs them all, not the top 10).
const mapQuery = (dim) => v2({ metrics: ['visitors'], dimensions: [dim], filters: v2Filters(), order_by: [['visitors', 'desc']] });

function renderMap(panel, dim, res) {
  const section = $(`panel-${panel.id}`);
  const box = section.querySelector('.map');
  if (!panelMaps[panel.id]) {
    panelMaps[panel.id] = createMap(box, {
      name: countryName,
      flag,
      onPick: (code) => addFilter(dim, code),
      idle: 'No visitors in this period',
    });
  }
  panelMaps[panel.id](res.results.map((r) => [r.dimensions[0], r.metrics[0]]));
  box.dataset.loaded = 'true';
}

function renderPanel(panel, dim, res) {
  const section = $(`panel-${panel.id}`);
  section.dataset.dim = dim;
  section.querySelector('thead th').textContent = DIMENSIONS[dim].label;
  pressTabs(panel);
  const rows = res.results.map((r) => {
    const [value] = r.dimensions;
    const [visitors, pct] = r.metrics;
    const label = valueLabel(dim, value);
    const button = el('button', { type: 'button', class: 'row-filter', 'data-dim': dim, 'data-value': value, title: `Filter: ${DIMENSIONS[dim].label} is ${label}` });
    if (dim === 'visit:country' && flag(value)) button.append(el('span', { class: 'flag', 'aria-hidden': 'true', text: flag(value) }));
    button.append(label);
    const bar = el('span', { class: 'bar', 'aria-hidden': 'true' });
    bar.style.width = `${Math.min(100, Math.max(0, pct))}%`;
    const tr = el('tr', { 'data-value': value },
      el('td', { class: 'label' }, bar, button),
      el('td', { class: 'num', title: `${pct}% of visitors`, text: fmt.format(visitors) }));
    tr.dataset.visitors = String(visitors);
    return tr;
  });
  if (rows.length === 0) {
    rows.push(el('tr', {}, el('td', { colspan: '2', class: 'none', text: NON_EMPTY.has(dim) ? 'No campaign visits in this period' : 'No visitors in this period' })));
  }
  section.querySelector('tbody').replaceChildren(...rows);
  const total = res.meta?.total_rows ?? res.results.length;
  const more = section.querySelector('.more');
  more.textContent = total > res.results.length && panelView[panel.id] === 'list' ? `Top ${res.results.length} of ${fmt.format(total)}` : '';
  more.hidden = !more.textContent;
}

async function switchTab(panel, dim, view = 'list') {
  panelTab[panel.id] = dim;
  panelView[panel.id] = view;
  const gen = (panelGeneration[panel.id] = (panelGeneration[panel.id] || 0) + 1);
  pressTabs(panel);
  if (!dateRange || !state.site) return;
  try {
    const [res, map] = await Promise.all([panelQuery(panel), view === 'map' ? mapQuery(dim) : null]);
    if (gen !== panelGeneration[panel.id] || dim !== panelTab[panel.id] || view !== panelView[panel.id]) return;
    renderPanel(panel, dim, res);
    if (map) renderMap(panel, dim, map);
  } catch (e) {
    if (e instanceof LoggedOut) return;
    showError(`Could not load ${panel.title.toLowerCase()}: ${e.message}`);
  }
}

function renderFilters() {
  const chips = state.filters.map((f) => {
    const remove = el('button', { type: 'button', class: 'chip-remove', 'data-dim': f.dim, 'aria-label': `Remove filter: ${filterText(f)}`, text: '×' });
    return el('li', { class: 'chip', 'data-dim': f.dim, 'data-value': f.value },
      el('span', { text: `${DIMENSIONS[f.dim].label} is ` }), el('strong', { text: valueLabel(f.dim, f.value) }), remove);
  });
  $('chips').replaceChildren(...chips);
  $('filters').hidden = chips.length === 0;
  $('clear-filters').hidden = chips.length < 2;
}

// A click on a row: filter by its value (replacing a filter on the same dimension).
function addFilter(dim, value) {
  const i = state.filters.findIndex((f) => f.dim === dim);
  if (i >= 0 && state.filters[i].value === value) return;
  if (i >= 0) state.filters[i] = { dim, value };
  else state.filters.push({ dim, value });
  writeUrl(state, true);
  load();
}

function removeFilter(dim) {
  const i = state.filters.findIndex((f) => f.dim === dim);
  if (i < 0) return;
  state.filters.splice(i, 1);
  writeUrl(state, true);
  load();
  // Keep keyboard focus in the filter bar while it has chips.
  const next = $('chips').querySelectorAll('.chip-remove')[Math.min(i, state.filters.length - 1)];
  if (next) next.focus();
  else $('main').focus();
}

async function loadSites() {
  const { sites, timezones } = await api('/sites', {});
  siteZones = timezones || {};
  const select = $('site');
  select.replaceChildren(...sites.map((s) => new Option(s, s)));
  if (state.site && !sites.includes(state.site)) {
    // A shared link to a site with no data yet still shows it.
    select.append(new Option(state.site, state.site));
  }
  if (!state.site) state.site = sites[0] || '';
  select.value = state.site;
  return sites;
}

// "Today: 2026-12-07 (Asia/Kathmandu)": the site's local dates, and its zone.
function periodLabel(range, zone) {
  const name = PERIODS[state.period];
  const span = range.from === range.to ? range.from : `${range.from} to ${range.to}`;
  return `${name}: ${span} (${zone})`;
}

async function load() {
  const gen = ++generation;
  const zone = siteZone();
  const range = resolvePeriod(state.period, state.from, state.to, localToday(zone));
  if (state.period === 'custom') Object.assign(state, range);
  $('period').value = state.period;
  $('custom').hidden = state.period !== 'custom';
  $('from').value = range.from;
  $('to').value = range.to;
  $('period-title').textContent = periodLabel(range, zone);
  $('custom-zone').textContent = zone;
  writeUrl(state, false);
  renderFilters();
  if (!state.site) return;
  const q = { site_id: state.site, from: range.from, to: range.to };
  const days = Math.round((Date.parse(range.to) - Date.parse(range.from)) / 86400000) + 1;
  // The same days as /stats: the chart's buckets are hours up to two days.
  dateRange = [range.from, range.to];
  const filters = v2Filters();
  const tabs = PANELS.map((p) => panelTab[p.id]);
  const views = PANELS.map((p) => panelView[p.id]);
  // A tab's answer still in flight is for the old filters: drop it.
  for (const p of PANELS) panelGeneration[p.id] = (panelGeneration[p.id] || 0) + 1;
  $('status').textContent = 'Loading…';
  try {
    const [stats, series, paths, types, visits, visitors, maps, ...panels] = await Promise.all([
      api('/stats', { ...q, limit: 1, compare: 'previous' }),
      api('/stats/timeseries', q),
      api('/stats/breakdown', { ...q, by: 'path', limit: PATH_ROWS }),
      api('/stats/breakdown', { ...q, by: 'event_type', limit: 100 }),
      v2({ metrics: TILE_METRICS, filters }),
      v2({ metrics: ['visitors'], dimensions: [days <= 2 ? 'time:hour' : 'time:day'], filters }),
      Promise.all(PANELS.map((p, i) => (views[i] === 'map' ? mapQuery(tabs[i]) : null))),
      ...PANELS.map(panelQuery),
    ]);
    if (gen !== generation) return;
    const ownVisitors = await repeatedVisitors(series, zone, filters);
    if (gen !== generation) return;
    const label = days === 1 ? 'previous day' : `previous ${days} days`;
    setTile('tile-views', stats.total_views, stats.previous.total_views, label);
    setTile('tile-users', stats.unique_users, stats.previous.unique_users, label);
    setTile('tile-events', stats.total_events, stats.previous.total_events, label);
    setVisitTiles(visits);
    drawChart(series, visitors, zone, ownVisitors);
    PANELS.forEach((p, i) => {
      if (panelTab[p.id] !== tabs[i]) return;
      renderPanel(p, tabs[i], panels[i]);
      if (maps[i] && panelView[p.id] === 'map') renderMap(p, tabs[i], maps[i]);
    });
    fillTable('paths', paths.rows, 'No page views in this period');
    fillTable('types', types.rows, 'No events in this period');
    showError('');
    await loadConversions(gen);
    if (gen !== generation) return;
    const filtered = state.filters.length ? `, filtered by ${state.filters.map(filterText).join(' and ')}` : '';
    $('status').textContent = `Showing ${state.site}, ${periodLabel(range, zone)}${filtered}`;
  } catch (e) {
    if (gen !== generation || e instanceof LoggedOut) return;
    $('status').textContent = '';
    showError(`Could not load the numbers: ${e.message}`);
  }
}

async function pollLive() {
  const site = state.site;
  if (!site) return;
  try {
    const live = await api('/stats/live', { site_id: site });
    if (site !== state.site) return;
    const el = $('live-count');
    el.textContent = fmt.format(live.events);
    el.dataset.value = String(live.events);
    $('live-updated').textContent = `(at ${new Date().toISOString().slice(11, 19)} UTC)`;
  } catch (e) {
    if (e instanceof LoggedOut) return;
    $('live-updated').textContent = '(not updating: retrying)';
  }
}

function startLive() {
  clearInterval(liveTimer);
  pollLive();
  liveTimer = setInterval(pollLive, LIVE_POLL_MS);
}

function bind() {
  $('site').addEventListener('change', (e) => {
    state.site = e.target.value;
    // Filters name one site's values (its pages, its sources): start afresh.
    state.filters = [];
    writeUrl(state, true);
    $('live-count').textContent = '–';
    load();
    startLive();
  });
  $('period').addEventListener('change', (e) => {
    state.period = e.target.value;
    if (state.period === 'custom') {
      // Start the custom range from what was on screen.
      state.from = $('from').value;
      state.to = $('to').value;
    }
    writeUrl(state, true);
    load();
  });
  $('controls').addEventListener('submit', (e) => {
    e.preventDefault();
    const from = $('from').value;
    const to = $('to').value;
    if (!from || !to || from > to) {
      showError('Choose a start day on or before the end day.');
      return;
    }
    Object.assign(state, { period: 'custom', from, to });
    writeUrl(state, true);
    load();
  });
  $('goals').addEventListener('click', (e) => {
    const b = e.target.closest('button.row-filter');
    if (b) addFilter(b.dataset.dim, b.dataset.value);
  });
  $('goals').querySelector('button.download').addEventListener('click', downloadGoals);
  $('download-all').addEventListener('click', downloadAll);
  $('funnel-select').addEventListener('change', (e) => {
    funnelChoice = e.target.value;
    const gen = generation;
    loadFunnel(gen).catch((err) => { if (!(err instanceof LoggedOut)) showError(`Could not load the funnel: ${err.message}`); });
  });
  $('chips').addEventListener('click', (e) => {
    const b = e.target.closest('button.chip-remove');
    if (b) removeFilter(b.dataset.dim);
  });
  $('clear-filters').addEventListener('click', () => {
    state.filters = [];
    writeUrl(state, true);
    load();
    $('main').focus();
  });
  window.addEventListener('popstate', () => {
    state = readUrl();
    $('site').value = state.site;
    load();
    startLive();
  });
  let resizeFrame = 0;
  new ResizeObserver(() => {
    cancelAnimationFrame(resizeFrame);
    resizeFrame = requestAnimationFrame(() => chart && chart.setSize(chartSize()));
  }).observe($('chart'));
  document.querySelectorAll('.origin').forEach((el) => { el.textContent = location.origin; });
}

// A session gets a Log out button; a shared link a banner naming its one
// site (and no Log out: the link is the credential, and it stays valid).
function showAccess(kind, sites) {
  $('logout').hidden = kind !== 'key';
  const banner = $('shared');
  banner.hidden = kind !== 'link';
  if (kind === 'link') {
    banner.textContent = `Shared view of ${sites.length === 1 ? sites[0] : state.site} (read-only)`;
  }
}

async function main() {
  buildPanels();
  bind();
  try {
    const sites = await loadSites();
    showAccess(await accessKind(), sites);
    const empty = sites.length === 0 && !state.site;
    $('empty').hidden = !empty;
    $('content').hidden = empty;
    $('controls').hidden = empty;
    if (empty) {
      $('status').textContent = 'No sites have sent events yet.';
      return;
    }
  } catch (e) {
    if (e instanceof LoggedOut) return;
    showError(`Could not load the list of sites: ${e.message}`);
    return;
  }
  await load();
  startLive();
}

main();
