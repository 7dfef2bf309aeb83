// Browser test of the dashboard: seeds known events into the real api binary
// (embedded mode, a temp SQLite file, free ports), opens the page in headless
// Chromium at 1280 px and 375 px, and checks that what is on screen equals
// both the API's answers and the truth computed here from the seeded events.
// Any browser console error fails the test.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BIN = process.env.ANALYTICS_API_BIN;
const SHOTS = process.env.SCREENSHOT_DIR || 'target/dashboard-screenshots';
mkdirSync(SHOTS, { recursive: true });

const freePort = () => new Promise((resolve) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const isoDay = (d) => d.toISOString().slice(0, 10);
const addDays = (day, n) => { const d = new Date(`${day}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + n); return isoDay(d); };

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

function truth(site, from, to) {
  const sel = events.filter((e) => e.site_id === site && e.timestamp.slice(0, 10) >= from && e.timestamp.slice(0, 10) <= to);
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

// ---- the api ----
const dir = mkdtempSync(join(tmpdir(), 'dashboard-test-'));
const [http, metrics] = [await freePort(), await freePort()];
const log = openSync(join(SHOTS, 'analytics-api.log'), 'w');
const api = spawn(BIN, [], {
  env: { PATH: process.env.PATH, RUST_LOG: 'warn', DATABASE_URL: `sqlite://${join(dir, 'a.db')}?mode=rwc`, HTTP_ADDR: `127.0.0.1:${http}`, METRICS_ADDR: `127.0.0.1:${metrics}` },
  stdio: ['ignore', log, log],
});
const base = `http://127.0.0.1:${http}`;
let browser;
const cleanup = () => { api.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); };

async function getJson(path) {
  const r = await fetch(`${base}${path}`);
  assert.equal(r.status, 200, path);
  return r.json();
}
async function post(body) {
  const r = await fetch(`${base}/events/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(r.status, 202, await r.text());
}

const consoleErrors = [];
function watch(page, label) {
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${label}: ${m.text()}`); });
  page.on('pageerror', (e) => consoleErrors.push(`${label}: ${e.message}`));
  page.on('requestfailed', (r) => consoleErrors.push(`${label}: request failed ${r.url()}`));
}

const num = async (page, sel) => Number((await page.locator(sel).innerText()).replace(/,/g, ''));

// Waits until the tiles show the period in the URL (no request in flight).
async function settled(page) {
  await page.waitForFunction(() => {
    const s = document.getElementById('status').textContent;
    return s.startsWith('Showing') && document.querySelector('#tile-views .value').dataset.value !== undefined;
  }, null, { timeout: 10000 });
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

async function checkScreen(page, site, from, to, label) {
  await settled(page);
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('site'), site, `${label}: site in URL`);
  const t = truth(site, from, to);
  const apiStats = await getJson(`/stats?site_id=${site}&from=${from}&to=${to}&compare=previous`);
  const shown = {
    views: await num(page, '#tile-views .value'),
    users: await num(page, '#tile-users .value'),
    events: await num(page, '#tile-events .value'),
  };
  assert.deepEqual(shown, { views: t.views, users: t.users, events: t.events }, `${label}: tiles vs truth`);
  assert.deepEqual(shown, { views: apiStats.total_views, users: apiStats.unique_users, events: apiStats.total_events }, `${label}: tiles vs API`);
  // The change figure names the previous period's value.
  const prev = truth(site, apiStats.previous.from, apiStats.previous.to);
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
  const series = await getJson(`/stats/timeseries?site_id=${site}&from=${from}&to=${to}`);
  const days = (Date.parse(to) - Date.parse(from)) / 86400000 + 1;
  assert.equal(series.points.length, days <= 2 ? days * 24 : days, `${label}: series length`);
  assert.equal(series.points.reduce((a, p) => a + p.views, 0), t.views, `${label}: series views`);
  const contrast = await contrastFailures(page);
  assert.ok(contrast.checked >= 20, `${label}: only ${contrast.checked} text elements found for the contrast check`);
  assert.deepEqual(contrast.failures, [], `${label}: text below WCAG AA contrast`);
  console.log(`ok ${label}: ${JSON.stringify(shown)}, ${rows.length} path rows`);
}

try {
  const deadline = Date.now() + 30000;
  for (;;) {
    try { if ((await fetch(`http://127.0.0.1:${metrics}/readyz`)).ok) break; } catch { /* not up yet */ }
    assert.ok(Date.now() < deadline, 'api not ready in 30 s');
    await sleep(100);
  }
  for (let i = 0; i < events.length; i += 500) await post(events.slice(i, i + 500));
  console.log(`seeded ${events.length} events`);

  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });

  // ---- 1280 px ----
  const wide = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  watch(wide, '1280');
  await wide.goto(`${base}/`);
  // The first site in byte order, today, by default.
  await checkScreen(wide, 'alpha', today, today, '1280 alpha today');
  assert.deepEqual(await wide.locator('#site option').allTextContents(), ['alpha', 'beta', 'gamma']);
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
  watch(narrow, '375');
  await narrow.goto(`${base}/?site=alpha&period=today`);
  await checkScreen(narrow, 'alpha', today, today, '375 alpha today');
  const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= 375, `page is ${overflow} px wide at 375 px`);
  await narrow.screenshot({ path: join(SHOTS, '375-alpha-today.png'), fullPage: true });
  await narrow.selectOption('#site', 'beta');
  await narrow.selectOption('#period', '7d');
  await checkScreen(narrow, 'beta', addDays(today, -6), today, '375 beta 7d');
  assert.ok((await narrow.evaluate(() => document.documentElement.scrollWidth)) <= 375);
  await narrow.screenshot({ path: join(SHOTS, '375-beta-7d.png'), fullPage: true });

  assert.deepEqual(consoleErrors, [], 'browser console errors');
  console.log(`dashboard browser test passed; screenshots in ${SHOTS}`);
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  cleanup();
}
