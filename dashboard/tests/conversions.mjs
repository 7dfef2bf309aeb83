// Browser test of goals, funnels and downloads: the real api binary in
// embedded mode (a temp SQLite file, free ports), a site with two goals and
// a saved funnel made over the admin API, and known events. In headless
// Chromium: the goals panel equals the API's answer and the truth computed
// here, a click on a goal filters everything by it (chip, URL), the saved
// funnel's steps equal the truth, a panel's and the goals' CSV downloads
// equal the API's CSV, and "Download all" is a zip of every panel's CSV.
// A site without goals says how to add one. Any console error or
// Content-Security-Policy violation fails the test.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { strFromU8, unzipSync } from 'fflate';
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
const day = isoDay(new Date(Date.now() - 86_400_000));

// ---- the seed and its truth ----
// Six visitors open /; u0..u3 then /pricing; u0, u1 sign up after it; u4
// signs up without pricing (a conversion, not a funnel step 3).
const events = [];
const at = (user, second) => `${day}T0${user}:00:${String(second).padStart(2, '0')}Z`;
for (let u = 0; u < 6; u++) {
  events.push({ site_id: 'shop', event_type: 'page_view', path: '/', user_id: `u${u}`, timestamp: at(u, 0) });
  if (u < 4) events.push({ site_id: 'shop', event_type: 'page_view', path: u % 2 ? '/pricing/team' : '/pricing', user_id: `u${u}`, timestamp: at(u, 10) });
  if (u < 2 || u === 4) events.push({ site_id: 'shop', event_type: 'signup', path: '/pricing', user_id: `u${u}`, timestamp: at(u, 20) });
  // u0 and u2 buy, in the same visits (revenue in EUR).
  if (u === 0 || u === 2) events.push({ site_id: 'shop', event_type: 'purchase', path: '/checkout', user_id: `u${u}`, timestamp: at(u, 30), props: { revenue_amount: u === 0 ? 49.5 : 10, revenue_currency: 'EUR' } });
}
events.push({ site_id: 'plain', event_type: 'page_view', path: '/', user_id: 'p', timestamp: at(1, 0) });
const GOALS = [{ name: 'Pricing', page: '/pricing**' }, { name: 'Signup', event: 'signup' }, { name: 'Sales', event: 'purchase', currency: 'EUR' }];
const FUNNEL = { name: 'Checkout', steps: [{ name: 'Home', page: '/' }, { goal: 'Pricing' }, { goal: 'Signup' }] };
// [goal, uniques, total, conversion rate of the 6 visitors]
const GOAL_ROWS = [['Pricing', 4, 4, 66.67], ['Signup', 3, 3, 50], ['Sales', 2, 2, 33.33]];
// [step, visitors, conversion from the first step]
const FUNNEL_ROWS = [['Home', 6, 100], ['Pricing', 4, 66.67], ['Signup', 2, 33.33]];

// ---- the api ----
const dir = mkdtempSync(join(tmpdir(), 'conversions-test-'));
const [http, metrics] = [await freePort(), await freePort()];
const log = openSync(join(SHOTS, 'analytics-api-conversions.log'), 'w');
const api = spawn(BIN, [], {
  env: { PATH: process.env.PATH, RUST_LOG: 'warn', DATABASE_URL: `sqlite://${join(dir, 'c.db')}?mode=rwc`, HTTP_ADDR: `127.0.0.1:${http}`, METRICS_ADDR: `127.0.0.1:${metrics}` },
  stdio: ['ignore', log, log],
});
const base = `http://127.0.0.1:${http}`;
let browser;
const cleanup = () => { api.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); };

async function send(method, path, body, accept = 'application/json') {
  const r = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json', accept }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
  return accept === 'text/csv' ? text : JSON.parse(text);
}
const query = (body, accept) => send('POST', '/api/v2/query', { site_id: 'shop', date_range: [day, day], ...body }, accept);

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
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`Refused by Content Security Policy: ${e.effectiveDirective} ${e.blockedURI}`));
  });
}

// Waits until the page has loaded the URL's site, period and filters.
async function settled(page) {
  await page.waitForFunction(() => {
    const s = document.getElementById('status').textContent;
    const chips = [...document.querySelectorAll('#chips .chip')].map((li) => li.textContent.replace('×', '').trim());
    return s.startsWith('Showing') && (chips.length ? s.endsWith(`filtered by ${chips.join(' and ')}`) : !s.includes('filtered'));
  }, null, { timeout: 10000 });
}

const goalRows = (page) => page.locator('#goals tbody tr[data-value]').evaluateAll((trs) => trs.map((tr) => [tr.dataset.value, Number(tr.dataset.visitors), Number(tr.dataset.events), Number(tr.dataset.rate)]));
const funnelRows = (page) => page.locator('#funnel-steps li').evaluateAll((lis) => lis.map((li) => [li.querySelector('.funnel-name').textContent, Number(li.dataset.visitors), Number(li.dataset.rate)]));

async function download(page, selector) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  return { name: dl.suggestedFilename(), bytes: readFileSync(await dl.path()) };
}

try {
  await waitReady();
  await send('POST', '/api/admin/sites', { site_id: 'shop' });
  for (const g of GOALS) await send('POST', '/api/admin/sites/shop/goals', g);
  await send('POST', '/api/admin/sites/shop/funnels', FUNNEL);
  const r = await fetch(`${base}/events/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
  assert.equal(r.status, 202, await r.text());
  for (const deadline = Date.now() + 20000; ;) {
    const res = await query({ metrics: ['events'] });
    if (res.results[0].metrics[0] === events.length - 1) break;
    assert.ok(Date.now() < deadline, `events never stored: ${JSON.stringify(res)}`);
    await sleep(100);
  }
  console.log(`seeded: site shop with ${GOALS.length} goals, funnel ${FUNNEL.name}, ${events.length} events on ${day}`);

  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--headless', '--no-sandbox'] });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await ctx.newPage();
  await watch(page, '1280');
  await page.goto(`${base}/?site=shop&period=yesterday`);
  await settled(page);

  // The goals panel: the API's answer, and the truth.
  const api = await query({ metrics: ['visitors', 'events', 'conversion_rate', 'total_revenue'], dimensions: ['event:goal'], order_by: [['visitors', 'desc']] });
  const shown = await goalRows(page);
  assert.deepEqual(shown, api.results.map((x) => [x.dimensions[0], ...x.metrics.slice(0, 3)]), 'goals vs API');
  assert.deepEqual(shown, GOAL_ROWS, 'goals vs truth');
  assert.deepEqual((await page.locator('#goals tbody td.num').allInnerTexts()).slice(0, 5), ['4', '4', '66.67%', '–', '3'], 'goal figures as text');
  // The revenue goal's revenue: 49.50 + 10 EUR, as the API says.
  assert.deepEqual(api.results[2].metrics[3], { value: 59.5, currency: 'EUR' });
  const sales = page.locator('#goals tbody tr[data-value="Sales"]');
  assert.deepEqual([await sales.getAttribute('data-revenue'), await sales.getAttribute('data-currency')], ['59.5', 'EUR']);
  assert.equal((await sales.locator('td.num').allInnerTexts()).at(-1), '€59.50');
  // The saved funnel: its steps.
  assert.equal(await page.locator('#funnel-select').inputValue(), 'Checkout');
  assert.deepEqual(await funnelRows(page), FUNNEL_ROWS, 'funnel vs truth');
  assert.match(await page.locator('#funnel-steps li').nth(2).innerText(), /2 visitors · 33\.33% · 2 dropped off \(50%\)/);
  console.log('ok goals panel and funnel equal the API and the truth');
  await page.screenshot({ path: join(SHOTS, '1280-goals-funnel.png'), fullPage: true });

  // Downloads: a panel, the goals, and everything as a zip.
  const sources = await download(page, '#panel-sources button.download');
  assert.equal(sources.name, `shop_${day}_${day}_source.csv`);
  const sourcesCsv = await query({ metrics: ['visitors', 'visits', 'pageviews', 'percentage'], dimensions: ['visit:source'], order_by: [['visitors', 'desc']] }, 'text/csv');
  assert.equal(sources.bytes.toString('utf8'), sourcesCsv, 'sources CSV vs API');
  assert.ok(sourcesCsv.startsWith('visit:source,visitors,visits,pageviews,percentage\n'), sourcesCsv);
  const goalsFile = await download(page, '#goals button.download');
  const goalsCsv = goalsFile.bytes.toString('utf8');
  assert.equal(goalsFile.name, `shop_${day}_${day}_goals.csv`);
  assert.deepEqual(goalsCsv.trim().split('\n').slice(1).map((l) => l.split(',').slice(0, 4).map((x, i) => (i ? Number(x) : x))), GOAL_ROWS, 'goals CSV vs truth');
  assert.ok(goalsCsv.startsWith('event:goal,visitors,events,conversion_rate,total_revenue\n') && goalsCsv.includes('\nSales,2,2,33.33,59.5\n'), goalsCsv);
  const all = await download(page, '#download-all');
  assert.equal(all.name, `shop_${day}_${day}.zip`);
  assert.equal(all.bytes.subarray(0, 2).toString('latin1'), 'PK', 'a zip');
  const files = unzipSync(new Uint8Array(all.bytes));
  const names = Object.keys(files).sort();
  for (const f of ['source.csv', 'channel.csv', 'page.csv', 'entry_page.csv', 'country.csv', 'browser.csv', 'device.csv', 'days.csv', 'goals.csv']) {
    assert.ok(names.includes(f), `${f} in the zip: ${names}`);
  }
  assert.equal(strFromU8(files['source.csv']), sourcesCsv, 'zip source.csv vs API');
  assert.equal(strFromU8(files['goals.csv']), goalsCsv, 'zip goals.csv vs the goals download');
  assert.match(strFromU8(files['days.csv']), new RegExp(`^time:day,visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration\\n${day},6,6,`));
  console.log(`ok downloads: ${sources.name}, ${goalsFile.name}, ${all.name} with ${names.length} CSVs`);

  // A click on a goal filters by it: chip, URL, tiles, goals, funnel.
  await page.locator('#goals button.row-filter[data-value="Signup"]').click();
  await page.waitForURL((u) => u.searchParams.get('goal') === 'Signup');
  await settled(page);
  assert.deepEqual(await page.locator('#chips .chip').allTextContents().then((t) => t.map((x) => x.replace('×', '').trim())), ['Goal is Signup']);
  assert.equal(await page.locator('#tile-visitors .value').getAttribute('data-value'), '3', 'visitors who signed up');
  assert.deepEqual(await goalRows(page), [['Signup', 3, 3, 50]], 'goals under the goal filter');
  const filtered = await send('POST', '/api/v2/funnel', { site_id: 'shop', date_range: [day, day], funnel: 'Checkout', filters: [['is', 'event:goal', ['Signup']]] });
  assert.deepEqual(await funnelRows(page), filtered.steps.map((s) => [s.name, s.visitors, s.conversion_rate]), 'funnel under the goal filter vs API');
  await page.reload();
  await settled(page);
  assert.deepEqual(await goalRows(page), [['Signup', 3, 3, 50]], 'the goal filter survives a reload');
  console.log('ok a goal row filters by the goal');
  await page.screenshot({ path: join(SHOTS, '1280-goal-filter.png'), fullPage: true });

  // A site without goals or funnels says how to add them.
  await page.goto(`${base}/?site=plain&period=yesterday`);
  await settled(page);
  assert.equal(await page.locator('#goals .none-yet').isVisible(), true, 'no goals: how to add one');
  assert.equal(await page.locator('#goals table').isVisible(), false);
  assert.equal(await page.locator('#funnel-none').isVisible(), true, 'no funnels: how to save one');
  await ctx.close();

  // 375 px: the goals and the funnel fit.
  const mctx = await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true });
  const mpage = await mctx.newPage();
  await watch(mpage, '375');
  await mpage.goto(`${base}/?site=shop&period=yesterday`);
  await settled(mpage);
  assert.deepEqual(await goalRows(mpage), GOAL_ROWS, '375: goals');
  // The goal names stay readable: the table scrolls sideways instead.
  const name = await mpage.locator('#goals button.row-filter[data-value="Pricing"]').boundingBox();
  assert.ok(name && name.width >= 100, `375: goal name column ${JSON.stringify(name)}`);
  const width = await mpage.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `375: page is ${width} px wide`);
  await mpage.screenshot({ path: join(SHOTS, '375-goals-funnel.png'), fullPage: true });
  await mctx.close();

  assert.deepEqual(problems, [], 'console errors or CSP violations');
  console.log('conversions browser test passed');
} finally {
  if (browser) await browser.close();
  cleanup();
}
