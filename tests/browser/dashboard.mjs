// Drives the dashboard in Debian's chromium (never a downloaded browser) and checks what a
// person sees against what the API says. Run by tests/dashboard.rs:
//   DASHBOARD_URL=http://127.0.0.1:PORT/prefix/ DASHBOARD_USER=.. DASHBOARD_PASSWORD=.. \
//   SCREENSHOT_DIR=target/dashboard-screenshots node tests/browser/dashboard.mjs
// Synchronisation is by condition (the page sets body[data-ready] to the view it finished
// rendering), never by sleeping. Timings are printed, not asserted.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const url = process.env.DASHBOARD_URL;
const user = process.env.DASHBOARD_USER;
const password = process.env.DASHBOARD_PASSWORD;
const shots = process.env.SCREENSHOT_DIR || 'target/dashboard-screenshots';
assert.ok(url && user && password, 'set DASHBOARD_URL, DASHBOARD_USER and DASHBOARD_PASSWORD');
const origin = new URL(url).origin;
const base = url.replace(/\/$/, '');
mkdirSync(shots, { recursive: true });

// ---- the API's own numbers ------------------------------------------------------------
async function token() {
  const r = await fetch(base + '/auth_token', {
    headers: { Authorization: 'Basic ' + Buffer.from(user + ':' + password).toString('base64') },
  });
  assert.equal(r.status, 200, 'API login');
  return (await r.json()).auth_token;
}
const bearer = await token();
async function api(path) {
  const r = await fetch(base + path, { headers: { Authorization: 'Bearer ' + bearer, Accept: 'application/hal+json' } });
  assert.equal(r.status, 200, path + ': ' + (await r.clone().text()));
  return r.json();
}
const exact = (n) => n.toLocaleString('en-US') + ' bytes';
const M = 'exclusive_size';
async function topNamespaces() {
  return (await api('/namespaces?embed=1&sort=-exclusive_size&limit=5'))._embedded.items;
}
async function children(ns) {
  return (await api('/namespaces/' + encodeURIComponent(ns) + '?embed=1&sort=-exclusive_size&limit=50'))._embedded.repositories;
}
async function tagsOf(repo) {
  return (await api('/repositories/' + encodeURIComponent(repo) + '/tags?embed=1&sort=-exclusive_size&limit=50'))._embedded.items;
}
// The fragment the dashboard writes for a view (its parameter order; defaults left out).
function hashOf({ ns, repo, tag, s, q } = {}) {
  const p = new URLSearchParams();
  if (repo) p.set('repo', repo);
  else if (ns) p.set('ns', ns);
  if (repo && tag) p.set('tag', tag);
  if (s && s !== '-' + M) p.set('s', s);
  if (q) p.set('q', q);
  return '#' + p.toString();
}

// ---- the browser --------------------------------------------------------------------
const profile = process.env.BROWSER_PROFILE || mkdtempSync(join(tmpdir(), 'grur-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const problems = [];
const foreign = [];
context.on('request', (rq) => {
  const u = new URL(rq.url());
  if (!['data:', 'about:'].includes(u.protocol) && u.origin !== origin) foreign.push(rq.url());
});
// Answers the test provokes on purpose: the wrong password, the expired token, the
// browser's 401 page, and /history (not built yet: 404 means "no history yet").
const expected = [
  { status: 401, path: /\/auth_token$/ },
  { status: 429, path: /\/auth_token$/ },
  { status: 401, path: /\/(repositories|namespaces)(\/|\?|$)/ },
  { status: 404, path: /\/history(\?|$)/ },
];
const page = context.pages()[0] || (await context.newPage());
const failedResponses = [];
page.on('response', (r) => {
  if (r.status() >= 400) failedResponses.push({ status: r.status(), url: r.url() });
});
page.on('console', (msg) => {
  if (msg.type() !== 'error') return;
  const at = msg.location().url || '';
  const loadError = /Failed to load resource: the server responded with a status of (\d+)/.exec(msg.text());
  if (loadError) {
    const status = Number(loadError[1]);
    const path = new URL(at, origin).pathname;
    if (expected.some((e) => e.status === status && e.path.test(path))) return;
  }
  problems.push('console error: ' + msg.text() + ' at ' + at);
});
page.on('pageerror', (e) => problems.push('page error: ' + e.message));

const ready = (hash) => page.waitForFunction((h) => document.body.dataset.ready === h, hash, { timeout: 15000 });
const rowNames = () => page.$$eval('#table-body tr', (rows) => rows.map((r) => r.dataset.name));
const shot = (name) => page.screenshot({ path: join(shots, name + '.png'), fullPage: true });
const timings = {};

try {
  // ---- log in: the wrong password first ----
  await page.goto(url);
  await ready('login');
  await page.fill('#user', user);
  await page.fill('#password', password + 'x');
  await page.click('#login-submit');
  await page.waitForFunction(() => document.getElementById('login-error').textContent !== '');
  assert.equal(await page.textContent('#login-error'), 'Wrong user name or password.');
  await shot('01-login-wrong-password');
  await page.fill('#password', password);
  await page.click('#login-submit');
  await ready(hashOf());
  assert.equal(await page.evaluate(() => sessionStorage.length), 1, 'the token is in sessionStorage');
  assert.deepEqual((await context.cookies()).length, 0, 'no cookie');

  // ---- the overview and the biggest namespace, with the API's numbers ----
  const totals = await api('/repositories?sort=-exclusive_size&limit=1');
  const overview = await page.textContent('#overview');
  const n = (x) => x.toLocaleString('en-US');
  assert.ok(overview.includes('Repositories' + n(totals.repository_count)) && overview.includes('Tags' + n(totals.tag_count)), overview);
  assert.match(await page.textContent('#scan'), /^Last scan (just now|\d+ (seconds?|minutes?) ago)$/);
  assert.ok((await page.getAttribute('#scan', 'title')).length > 10, 'exact time on hover');
  const top = await topNamespaces();
  const biggest = top[0];
  const names = await rowNames();
  assert.equal(names[0], biggest.name, 'the biggest namespace is the first row');
  const row = `#table-body tr[data-name="${biggest.name}"]`;
  const cellTitles = await page.$$eval(row + ' td', (tds) => tds.map((td) => td.title));
  for (const key of ['size', 'deduplicated_size', 'exclusive_size'])
    assert.ok(cellTitles.includes(exact(biggest[key])), `row shows ${key} ${exact(biggest[key])}: ${cellTitles}`);
  const rowText = await page.textContent(row);
  assert.ok(rowText.includes(n(biggest.tag_count)), rowText);
  // The first (largest) tile is the biggest namespace; its tooltip has every exact number.
  const firstTile = '#treemap .tile >> nth=0';
  assert.equal(await page.getAttribute(firstTile, 'data-name'), biggest.name);
  await page.hover(firstTile);
  await page.waitForSelector('#tooltip:not([hidden])');
  const tip = await page.textContent('#tooltip');
  for (const key of ['exclusive_size', 'deduplicated_size', 'size', 'disk_size'])
    assert.ok(tip.includes(exact(biggest[key])), `tooltip shows ${key}: ${tip}`);
  // Squarified: the tiles fill the map without overlapping, areas in the order of the values.
  const geometry = await page.evaluate(() => {
    const map = document.getElementById('treemap');
    const tiles = [...map.querySelectorAll('.tile')].map((t) => ({ x: t.offsetLeft, y: t.offsetTop, w: t.offsetWidth, h: t.offsetHeight }));
    return { w: map.clientWidth, h: map.clientHeight, tiles };
  });
  const areas = geometry.tiles.map((t) => t.w * t.h);
  const filled = areas.reduce((a, b) => a + b, 0) / (geometry.w * geometry.h);
  assert.ok(filled > 0.97 && filled < 1.03, 'the tiles fill the map: ' + filled);
  for (let i = 1; i < areas.length; i++) assert.ok(areas[i] <= areas[i - 1] * 1.05 + 50, 'tile areas follow the order: ' + areas);
  for (const [i, a] of geometry.tiles.entries())
    for (const b of geometry.tiles.slice(i + 1)) {
      const overlap = Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x) - 1) * Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y) - 1);
      assert.ok(overlap <= 0, 'tiles overlap: ' + JSON.stringify([a, b]));
    }
  // Failed repositories with their errors, found through the namespaces' counts.
  const failedNs = (await api('/namespaces?embed=1&sort=-failed_repository_count&limit=50'))._embedded.items.filter((x) => x.failed_repository_count > 0);
  const failedCount = failedNs.reduce((a, x) => a + x.failed_repository_count, 0);
  if (failedCount > 0) {
    await page.waitForSelector('#failed:not([hidden])');
    const failedText = await page.textContent('#failed');
    assert.ok(failedText.startsWith(failedCount + ' repositor'), failedText);
    assert.ok(!/null|undefined/.test(failedText), failedText);
    const failedRepos = [];
    for (const x of failedNs)
      for (const r of (await api('/namespaces/' + encodeURIComponent(x.name) + '?embed=1&sort=name&limit=200'))._embedded.repositories || [])
        if (r.error) failedRepos.push(r);
    for (const r of failedRepos.slice(0, 5)) assert.ok(failedText.includes(r.name + ': ' + r.error), failedText);
  }
  await shot('02-overview-1280x800');

  // ---- drill down: namespace → repository → tag, then back ----
  const t0 = Date.now();
  await page.click(firstTile);
  await ready(hashOf({ ns: biggest.name }));
  timings.drill_namespace_ms = Date.now() - t0;
  const repo = (await children(biggest.name))[0];
  await page.click(`#treemap .tile[data-name="${repo.name}"]`);
  await ready(hashOf({ repo: repo.name }));
  const tags = await tagsOf(repo.name);
  assert.deepEqual(await rowNames(), tags.map((t) => t.name), 'tags in the API order');
  const aliasRows = await page.$$eval('.alias', (a) => a.map((x) => x.textContent));
  const byDigest = new Map();
  for (const t of tags) if (t.digest) byDigest.set(t.digest, (byDigest.get(t.digest) || 0) + 1);
  assert.equal(aliasRows.length, tags.filter((t) => byDigest.get(t.digest) > 1).length, 'aliases are marked: ' + aliasRows);
  const tag = tags[0];
  await page.click(`#table-body tr[data-name="${tag.name}"] a`);
  await ready(hashOf({ repo: repo.name, tag: tag.name }));
  const detail = (await page.textContent('#detail')) + (await page.$$eval('#detail dd', (dd) => dd.map((d) => d.title).join(' ')));
  assert.ok(detail.includes(exact(tag.size)), detail);
  assert.ok(detail.includes(tag.digest), detail);
  assert.equal(await page.textContent('#crumbs [aria-current]'), tag.name);
  await shot('03-tag-1280x800');
  await page.click('#back');
  await ready(hashOf({ repo: repo.name }));
  await page.click('#back');
  await ready(hashOf({ ns: biggest.name }));
  await page.goBack(); // the browser's own Back goes through the same views
  await ready(hashOf({ repo: repo.name }));
  await page.click('#crumbs a >> nth=0');
  await ready(hashOf());

  // ---- sort by a column, then filter ----
  await page.click('#table-head button[data-sort="name"]');
  await ready(hashOf({ s: 'name' }));
  const sorted = await rowNames();
  assert.deepEqual(sorted, [...sorted].sort(), 'rows in name order');
  assert.equal(await page.getAttribute('#table-head th[aria-sort]', 'aria-sort'), 'ascending');
  await page.click('#table-head button[data-sort="name"]');
  await ready(hashOf({ s: '-name' }));
  const reversed = await rowNames();
  assert.deepEqual(reversed, [...reversed].sort().reverse(), 'rows in reverse name order');
  await page.click('#table-head button[data-sort="exclusive_size"]');
  await ready(hashOf());
  assert.equal((await rowNames())[0], biggest.name);
  const needle = biggest.name.slice(-3);
  await page.fill('#filter', needle);
  await ready(hashOf({ q: needle }));
  const filtered = await rowNames();
  assert.ok(filtered.length >= 1 && filtered.every((n) => n.toLowerCase().includes(needle.toLowerCase())), String(filtered));
  await page.fill('#filter', '');
  await ready(hashOf());

  // ---- keyboard: the rows are reachable and arrow keys move between them ----
  await page.focus('#table-body tr >> nth=0 >> a');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.closest('tr').dataset.name), (await rowNames())[1]);

  // ---- an expired token brings the login back and keeps the view ----
  await page.goto(url + hashOf({ ns: biggest.name }));
  await ready(hashOf({ ns: biggest.name }));
  await page.evaluate(() => sessionStorage.setItem('grur.token', 'expired.token.value'));
  await page.click('#table-head button[data-sort="name"]');
  await ready('login');
  assert.match(await page.textContent('#login-note'), /expired/);
  await page.fill('#user', user);
  await page.fill('#password', password);
  await page.click('#login-submit');
  await ready(hashOf({ ns: biggest.name, s: 'name' }));

  // ---- phone width ----
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(url + hashOf());
  await ready(hashOf());
  await shot('04-overview-phone');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, 'no horizontal scrolling at phone width: ' + overflow + ' px too wide');
  await page.setViewportSize({ width: 1280, height: 800 });

  // ---- first meaningful paint on a reload with a token, and a drill-down ----
  await page.goto(url + hashOf());
  await ready(hashOf());
  await page.reload();
  await ready(hashOf());
  timings.first_paint_cached_ms = Math.round(await page.evaluate(() => performance.getEntriesByName('grur:ready')[0].startTime));
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.clearBrowserCache');
  await page.reload();
  await ready(hashOf());
  timings.first_paint_ms = Math.round(await page.evaluate(() => performance.getEntriesByName('grur:ready')[0].startTime));
  await page.click(firstTile);
  await ready(hashOf({ ns: biggest.name }));
  timings.drill_render_ms = Math.round(await page.evaluate(() => performance.getEntriesByName('grur:render').at(-1).duration));

  // ---- the history chart, with /history answered here (the route does not exist yet;
  // until it does the dashboard says "no history yet", checked by every view above) ----
  assert.match(await page.textContent('#chart'), /No history yet/);
  await page.click('#crumbs a >> nth=0');
  await ready(hashOf());
  const points = [
    { date: '2026-11-01', size: 1000, deduplicated_size: 800, exclusive_size: 800, tag_count: 2 },
    { date: '2026-11-15', size: 3000, deduplicated_size: 2000, exclusive_size: 2000, tag_count: 4 },
    { date: '2026-12-01', size: 4000, deduplicated_size: 2500, exclusive_size: 2500, tag_count: 5 },
  ];
  await page.route(/\/history\?/, (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ name: '', points }) }));
  await page.reload();
  await ready(hashOf());
  await page.waitForSelector('#chart svg[role="img"]');
  const chartLabel = await page.getAttribute('#chart svg', 'aria-label');
  assert.equal(chartLabel, 'Deduplicated size of the registry from 2026-11-01 (800 bytes) to 2026-12-01 (2.44 KiB)');
  await shot('07-history-chart');
  await page.unroute(/\/history\?/);

  // ---- the cleanup preview: the form on the registry, namespace and repository views
  // shows the API's own numbers for the same policy ----
  const policy = 'name_regex=.*&keep_n=1&older_than=90d';
  const previews = [
    [hashOf(), '/cleanup'],
    [hashOf({ ns: biggest.name }), '/namespaces/' + encodeURIComponent(biggest.name) + '/cleanup'],
    [hashOf({ repo: repo.name }), '/repositories/' + encodeURIComponent(repo.name) + '/cleanup'],
  ];
  for (const [hash, path] of previews) {
    await page.goto(url + hash);
    await ready(hash);
    // Tag dates (RFC 3339 in the API) are shown as ages, never as NaN.
    assert.ok(!/NaN/.test(await page.textContent('#app')), hash);
    await page.fill('#cleanup-regex', '.*');
    await page.fill('#cleanup-keep', '');
    await page.fill('#cleanup-keep-n', '1');
    await page.selectOption('#cleanup-older', '90d');
    await page.click('#cleanup-submit');
    await page.waitForFunction((q) => document.getElementById('cleanup-result').dataset.ready === q, policy, { timeout: 15000 });
    const want = await api(path + '?' + policy);
    assert.equal(Number(await page.getAttribute('#cleanup-freed', 'data-bytes')), want.freed_bytes, path);
    assert.equal(await page.getAttribute('#cleanup-freed', 'title'), exact(want.freed_bytes), path);
    assert.equal(Number(await page.getAttribute('#cleanup-deleted', 'data-count')), want.tags_deleted, path);
  }
  await shot('08-cleanup-preview');

  // ---- log out ----
  await page.click('#logout');
  await ready('login');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'the token is gone');
  await shot('05-logged-out');

  // ---- too many wrong passwords: 429 and how long to wait (as another client address:
  // the service trusts X-Forwarded-For from loopback, so the real one stays unlocked) ----
  await page.setExtraHTTPHeaders({ 'X-Forwarded-For': '10.9.9.9' });
  let message = '';
  for (let i = 0; i < 10 && !message.startsWith('Too many'); i++) {
    await page.fill('#user', user);
    await page.fill('#password', 'wrong');
    await page.click('#login-submit');
    await ready('login-error');
    message = await page.textContent('#login-error');
  }
  assert.match(message, /^Too many attempts: wait \d+ seconds? before trying again\.$/);
  await shot('06-login-rate-limited');
  await page.setExtraHTTPHeaders({});

  // ---- a browser on a data route without a token is told where to log in ----
  const r = await page.goto(base + '/repositories');
  assert.equal(r.status(), 401);
  assert.equal(await page.getAttribute('a[href$="/"]', 'href'), new URL(url).pathname);

  assert.deepEqual(foreign, [], 'requests to another origin');
  assert.deepEqual(problems, [], 'console errors');
  const unexpected = failedResponses.filter((f) => !expected.some((e) => e.status === f.status && e.path.test(new URL(f.url).pathname)));
  assert.deepEqual(unexpected, [], 'unexpected error answers');
  console.log('dashboard timings (indicative): ' + JSON.stringify(timings));
  console.log('dashboard: all checks passed; screenshots in ' + shots);
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(e);
  console.error('problems so far: ' + JSON.stringify({ problems, foreign, failedResponses }));
  process.exitCode = 1;
} finally {
  await context.close();
  if (!process.env.BROWSER_PROFILE) rmSync(profile, { recursive: true, force: true });
}
