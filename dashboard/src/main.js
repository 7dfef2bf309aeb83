// The dashboard: reads the public stats API and keeps its state (site,
// period) in the URL so a view can be shared or reloaded. Where reads need a
// key, any 401 sends the browser to the api's /login page.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';

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
const $ = (id) => document.getElementById(id);

// Days are UTC dates everywhere in the platform.
const isoDay = (d) => d.toISOString().slice(0, 10);
function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return isoDay(d);
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
  return { site: p.get('site') || '', period, from: p.get('from') || '', to: p.get('to') || '' };
}

function writeUrl(state, push) {
  const p = new URLSearchParams();
  if (state.site) p.set('site', state.site);
  p.set('period', state.period);
  if (state.period === 'custom') {
    p.set('from', state.from);
    p.set('to', state.to);
  }
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

async function api(path, params) {
  if (leaving) throw new LoggedOut('going to /login');
  const r = await fetch(`${path}?${new URLSearchParams(params)}`, { headers: { accept: 'application/json' } });
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

function axisLabel(ts, hourly) {
  const iso = new Date(ts * 1000).toISOString();
  if (!hourly) return iso.slice(5, 10);
  return iso.slice(11, 13) === '00' ? `${iso.slice(5, 10)} 00:00` : iso.slice(11, 16);
}

function drawChart(series) {
  const hourly = series.interval === 'hour';
  const xs = series.points.map((p) => Date.parse(p.start) / 1000);
  const data = [xs, series.points.map((p) => p.views), series.points.map((p) => p.unique_users)];
  const el = $('chart');
  const totalViews = data[1].reduce((a, b) => a + b, 0);
  el.setAttribute('aria-label', `${hourly ? 'Hourly' : 'Daily'} page views and unique users, ${series.points.length} points, ${fmt.format(totalViews)} views in all`);
  if (chart) chart.destroy();
  chart = new uPlot({
    ...chartSize(),
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [
      // 24-hour UTC labels: the platform's days are UTC dates.
      { stroke: '#333', grid: { stroke: '#e5e5e5' }, values: (u, splits) => splits.map((ts) => axisLabel(ts, hourly)) },
      { stroke: '#333', grid: { stroke: '#e5e5e5' }, size: 56, values: (u, vals) => vals.map((v) => fmt.format(v)) },
    ],
    series: [
      { label: hourly ? 'Hour (UTC)' : 'Day (UTC)', value: hourly ? '{YYYY}-{MM}-{DD} {HH}:00' : '{YYYY}-{MM}-{DD}' },
      { label: 'Views', stroke: '#1f5fbf', width: 2, fill: 'rgba(31,95,191,0.08)', points: { show: xs.length <= 60 } },
      { label: 'Unique users', stroke: '#b3361d', width: 2, dash: [6, 4], points: { show: xs.length <= 60 } },
    ],
  }, data, el);
}

async function loadSites() {
  const { sites } = await api('/sites', {});
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

function periodLabel(range) {
  const name = PERIODS[state.period];
  const span = range.from === range.to ? range.from : `${range.from} to ${range.to}`;
  return `${name}: ${span} (UTC)`;
}

async function load() {
  const gen = ++generation;
  const today = isoDay(new Date());
  const range = resolvePeriod(state.period, state.from, state.to, today);
  if (state.period === 'custom') Object.assign(state, range);
  $('period').value = state.period;
  $('custom').hidden = state.period !== 'custom';
  $('from').value = range.from;
  $('to').value = range.to;
  $('period-title').textContent = periodLabel(range);
  writeUrl(state, false);
  if (!state.site) return;
  const q = { site_id: state.site, from: range.from, to: range.to };
  $('status').textContent = 'Loading…';
  try {
    const [stats, series, paths, types] = await Promise.all([
      api('/stats', { ...q, limit: 1, compare: 'previous' }),
      api('/stats/timeseries', q),
      api('/stats/breakdown', { ...q, by: 'path', limit: PATH_ROWS }),
      api('/stats/breakdown', { ...q, by: 'event_type', limit: 100 }),
    ]);
    if (gen !== generation) return;
    const days = Math.round((Date.parse(range.to) - Date.parse(range.from)) / 86400000) + 1;
    const label = days === 1 ? 'previous day' : `previous ${days} days`;
    setTile('tile-views', stats.total_views, stats.previous.total_views, label);
    setTile('tile-users', stats.unique_users, stats.previous.unique_users, label);
    setTile('tile-events', stats.total_events, stats.previous.total_events, label);
    drawChart(series);
    fillTable('paths', paths.rows, 'No page views in this period');
    fillTable('types', types.rows, 'No events in this period');
    showError('');
    $('status').textContent = `Showing ${state.site}, ${periodLabel(range)}`;
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
