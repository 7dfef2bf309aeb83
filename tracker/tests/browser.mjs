// Browser test of the trackers against the real api binary (embedded mode,
// a temp SQLite file, free ports), in headless Chromium:
//
// 1. Our tracker (/js/script.js) on real test pages served from another
//    origin: a page load, a navigation to a second page, SPA route changes
//    (pushState, replaceState, back), hash routing, an outbound link, a
//    file download, a custom event from CSS classes and one from the global
//    function. It must stay silent in an automated browser (webdriver)
//    or on localhost unless told otherwise, and under Do-Not-Track where
//    the page asks (`data-respect-dnt`).
// 2. Plausible's published tracker (npm @plausible-analytics/tracker, MIT)
//    pointed at our /api/event: its page view, an SPA route change, an
//    outbound click and a custom event.
//
// Both end in exact counts: /stats and /stats/breakdown equal the events
// the test caused, counted here; and a headless agent's page view is
// dropped as a bot.
import { spawn } from 'node:child_process';
import { createServer as httpServer } from 'node:http';
import { createServer } from 'node:net';
import { mkdtempSync, openSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BIN = process.env.ANALYTICS_API_BIN;
const LOGS = process.env.TRACKER_LOG_DIR || 'target/tracker-test';
mkdirSync(LOGS, { recursive: true });
const CHROME_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

const freePort = () => new Promise((resolve) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const today = new Date().toISOString().slice(0, 10);

// ---- the api ----
const dir = mkdtempSync(join(tmpdir(), 'tracker-test-'));
const [http, metrics, pages] = [await freePort(), await freePort(), await freePort()];
const log = openSync(join(LOGS, 'analytics-api.log'), 'w');
const api = spawn(BIN, [], {
  env: { PATH: process.env.PATH, RUST_LOG: 'info', DATABASE_URL: `sqlite://${join(dir, 'a.db')}?mode=rwc`, HTTP_ADDR: `127.0.0.1:${http}`, METRICS_ADDR: `127.0.0.1:${metrics}` },
  stdio: ['ignore', log, log],
});
const API = `http://127.0.0.1:${http}`;
const PAGES = `http://127.0.0.1:${pages}`;

// ---- the test site, on its own origin ----
const snippet = (site, extra = '', local = 'data-local') =>
  `<script defer data-domain="${site}" ${local} data-outbound-links data-file-downloads ${extra} src="${API}/js/script.js"></script>`;
const plausibleModule = readFileSync(new URL('../node_modules/@plausible-analytics/tracker/plausible.js', import.meta.url));
const site = {
  '/index.html': `<!doctype html><title>home</title>${snippet('ours.test')}
    <a id="second" href="/second.html">second</a>
    <a id="out" href="https://elsewhere.example/page">outbound</a>
    <a id="pdf" href="/files/report.pdf">report</a>
    <button id="signup" class="analytics-event-name=Signup analytics-event-plan=pro"><span id="inner">sign up</span></button>`,
  '/second.html': `<!doctype html><title>second</title>${snippet('ours.test')}`,
  '/hash.html': `<!doctype html><title>hash</title>${snippet('ours.test', 'data-hash')}`,
  '/quiet.html': `<!doctype html><title>quiet</title>${snippet('ours.test')}`,
  '/dnt.html': `<!doctype html><title>dnt</title>${snippet('ours.test', 'data-respect-dnt')}`,
  '/local.html': `<!doctype html><title>local</title>${snippet('ours.test', '', '')}`,
  '/headless.html': `<!doctype html><title>headless</title>${snippet('ours.test', 'data-automated')}`,
  '/files/report.pdf': '%PDF-1.4',
  '/plausible.js': plausibleModule,
  '/plausible.html': `<!doctype html><title>plausible</title>
    <a id="out" href="https://elsewhere.example/p">outbound</a>
    <script type="module">
      import { init, track } from '/plausible.js';
      init({ domain: 'plausible.test', endpoint: '${API}/api/event', captureOnLocalhost: true, outboundLinks: true, logging: false });
      window.trackIt = track;
    </script>`,
};
const server = httpServer((req, res) => {
  const path = req.url.split('?')[0].split('#')[0];
  const body = site[path] ?? site['/index.html'];
  const type = path.endsWith('.js') ? 'text/javascript' : path.endsWith('.pdf') ? 'application/pdf' : 'text/html';
  res.writeHead(200, { 'content-type': type });
  res.end(body);
}).listen(pages, '127.0.0.1');

let browser;
const cleanup = () => {
  api.kill('SIGKILL');
  server.close();
  rmSync(dir, { recursive: true, force: true });
};

async function waitReady() {
  const deadline = Date.now() + 30000;
  for (;;) {
    try { if ((await fetch(`http://127.0.0.1:${metrics}/readyz`)).ok) return; } catch { /* not up yet */ }
    assert.ok(Date.now() < deadline, 'api not ready in 30 s');
    await sleep(100);
  }
}

async function getJson(path) {
  const r = await fetch(`${API}${path}`);
  assert.equal(r.status, 200, path);
  return r.json();
}

// Plausible's script also reports scroll depth and time on page as
// `engagement`; the api answers those and keeps nothing.
const nameOf = (e) => e.n || e.name;
const isEvent = (req) => req.url().startsWith(`${API}/api/event`) && nameOf(JSON.parse(req.postData())) !== 'engagement';

// Every event a browser context sends to the api (engagement reports
// apart), and the status of every answer. On the context, not the page:
// a click that leaves the page sends its event as the page goes.
function recordEvents(ctx, into) {
  into.answers = into.answers || [];
  ctx.on('request', (r) => { if (isEvent(r)) into.push(JSON.parse(r.postData())); });
  ctx.on('response', (r) => { if (isEvent(r.request())) into.answers.push(r.status()); });
}

// Runs `action`, then waits until `n` more events were sent and answered.
// `leaves`: the action leaves the page, whose keepalive request Chromium
// finishes without reporting its answer; /stats shows it arrived.
async function expectSent(page, sent, n, action, { leaves = false } = {}) {
  const [before, answeredBefore] = [sent.length, sent.answers.length];
  await action();
  const answers = leaves ? 0 : n;
  const deadline = Date.now() + 10000;
  while ((sent.length < before + n || sent.answers.length < answeredBefore + answers) && Date.now() < deadline) await sleep(50);
  await sleep(n === 0 || leaves ? 300 : 0);
  assert.equal(sent.length - before, n, `events sent by: ${action}`);
  if (!leaves) assert.deepEqual(sent.answers.slice(answeredBefore), Array(n).fill(202), `answers to: ${action}`);
}

// The path a page view counts under: the URL's, with its fragment in
// hash-routing mode.
const viewPath = (e) => { const u = new URL(e.u || e.url); return u.pathname + (e.h ? u.hash : ''); };

// Waits for /stats to count `total`, then checks views, events, visitors
// and every event name against what was sent.
async function checkCounts(siteId, sent) {
  const kept = sent;
  const names = new Map();
  const paths = new Map();
  for (const e of kept) {
    const name = nameOf(e) === 'pageview' ? 'page_view' : nameOf(e);
    names.set(name, (names.get(name) || 0) + 1);
    if (name === 'page_view') paths.set(viewPath(e), (paths.get(viewPath(e)) || 0) + 1);
  }
  const deadline = Date.now() + 15000;
  let stats;
  for (;;) {
    stats = await getJson(`/stats?site_id=${siteId}&date=${today}`);
    if (stats.total_events === kept.length || Date.now() > deadline) break;
    await sleep(100);
  }
  assert.equal(stats.total_events, kept.length, `${siteId}: ${JSON.stringify(stats)}`);
  assert.equal(stats.total_views, names.get('page_view') || 0, `${siteId} views`);
  assert.equal(stats.unique_users, 0);
  assert.equal(stats.visitors, 1, `${siteId}: one browser is one cookieless visitor`);
  const breakdown = await getJson(`/stats/breakdown?site_id=${siteId}&from=${today}&to=${today}&by=event_type`);
  const got = Object.fromEntries(breakdown.rows.map((r) => [r.key, r.count]));
  assert.deepEqual(got, Object.fromEntries(names), `${siteId} event names`);
  const topPaths = Object.fromEntries(stats.top_paths.map((p) => [p.path, p.views]));
  assert.deepEqual(topPaths, Object.fromEntries(paths), `${siteId} paths`);
  return stats;
}

async function metric(name) {
  const text = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.split(' ')[1]) : 0;
}

try {
  await waitReady();
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--headless', '--no-sandbox'] });

  // -- the script itself: small, cacheable, revalidated by its ETag --
  const script = await fetch(`${API}/js/script.js`);
  assert.equal(script.status, 200);
  assert.match(script.headers.get('content-type'), /javascript/);
  assert.match(script.headers.get('cache-control'), /max-age=86400/);
  const etag = script.headers.get('etag');
  assert.ok(etag);
  assert.equal((await fetch(`${API}/js/script.js`, { headers: { 'if-none-match': etag } })).status, 304);

  // -- an automated browser: the tracker stays silent --
  {
    const ctx = await browser.newContext({ userAgent: CHROME_UA });
    const page = await ctx.newPage();
    const sent = [];
    recordEvents(ctx, sent);
    await page.goto(`${PAGES}/quiet.html`);
    await page.waitForFunction(() => typeof window.analytics === 'function');
    assert.equal(await page.evaluate(() => navigator.webdriver), true);
    await page.evaluate(() => window.analytics('Ignored'));
    await sleep(500);
    assert.equal(sent.length, 0, 'nothing is sent from an automated browser');
    await ctx.close();
  }

  // -- a person's browser (webdriver hidden), our tracker --
  const person = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-blink-features=AutomationControlled'],
  });
  const ours = [];
  {
    const ctx = await person.newContext({ userAgent: CHROME_UA });
    await ctx.route('https://elsewhere.example/**', (r) => r.fulfill({ status: 200, contentType: 'text/html', body: 'elsewhere' }));
    const page = await ctx.newPage();
    recordEvents(ctx, ours);
    assert.equal(await page.evaluate(() => navigator.webdriver), false);
    await expectSent(page, ours, 1, () => page.goto(`${PAGES}/index.html?utm_source=newsletter`));
    // SPA: a new route, the same route replaced (no view), another
    // replaced route, and back.
    await expectSent(page, ours, 1, () => page.evaluate(() => history.pushState({}, '', '/app/settings')));
    await expectSent(page, ours, 0, () => page.evaluate(() => history.replaceState({ x: 1 }, '', '/app/settings')));
    await expectSent(page, ours, 1, () => page.evaluate(() => history.replaceState({}, '', '/app/other')));
    await expectSent(page, ours, 1, () => page.evaluate(() => history.back()));
    // Custom events: CSS classes on an ancestor of what was clicked, and
    // the global function.
    await expectSent(page, ours, 1, () => page.click('#inner'));
    await expectSent(page, ours, 1, () => page.evaluate(() => window.analytics('Purchase', { props: { amount: 3 } })));
    // A file download, then an outbound link (which leaves the page).
    await expectSent(page, ours, 1, () => page.click('#pdf'), { leaves: true });
    await expectSent(page, ours, 1, () => page.goto(`${PAGES}/index.html`));
    await expectSent(page, ours, 1, () => page.click('#out'), { leaves: true });
    // A navigation to a second page: its own page view.
    await expectSent(page, ours, 1, () => page.goto(`${PAGES}/second.html`));
    // Hash routing: the fragment is the page.
    await expectSent(page, ours, 1, () => page.goto(`${PAGES}/hash.html`));
    await expectSent(page, ours, 1, () => page.evaluate(() => { location.hash = '#/a'; }));
    await ctx.close();
  }
  // On localhost (127.0.0.1) without data-local: nothing is sent.
  {
    const ctx = await person.newContext({ userAgent: CHROME_UA });
    const page = await ctx.newPage();
    const sent = [];
    recordEvents(ctx, sent);
    await page.goto(`${PAGES}/local.html`);
    await page.waitForFunction(() => typeof window.analytics === 'function');
    await page.evaluate(() => window.analytics('Ignored'));
    await sleep(500);
    assert.equal(sent.length, 0, 'nothing is sent from localhost without data-local');
    await ctx.close();
  }
  // Do-Not-Track, where the page asks to respect it: nothing is sent.
  {
    const ctx = await person.newContext({ userAgent: CHROME_UA });
    await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1' }));
    const page = await ctx.newPage();
    const sent = [];
    recordEvents(ctx, sent);
    await page.goto(`${PAGES}/dnt.html`);
    await page.waitForFunction(() => typeof window.analytics === 'function');
    await page.evaluate(() => window.analytics('Ignored'));
    await sleep(500);
    assert.equal(sent.length, 0, 'nothing is sent under Do-Not-Track with data-respect-dnt');
    // Without the attribute the same browser is tracked.
    await expectSent(page, sent, 1, () => page.goto(`${PAGES}/second.html`));
    ours.push(...sent);
    await ctx.close();
  }
  const kinds = ours.map((e) => `${e.n} ${e.u.replace(PAGES, '')} ${JSON.stringify(e.p || {})}`);
  assert.ok(ours.some((e) => e.n === 'Outbound Link: Click' && e.p.url === 'https://elsewhere.example/page'), kinds.join('\n'));
  assert.ok(ours.some((e) => e.n === 'File Download' && e.p.url.endsWith('/files/report.pdf')), kinds.join('\n'));
  assert.ok(ours.some((e) => e.n === 'Signup' && e.p.plan === 'pro'), kinds.join('\n'));
  assert.ok(ours.some((e) => e.n === 'pageview' && e.h === 1 && e.u.endsWith('/hash.html#/a')), kinds.join('\n'));
  await checkCounts('ours.test', ours);

  // -- Plausible's own tracker against /api/event --
  const theirs = [];
  {
    const ctx = await person.newContext({ userAgent: CHROME_UA });
    await ctx.route('https://elsewhere.example/**', (r) => r.fulfill({ status: 200, contentType: 'text/html', body: 'elsewhere' }));
    const page = await ctx.newPage();
    recordEvents(ctx, theirs);
    await expectSent(page, theirs, 1, () => page.goto(`${PAGES}/plausible.html`));
    await page.waitForFunction(() => typeof window.trackIt === 'function');
    await expectSent(page, theirs, 1, () => page.evaluate(() => window.trackIt('Signup', { props: { plan: 'pro' } })));
    await expectSent(page, theirs, 1, () => page.evaluate(() => history.pushState({}, '', '/pricing')));
    await expectSent(page, theirs, 1, () => page.click('#out'), { leaves: true });
    await ctx.close();
  }
  assert.ok(theirs.every((e) => e.d === 'plausible.test'), JSON.stringify(theirs));
  assert.ok(theirs.some((e) => e.n === 'Outbound Link: Click'), JSON.stringify(theirs));
  await checkCounts('plausible.test', theirs);

  // -- a headless agent (data-automated lets the script send): the api
  // drops it as a bot and counts it --
  {
    const headlessBefore = await metric('analytics_events_dropped_bots_total{reason="headless"}');
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const sent = [];
    recordEvents(ctx, sent);
    assert.match(await page.evaluate(() => navigator.userAgent), /HeadlessChrome/);
    await expectSent(page, sent, 1, () => page.goto(`${PAGES}/headless.html`));
    await ctx.close();
    assert.equal(await metric('analytics_events_dropped_bots_total{reason="headless"}'), headlessBefore + 1);
    const stats = await getJson(`/stats?site_id=ours.test&date=${today}`);
    assert.equal(stats.total_events, ours.length, 'the headless view was not stored');
  }
  await person.close();
  console.log(`tracker browser test passed: ours ${ours.length} events, Plausible's ${theirs.length}`);
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  cleanup();
}
