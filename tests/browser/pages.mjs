// tests/browser/pages.mjs: the smaller pages in Debian's Chromium (headless,
// through playwright-core), as a visitor would meet them: the login page
// of a server without USERS (it says how to add users) and of one with
// users (it does not), the notice after logging out, the styled 404 page
// of an unknown embedded chart and of a page that is not there (JSON for
// the API), and the shared chart embedded by "another site" (an HTTP
// server of this script, on another port) at 600 × 300 and 400 × 200, as
// an iframe and through the .js form, whose iframe also follows its
// container's width. axe-core checks the pages (no serious or critical
// violation); no console error, no Content-Security-Policy violation.
// Started by tests/browser/test_pages.py, which sets GW_URL (the server
// with USERS, ending in "/"), GW_URL_NO_USERS (the one without), GW_USER,
// GW_PASSWORD, GW_CHART (a shared chart's id), GW_OUT (screenshots) and
// CHROMIUM. Prints one line per step and "N passed, N failed"; exits 1 on
// failure.

import { assert, finish, launch, same, step, watchCsp } from './harness.mjs';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const URL_ = process.env.GW_URL;
const BARE = process.env.GW_URL_NO_USERS;
const CHART = process.env.GW_CHART;
const OUT = process.env.GW_OUT;
const MISSING = '00000000-0000-4000-8000-000000000000';
const HINT = 'Users and their password hashes are in USERS of gottwall.conf; make a hash with gottwall passwd.';
fs.mkdirSync(OUT, { recursive: true });


// "Another site": pages that embed the chart, on a port of their own.
const chartUrl = (ext, q = '') => `${URL_}api/v1/embedded/${CHART}.${ext}${q}`;
const hostPages = {
  '/iframe': (q) => `<iframe src="${chartUrl('html')}" width="${q.get('w')}" height="${q.get('h')}" title="Orders" style="border:0"></iframe>`,
  '/js': (q) => `<div id="box" style="width:${q.get('box')}px"><script src="${chartUrl('js', `?${q.get('js')}`)}"></script></div>`,
  '/missing': () => `<iframe src="${URL_}api/v1/embedded/${MISSING}.html" width="400" height="300" title="A chart" style="border:0"></iframe>`,
};
const site = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  const make = hostPages[u.pathname];
  res.writeHead(make ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(make ? '<!doctype html><html lang="en"><head><title>Another site</title><link rel="icon" href="data:,"></head>'
    + `<body style="margin:0"><main>${make(u.searchParams)}</main></body></html>` : 'no');
});
await new Promise((ok) => site.listen(0, '127.0.0.1', ok));
const SITE = `http://127.0.0.1:${site.address().port}`;

const { userDir, context, page } = await launch({ viewport: { width: 1024, height: 768 } });
// Console errors and CSP violations of every page and frame; the 404s this
// script asks for on purpose are the only failed loads allowed.
const consoleErrors = [];
const cspViolations = await watchCsp(context, page);
const expected404 = [`api/v1/embedded/${MISSING}.html`, 'nowhere', 'api/v1/test_project/bogus'];
page.on('console', (m) => {
  if (m.type() !== 'error') return;
  const at = (m.location() && m.location().url) || '';
  if (/^Failed to load resource: .* 404/.test(m.text()) && expected404.some((p) => at === URL_ + p)) return;
  consoleErrors.push(`${m.text()} (${at})`);
});
page.on('pageerror', (e) => consoleErrors.push(String(e)));
const shot = (name, p = page) => p.screenshot({ path: path.join(OUT, `${name}.png`) });

// axe-core in a page or frame (through the DevTools protocol: not an
// inline script, which the policy would block): its violations, printed;
// none may be serious or critical.
const axeSrc = fs.readFileSync(new URL('../../node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
async function axeCheck(target, what) {
  await target.evaluate(axeSrc);
  const found = await target.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, at: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  for (const v of found) console.log(`  axe (${what}): ${v.impact} ${v.id} ×${v.nodes} at ${v.at.join(', ')}`);
  same(found.filter((v) => v.impact === 'serious' || v.impact === 'critical'), [], `serious or critical axe violations on ${what}`);
}

// Where the parts of the embedded chart page are, in its own viewport
// (the frame), and what it drew.
const measure = (frame) => frame.evaluate(() => {
  const box = (sel) => {
    const r = document.querySelector(sel).getBoundingClientRect();
    return { l: r.left, t: r.top, r: r.right, b: r.bottom };
  };
  const { u } = window.gwEmbed.chart;
  return {
    vw: window.innerWidth,
    vh: window.innerHeight,
    scroll: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
    status: document.getElementById('status').textContent,
    boxes: {
      head: box('.embed-head'), title: box('#title'), renderers: box('#renderers'),
      main: box('#chart'), plot: box('#chart .u-wrap'), canvas: box('#chart canvas'),
      legend: box('#chart .u-legend'), status: box('#status'), note: box('.embed-note'),
    },
    uplot: [u.width, u.height],
    data: u.data.map((a) => Array.from(a)),
  };
});

// The chart fills the frame (w × h) and nothing is cut: every part is in
// the frame's viewport, the status line under the chart, the chart (plot
// and legend) fills what is left between the header and the footer.
async function checkFits(frame, w, h, what) {
  const m = await measure(frame);
  same([m.vw, m.vh], [w, h], `${what}: the page's viewport is the frame`);
  same(m.scroll, [w, h], `${what}: nothing overflows the frame (scroll size)`);
  for (const [name, b] of Object.entries(m.boxes)) {
    assert(b.l >= -0.5 && b.t >= -0.5 && b.r <= w + 0.5 && b.b <= h + 0.5,
      `${what}: ${name} is cut by the frame: ${JSON.stringify(b)} in ${w} × ${h}`);
  }
  const { main, plot, canvas, legend, status, head } = m.boxes;
  assert(/^day buckets, \d{4}-\d{2}-\d{2} – \d{4}-\d{2}-\d{2}$/.test(m.status), `${what}: the status line says ${JSON.stringify(m.status)}`);
  assert(status.b - status.t >= 10, `${what}: the status line has no height: ${JSON.stringify(status)}`);
  assert(status.t >= legend.b - 0.5 && status.t >= main.b - 0.5, `${what}: the status line overlaps the chart: ${JSON.stringify(m.boxes)}`);
  assert(main.t >= head.b - 0.5, `${what}: the chart overlaps the header`);
  // The canvas fits its plot, the plot and legend fit the chart's area.
  assert(canvas.l >= plot.l - 0.5 && canvas.r <= plot.r + 0.5 && canvas.t >= plot.t - 0.5 && canvas.b <= plot.b + 0.5,
    `${what}: the canvas is outside its plot: ${JSON.stringify([canvas, plot])}`);
  assert(plot.t >= main.t - 0.5 && legend.b <= main.b + 0.5 && plot.r <= main.r + 0.5,
    `${what}: the chart is bigger than its area: ${JSON.stringify([plot, legend, main])}`);
  // It fills that area: the frame's width less the page's padding, and
  // the height down to the footer (a plot of 40 px at least).
  assert(m.uplot[0] >= w - 24 - 1 && main.r - main.l >= w - 24 - 1, `${what}: the chart is ${m.uplot[0]} px wide in a frame of ${w}`);
  assert(main.b - legend.b <= 2, `${what}: ${main.b - legend.b} px left under the chart`);
  assert(m.uplot[1] > 40, `${what}: the plot is only ${m.uplot[1]} px high`);
  return m;
}

// The drawn series are the chart's JSON.
async function checkData(frame, m, what) {
  const j = await frame.evaluate(async () => (await fetch(document.body.dataset.json + location.search)).json());
  same(m.data[1], j.metrics[0].range.map((p) => p[1]), `${what}: series 1 (orders)`);
  same(m.data[2], j.metrics[1].range.map((p) => p[1]), `${what}: series 2 (paid)`);
  same(j.metrics[0].range.length, 30, `${what}: 30 days`);
}

// Opens a page of the other site and the chart's frame in it.
async function hostFrame(p) {
  await page.goto(SITE + p);
  const el = await page.waitForSelector('iframe');
  const frame = await el.contentFrame();
  await frame.waitForSelector('body[data-ready="1"]');
  return { el, frame };
}

let exitCode = 0;
try {
  await step('without USERS, the login page says how to add users', async () => {
    await page.goto(`${BARE}login`);
    const setup = await page.waitForSelector('#setup');
    assert(await setup.isVisible(), 'the setup hint is hidden');
    same((await setup.textContent()).replace(/\s+/g, ' ').trim(), `No users yet. ${HINT}`, 'the setup hint');
    same(await page.textContent('[role=status]'), '', 'no notice');
    await shot('01-login-no-users');
    await axeCheck(page, 'the login page without USERS');
  });

  await step('with USERS, visitors are not told how the server is set up', async () => {
    await page.goto(`${URL_}login`);
    same(await page.$('#setup'), null, 'the setup hint');
    const text = await page.innerText('body');
    assert(!text.includes('gottwall passwd') && !text.includes('USERS'), `the page says: ${text}`);
    const notice = await page.$('[role=status]');
    same([await notice.textContent(), await notice.isVisible()], ['', false], 'an empty, hidden notice');
    await shot('02-login');
    await axeCheck(page, 'the login page');
  });

  await step('after logging out the login page says "You have logged out." in a status region', async () => {
    await page.goto(URL_);
    assert(page.url().includes('/login?next='), `not sent to the login page: ${page.url()}`);
    await page.fill('input[name=email]', process.env.GW_USER);
    await page.fill('input[name=password]', process.env.GW_PASSWORD);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    await page.waitForSelector('body[data-loaded="1"]');
    await Promise.all([page.waitForNavigation(), page.click('#logout button[type=submit]')]);
    const u = new URL(page.url());
    same([u.pathname, u.search], ['/login', '?logged_out=1'], 'where the logout went');
    const notice = await page.waitForSelector('[role=status]');
    same([await notice.textContent(), await notice.isVisible()], ['You have logged out.', true], 'the notice');
    same(await page.$('#setup'), null, 'no setup hint');
    same((await context.cookies()).filter((c) => c.name === 'gw_session').length, 0, 'the cookie is gone');
    await shot('03-logged-out');
    await axeCheck(page, 'the login page after a logout');
    // Logged in again from there, the dashboard opens; a plain visit of
    // the login page after that says nothing of a logout.
    await page.fill('input[name=email]', process.env.GW_USER);
    await page.fill('input[name=password]', process.env.GW_PASSWORD);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    await page.waitForSelector('body[data-loaded="1"]');
    same(new URL(page.url()).pathname, '/', 'the dashboard after logging in again');
    await context.clearCookies();
    await page.goto(`${URL_}login`);
    same(await page.textContent('[role=status]'), '', 'the notice on a plain visit');
  });

  // A styled 404: status, an h1, style.css applied, landmarks, a link home.
  async function check404(url, h1, text, what) {
    const r = await page.goto(url);
    same([r.status(), r.headers()['content-type']], [404, 'text/html; charset=utf-8'], `${what}: the answer`);
    same(await page.textContent('h1'), h1, `${what}: the heading`);
    assert((await page.textContent('main')).includes(text), `${what}: the message`);
    const styled = await page.evaluate(() => ({
      sheets: [...document.styleSheets].map((s) => new URL(s.href).pathname),
      rules: document.styleSheets[0].cssRules.length,
      card: getComputedStyle(document.querySelector('main')).borderRadius,
      landmarks: [...document.querySelectorAll('main, nav')].map((e) => e.localName),
      link: [document.querySelector('nav a').textContent, document.querySelector('nav a').href],
    }));
    same(styled.sheets, ['/static/style.css'], `${what}: its stylesheet`);
    assert(styled.rules > 50, `${what}: style.css did not load (${styled.rules} rules)`);
    same(styled.card, '14px', `${what}: the card of style.css`);
    same(styled.landmarks, ['main', 'nav'], `${what}: landmarks`);
    same(styled.link, ['Go to the dashboard', URL_], `${what}: the link back`);
    await axeCheck(page, what);
  }

  await step('an unknown embedded chart: a styled 404 page, also in a frame of another site', async () => {
    await check404(`${URL_}api/v1/embedded/${MISSING}.html`, 'Chart not found',
      `There is no embedded chart ${MISSING}: the link is wrong, or the chart is no longer shared.`,
      'the unknown chart');
    await shot('04-chart-not-found');
    await page.goto(`${SITE}/missing`);
    const frame = await (await page.waitForSelector('iframe')).contentFrame();
    await frame.waitForSelector('h1');
    same(await frame.textContent('h1'), 'Chart not found', 'the 404 page in the frame');
    same(await frame.$eval('nav a', (a) => a.target), '_top', 'the link leaves the frame');
    await shot('05-chart-not-found-framed');
  });

  await step('a page that is not there: the styled 404; the API still answers JSON', async () => {
    await check404(`${URL_}nowhere`, 'Page not found', 'There is no page at /nowhere.', 'a page not there');
    await shot('06-page-not-found');
    const api = await page.evaluate(async () => {
      const r = await fetch('api/v1/test_project/bogus');
      return [r.status, r.headers.get('content-type'), await r.json()];
    });
    same(api, [404, 'application/json', { error: 'no such API route: /api/v1/test_project/bogus (see docs/api.md)' }],
      'an unknown API route');
  });

  await step('the chart in an iframe of another site fills it at 600 × 300 and 400 × 200; the status line is not cut', async () => {
    for (const [w, h] of [[600, 300], [400, 200]]) {
      const { frame } = await hostFrame(`/iframe?w=${w}&h=${h}`);
      const m = await checkFits(frame, w, h, `iframe ${w} × ${h}`);
      await checkData(frame, m, `iframe ${w} × ${h}`);
      console.log(`  iframe ${w} × ${h}: uPlot ${m.uplot.join(' × ')}, status at ${m.boxes.status.t.toFixed(1)}–${m.boxes.status.b.toFixed(1)}`);
      await shot(`07-iframe-${w}x${h}`);
      // Another renderer is drawn to the same size.
      await frame.click('#renderers button[data-renderer=bar]');
      same(await frame.$eval('#renderers button[data-renderer=bar]', (b) => b.getAttribute('aria-pressed')), 'true', 'bar pressed');
      await checkFits(frame, w, h, `iframe ${w} × ${h}, bars`);
      if (w === 400) await axeCheck(frame, 'the embedded chart at 400 × 200');
    }
  });

  await step('the .js form writes an iframe of 600 × 300 and 400 × 200, titled after the chart, filled by the chart', async () => {
    for (const [w, h] of [[600, 300], [400, 200]]) {
      const { el, frame } = await hostFrame(`/js?box=800&js=${encodeURIComponent(`width=${w}&height=${h}`)}`);
      const b = await el.boundingBox();
      same([b.width, b.height], [w, h], `the .js iframe's size at ${w} × ${h}`);
      same(await el.getAttribute('title'), 'Orders per day', 'the iframe\'s title');
      const m = await checkFits(frame, w, h, `.js ${w} × ${h}`);
      await checkData(frame, m, `.js ${w} × ${h}`);
      await shot(`08-js-${w}x${h}`);
    }
    // Wider than its container: as wide as the container.
    const { el, frame } = await hostFrame(`/js?box=400&js=${encodeURIComponent('width=600&height=200')}`);
    const b = await el.boundingBox();
    same([b.width, b.height], [400, 200], 'an iframe of 600 px in a box of 400');
    await checkFits(frame, 400, 200, '.js 600 px in a box of 400');
  });

  await step('the .js form without a width fills its container and follows it when it narrows', async () => {
    const { el, frame } = await hostFrame(`/js?box=600&js=${encodeURIComponent('height=300')}`);
    const b = await el.boundingBox();
    same([b.width, b.height], [600, 300], 'the iframe in a box of 600 px');
    await checkFits(frame, 600, 300, '.js in a box of 600');
    await page.$eval('#box', (e) => { e.style.width = '400px'; });
    await frame.waitForFunction(() => window.gwEmbed.chart.u.width < 400);
    const m = await checkFits(frame, 400, 300, '.js after the box narrowed to 400');
    console.log(`  after the box narrowed: uPlot ${m.uplot.join(' × ')}`);
    await shot('09-js-fluid-400');
  });

  await step('the chart page on its own fills the window; axe-core finds nothing serious on it', async () => {
    await page.setViewportSize({ width: 600, height: 300 });
    await page.goto(chartUrl('html'));
    await page.waitForSelector('body[data-ready="1"]');
    await checkFits(page.mainFrame(), 600, 300, 'the chart page in a window of 600 × 300');
    await axeCheck(page, 'the embedded chart page');
    await page.setViewportSize({ width: 1024, height: 768 });
  });

  await step('no errors in the browser console, no Content-Security-Policy violation', async () => {
    same(cspViolations, [], 'Content-Security-Policy violations');
    same(consoleErrors, [], 'console errors');
  });
} catch (e) {
  exitCode = 1;
  try { await shot('failure'); } catch (_) { /* ignore */ }
} finally {
  await context.close();
  site.close();
  fs.rmSync(userDir, { recursive: true, force: true });
}
finish(exitCode);
