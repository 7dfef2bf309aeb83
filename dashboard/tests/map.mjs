// Browser test of the Locations panel's world map and of the hour that
// repeats when the clock goes back. The real api binary in embedded mode (a
// temp SQLite file, free ports, countries from CF-IPCountry), headless
// Chromium:
// - site `world`: visitors from countries with differing counts, one too
//   small for the map (Singapore) and one of unknown country. The Map tab
//   draws one shaded shape per country with visitors, more visitors darker,
//   each titled with its name and visitors as POST /api/v2/query answers;
//   hovering shows them; a click (and Enter) adds the country filter (chip,
//   URL) and the tiles follow the API. At 375 px the page does not scroll
//   sideways.
// - site `berlin` (Europe/Berlin): events either side of the last October
//   change before today, both in the local 02:00 that comes twice. The two
//   points' hover readouts differ (UTC+2, UTC+1) and their views, unique
//   users and visitors equal /stats/timeseries, the API (a datetime range
//   per pass) and the truth computed here.
// Any console error or Content-Security-Policy violation fails the test.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
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
const yesterday = isoDay(new Date(Date.now() - 86_400_000));
const regionName = new Intl.DisplayNames(['en'], { type: 'region' });
const visitorsText = (n) => `${n.toLocaleString('en-US')} visitor${n === 1 ? '' : 's'}`;

// ---- site world: visitors per country ('' = no country header) ----
const COUNTRIES = { US: 5, DE: 3, FR: 2, BR: 1, JP: 1, SG: 2, '': 1 };
const worldEvents = [];
let n = 0;
for (const [country, visitors] of Object.entries(COUNTRIES)) {
  for (let i = 0; i < visitors; i++, n++) {
    worldEvents.push({ site_id: 'world', event_type: 'page_view', path: '/', user_id: `w${n}`, timestamp: `${yesterday}T${String(n % 24).padStart(2, '0')}:00:00Z`, country });
  }
}

// ---- site berlin: the day the clock goes back ----
const BERLIN = 'Europe/Berlin';
const wallFormat = new Intl.DateTimeFormat('en-US', { timeZone: BERLIN, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const wall = (ms) => {
  const p = Object.fromEntries(wallFormat.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { day: `${p.year}-${p.month}-${p.day}`, hm: `${p.hour}:${p.minute}` };
};
// The latest Berlin day before today with 25 hours: the October change.
function fallBackDay() {
  for (let t = Date.now() - 2 * 86_400_000; t > Date.now() - 400 * 86_400_000; t -= 86_400_000) {
    const d = isoDay(new Date(t));
    const starts = [];
    for (let s = Date.parse(`${d}T00:00:00Z`) - 6 * 3_600_000; s < Date.parse(`${d}T00:00:00Z`) + 30 * 3_600_000; s += 3_600_000) {
      if (wall(s).day === d) starts.push(s);
    }
    if (starts.length === 25) return { day: d, starts };
  }
  throw new Error('no October change in the last 400 days');
}
const dst = fallBackDay();
// The two starts of the repeated local hour (02:00 at UTC+2, then at UTC+1).
const twice = dst.starts.filter((s) => dst.starts.filter((x) => wall(x).hm === wall(s).hm).length === 2);
assert.equal(twice.length, 2, `one repeated hour on ${dst.day}`);
assert.deepEqual(twice.map((s) => wall(s).hm), ['02:00', '02:00']);
const at = (ms, minutes) => new Date(ms + minutes * 60_000).toISOString().replace('.000Z', 'Z');
// [user, instant]: b1 and b2 in the first 02:00, b1 (again), b3, b4 in the
// second, b5 at 01:30 and b6 at 03:10 (local).
const berlinEvents = [
  ['b1', at(twice[0], 10)], ['b2', at(twice[0], 25)],
  ['b1', at(twice[1], 5)], ['b3', at(twice[1], 20)], ['b4', at(twice[1], 50)], ['b4', at(twice[1], 55)],
  ['b5', at(twice[0], -30)], ['b6', at(twice[1], 70)],
].map(([user, timestamp]) => ({ site_id: 'berlin', event_type: 'page_view', path: '/', user_id: user, timestamp }));
// Per pass: [views, unique users] among the events in [start, start + 1 h).
const passTruth = twice.map((s) => {
  const sel = berlinEvents.filter((e) => Date.parse(e.timestamp) >= s && Date.parse(e.timestamp) < s + 3_600_000);
  return { views: sel.length, users: new Set(sel.map((e) => e.user_id)).size };
});
assert.deepEqual(passTruth, [{ views: 2, users: 2 }, { views: 4, users: 3 }], 'the seed');

// ---- the api ----
const dir = mkdtempSync(join(tmpdir(), 'map-test-'));
const [http, metrics] = [await freePort(), await freePort()];
const log = openSync(join(SHOTS, 'analytics-api-map.log'), 'w');
const api = spawn(BIN, [], {
  env: { PATH: process.env.PATH, RUST_LOG: 'warn', DATABASE_URL: `sqlite://${join(dir, 'm.db')}?mode=rwc`, HTTP_ADDR: `127.0.0.1:${http}`, METRICS_ADDR: `127.0.0.1:${metrics}`, TRUST_CDN_COUNTRY: 'true' },
  stdio: ['ignore', log, log],
});
const base = `http://127.0.0.1:${http}`;
let browser;
const cleanup = () => { api.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); };

async function send(method, path, body, headers = {}) {
  const r = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json', accept: 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const query = (site, body) => send('POST', '/api/v2/query', { site_id: site, ...body });

async function waitReady() {
  const deadline = Date.now() + 30000;
  for (;;) {
    try { if ((await fetch(`http://127.0.0.1:${metrics}/readyz`)).ok) return; } catch { /* not up yet */ }
    assert.ok(Date.now() < deadline, 'api not ready in 30 s');
    await sleep(100);
  }
}

const problems = [];
async function watch(page, label) {
  page.on('console', (m) => { if (m.type() === 'error' || /Content Security Policy|Refused to/.test(m.text())) problems.push(`${label}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`${label}: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`${label}: request failed ${r.url()}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`Refused by Content Security Policy: ${e.effectiveDirective} ${e.blockedURI}`));
  });
}

// Waits until the page has loaded the URL's site, period and filters.
async function settled(page) {
  await page.waitForFunction(() => {
    const s = document.getElementById('status').textContent;
    const chips = [...document.querySelectorAll('#chips .chip')].map((li) => li.textContent.replace('×', '').trim());
    return s.startsWith('Showing') && (chips.length ? s.endsWith(`filtered by ${chips.join(' and ')}`) : !s.includes('filtered'))
      && document.getElementById('chart').dataset.ticks !== undefined;
  }, null, { timeout: 10000 });
}

// The map's countries as drawn: code -> { visitors, fill, title }.
const drawn = (page) => page.locator('#panel-locations path.country[data-visitors]').evaluateAll((ps) => Object.fromEntries(ps.map((p) => [p.dataset.code, {
  visitors: Number(p.dataset.visitors), fill: p.getAttribute('fill'), title: p.querySelector('title')?.textContent,
}])));
const offMap = (page) => page.locator('#panel-locations .off-map button').evaluateAll((bs) => bs.map((b) => [b.dataset.code, Number(b.dataset.visitors)]));
const shapeCodes = (page) => page.locator('#panel-locations path.country').evaluateAll((ps) => ps.map((p) => p.dataset.code));
const luminance = (fill) => { const [r, g, b] = fill.match(/\d+/g).map(Number); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };

// The map equals the API's visitors per country for the page's filters.
async function checkMap(page, filters, label) {
  await page.locator('#panel-locations .map[data-loaded]').waitFor();
  const res = await query('world', { metrics: ['visitors'], date_range: [yesterday, yesterday], dimensions: ['visit:country'], filters, order_by: [['visitors', 'desc']] });
  const rows = res.results.map((r) => [r.dimensions[0], r.metrics[0]]);
  const shapes = new Set(await shapeCodes(page));
  const shown = await drawn(page);
  const onMap = rows.filter(([c]) => shapes.has(c));
  // One shape per country with visitors, titled with the API's number.
  assert.deepEqual(Object.keys(shown).sort(), onMap.map(([c]) => c).sort(), `${label}: countries drawn`);
  for (const [c, v] of onMap) {
    assert.equal(shown[c].visitors, v, `${label}: ${c} visitors`);
    assert.equal(shown[c].title, `${regionName.of(c)}: ${visitorsText(v)}`, `${label}: ${c} title`);
  }
  assert.deepEqual(await offMap(page), rows.filter(([c]) => !shapes.has(c)), `${label}: countries not on the map`);
  // More visitors, darker; the same number, the same shade.
  for (const [a, va] of onMap) {
    for (const [b, vb] of onMap) {
      if (va > vb) assert.ok(luminance(shown[a].fill) < luminance(shown[b].fill), `${label}: ${a} (${va}, ${shown[a].fill}) darker than ${b} (${vb}, ${shown[b].fill})`);
      if (va === vb) assert.equal(shown[a].fill, shown[b].fill, `${label}: ${a} and ${b} same shade`);
    }
  }
  return { rows, shown };
}

async function tiles(page) {
  return Number(await page.locator('#tile-visitors .value').getAttribute('data-value'));
}

try {
  await waitReady();
  await send('POST', '/api/admin/sites', { site_id: 'berlin', timezone: BERLIN });
  for (const [country] of Object.entries(COUNTRIES)) {
    const batch = worldEvents.filter((e) => e.country === country).map(({ country: _, ...e }) => e);
    const r = await fetch(`${base}/events/batch`, { method: 'POST', headers: { 'content-type': 'application/json', ...(country ? { 'CF-IPCountry': country } : {}) }, body: JSON.stringify(batch) });
    assert.equal(r.status, 202, await r.text());
  }
  const r = await fetch(`${base}/events/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(berlinEvents) });
  assert.equal(r.status, 202, await r.text());
  for (const deadline = Date.now() + 20000; ;) {
    const [w, b] = await Promise.all([query('world', { metrics: ['events'], date_range: [yesterday, yesterday] }), query('berlin', { metrics: ['events'], date_range: [dst.day, dst.day] })]);
    if (w.results[0]?.metrics[0] === worldEvents.length && b.results[0]?.metrics[0] === berlinEvents.length) break;
    assert.ok(Date.now() < deadline, 'events never stored');
    await sleep(100);
  }
  console.log(`seeded: world (${worldEvents.length} visitors from ${Object.keys(COUNTRIES).length - 1} countries and one unknown), berlin (${berlinEvents.length} events around ${dst.day}'s repeated 02:00)`);

  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--headless', '--no-sandbox'] });

  // ---- the map at 1280 px ----
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await watch(page, '1280');
  await page.goto(`${base}/?site=world&period=yesterday`);
  await settled(page);
  assert.equal(await page.locator('#panel-locations .map').isVisible(), false, 'the list is the first tab');
  await page.click('#panel-locations .tab[data-view="map"]');
  assert.equal(await page.locator('#panel-locations .tab[data-view="map"]').getAttribute('aria-pressed'), 'true');
  assert.equal(await page.locator('#panel-locations table').isVisible(), false, 'the map replaces the list');
  const { rows, shown } = await checkMap(page, [], '1280 map');
  assert.equal((await shapeCodes(page)).length, 174, 'every country has a shape');
  assert.deepEqual(rows.map(([c, v]) => [c, v]).sort(), Object.entries(COUNTRIES).sort(), 'the API answers the seed');
  assert.equal(new Set(Object.values(shown).map((s) => s.fill)).size, 4, 'four counts on the map, four shades');
  console.log(`ok 1280 map: ${Object.keys(shown).length} countries shaded as the API answers (${JSON.stringify(Object.fromEntries(Object.entries(shown).map(([c, s]) => [c, [s.visitors, s.fill]])))}), off the map: ${JSON.stringify(await offMap(page))}`);

  // Hovering a country names it and its visitors.
  await page.locator('#panel-locations path[data-code="DE"]').hover();
  await page.waitForFunction(() => document.querySelector('#panel-locations .map-info').textContent.includes('Germany'));
  assert.equal((await page.locator('#panel-locations .map-info').innerText()).replace(/^\S+\s/, ''), `Germany: ${visitorsText(COUNTRIES.DE)}`);
  await page.screenshot({ path: join(SHOTS, '1280-map.png'), fullPage: true });

  // A click filters by the country: chip, URL, tiles as the API answers.
  await page.locator('#panel-locations path[data-code="DE"]').click();
  await page.waitForURL((u) => u.searchParams.get('country') === 'DE');
  await settled(page);
  assert.deepEqual(await page.locator('#chips .chip').allTextContents().then((t) => t.map((x) => x.replace('×', '').trim())), ['Country is Germany']);
  const filtered = await query('world', { metrics: ['visitors'], date_range: [yesterday, yesterday], filters: [['is', 'visit:country', ['DE']]] });
  assert.equal(await tiles(page), filtered.results[0].metrics[0], 'tiles after the map click vs API');
  assert.equal(await tiles(page), COUNTRIES.DE, 'tiles after the map click vs truth');
  assert.equal(await page.locator('#panel-locations .tab[data-view="map"]').getAttribute('aria-pressed'), 'true', 'the map stays on screen');
  const de = await checkMap(page, [['is', 'visit:country', ['DE']]], '1280 map, country DE');
  assert.deepEqual(Object.keys(de.shown), ['DE']);
  console.log(`ok map click: chip "Country is Germany", ?country=DE, visitors ${COUNTRIES.DE} as the API answers`);

  // The keyboard: a country with visitors is a button.
  await page.click('#chips .chip-remove');
  await page.waitForURL((u) => !u.searchParams.has('country'));
  await settled(page);
  await checkMap(page, [], '1280 map, filter removed');
  await page.locator('#panel-locations path[data-code="FR"]').focus();
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.searchParams.get('country') === 'FR');
  await settled(page);
  assert.equal(await tiles(page), COUNTRIES.FR, 'Enter on France filters by it');
  // Too small for the map: its button under the map filters too.
  await page.goto(`${base}/?site=world&period=yesterday`);
  await settled(page);
  await page.click('#panel-locations .tab[data-view="map"]');
  await page.locator('#panel-locations .map[data-loaded]').waitFor();
  await page.click('#panel-locations .off-map button[data-code="SG"]');
  await page.waitForURL((u) => u.searchParams.get('country') === 'SG');
  await settled(page);
  assert.equal(await tiles(page), COUNTRIES.SG, 'Singapore (off the map) filters by it');
  await page.close();

  // ---- the map at 375 px ----
  const narrow = await browser.newPage({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true });
  await watch(narrow, '375');
  await narrow.goto(`${base}/?site=world&period=yesterday`);
  await settled(narrow);
  await narrow.click('#panel-locations .tab[data-view="map"]');
  await checkMap(narrow, [], '375 map');
  const width = await narrow.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `375 map: page is ${width} px wide`);
  const box = await narrow.locator('#panel-locations svg.world').boundingBox();
  assert.ok(box.width > 250 && box.x >= 0 && box.x + box.width <= 375, `375 map: ${JSON.stringify(box)}`);
  await narrow.locator('#panel-locations path[data-code="BR"]').tap();
  await narrow.waitForURL((u) => u.searchParams.get('country') === 'BR');
  await settled(narrow);
  assert.equal(await tiles(narrow), COUNTRIES.BR, '375: a tap on Brazil filters by it');
  await narrow.screenshot({ path: join(SHOTS, '375-map.png'), fullPage: true });
  await narrow.close();
  console.log(`ok 375 map: ${Math.round(box.width)} px wide, no sideways scroll, a tap filters`);

  // ---- the repeated hour ----
  const dpage = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await watch(dpage, '1280 berlin');
  await dpage.goto(`${base}/?site=berlin&period=custom&from=${dst.day}&to=${dst.day}`);
  await settled(dpage);
  const series = await send('GET', `/stats/timeseries?site_id=berlin&from=${dst.day}&to=${dst.day}`);
  assert.equal(series.points.length, 25, 'the day has 25 hours');
  const idx = twice.map((s) => series.points.findIndex((p) => Date.parse(p.start) === s));
  assert.ok(idx[0] >= 0 && idx[1] === idx[0] + 1, `the repeated hour's points: ${idx}`);
  // The API's hour buckets are wall-clock hours: the two passes are one.
  const hourly = await query('berlin', { metrics: ['visitors'], date_range: [dst.day, dst.day], dimensions: ['time:hour'] });
  assert.equal(hourly.results.filter((row) => row.dimensions[0] === `${dst.day} 02:00:00`).length, 1, 'one v2 bucket for 02:00');
  // Each pass on its own: a datetime range with its offset.
  const offsets = ['+02:00', '+01:00'];
  const passVisitors = [];
  for (const [i, s] of twice.entries()) {
    const local = (ms) => `${new Date(ms + (i === 0 ? 2 : 1) * 3_600_000).toISOString().slice(0, 19)}${offsets[i]}`;
    const res = await query('berlin', { metrics: ['visitors'], date_range: [local(s), local(s + 3_599_000)] });
    passVisitors.push(res.results[0]?.metrics[0] ?? 0);
  }
  assert.deepEqual(passVisitors, passTruth.map((t) => t.users), 'visitors per pass: API vs truth');
  const line = (await dpage.locator('#chart').getAttribute('data-visitors')).split(',').map(Number);
  assert.deepEqual(idx.map((i) => line[i]), passVisitors, 'the Visitors line at the two points');

  // Hover each point: the readouts differ and carry the offsets.
  const over = await dpage.locator('#chart .u-over').boundingBox();
  const xs = series.points.map((p) => Date.parse(p.start));
  const readouts = [];
  let before = '';
  for (const i of idx) {
    const x = ((xs[i] - xs[0]) / (xs.at(-1) - xs[0])) * over.width;
    await dpage.mouse.move(over.x + x, over.y + 20);
    await dpage.waitForFunction(([want, prev]) => {
      const text = document.querySelector('#chart .u-legend .u-series .u-value').textContent;
      return text.startsWith(want) && text !== prev;
    }, [`${dst.day} 02:00`, before]);
    before = await dpage.locator('#chart .u-legend .u-series .u-value').first().innerText();
    const values = await dpage.locator('#chart .u-legend .u-series .u-value').allInnerTexts();
    readouts.push(values);
  }
  assert.deepEqual(readouts.map((v) => v[0]), [`${dst.day} 02:00 (UTC+2)`, `${dst.day} 02:00 (UTC+1)`], 'the two readouts');
  assert.notEqual(readouts[0][0], readouts[1][0]);
  for (const [k, i] of idx.entries()) {
    const [, views, users, visitors] = readouts[k].map((v) => Number(v.replace(/,/g, '')));
    assert.deepEqual({ views, users }, { views: series.points[i].views, users: series.points[i].unique_users }, `pass ${k + 1}: views and users vs /stats/timeseries`);
    assert.deepEqual({ views, users }, passTruth[k], `pass ${k + 1}: views and users vs truth`);
    assert.equal(visitors, passVisitors[k], `pass ${k + 1}: visitors vs API`);
  }
  const ticks = (await dpage.locator('#chart').getAttribute('data-ticks')).split('|');
  assert.ok(ticks.includes('02:00 (UTC+2)'), `x-axis labels: ${ticks}`);
  await dpage.screenshot({ path: join(SHOTS, '1280-berlin-fall-back.png'), fullPage: true });
  console.log(`ok ${dst.day} in ${BERLIN}: the repeated 02:00 reads "${readouts[0][0]}" (views ${readouts[0][1]}, visitors ${readouts[0][3]}) and "${readouts[1][0]}" (views ${readouts[1][1]}, visitors ${readouts[1][3]}); axis: ${ticks.join(' ')}`);
  await dpage.close();

  assert.deepEqual(problems, [], 'console errors and CSP violations');
  console.log('map and repeated-hour test passed (0 CSP violations, 0 console errors)');
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  cleanup();
}
