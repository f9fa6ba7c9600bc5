// tests/browser/dashboard.mjs: drives the dashboard in Debian's Chromium
// (headless, through playwright-core) against a running gottwall, as a
// person would: log in, add a graph with two series, compare what uPlot
// plots with the API's numbers, switch the period, add a table, share the
// graph and open its embedded page, reload and find the dashboard again,
// export a table whose filter values are spreadsheet formulas as CSV,
// all under the pages' Content-Security-Policy: any violation fails.
// Started by tests/browser/test_dashboard.py, which sets:
//   GW_URL (the dashboard, ending in "/"), GW_USER, GW_PASSWORD,
//   GW_PROJECT, GW_OUT (a directory for screenshots), CHROMIUM, GW_INGEST
//   (the HTTP transport's incr URL) and GW_BASIC ("public:private").
// Prints one line per step and "N passed, N failed"; exits 1 on failure.

import { assert, finish, launch, same, step, watchCsp } from './harness.mjs';
import fs from 'node:fs';
import path from 'node:path';

const URL_ = process.env.GW_URL;
const OUT = process.env.GW_OUT;
const PROJECT = process.env.GW_PROJECT || 'test_project';
fs.mkdirSync(OUT, { recursive: true });


const { userDir, context, page } = await launch();
const consoleErrors = [];
// Content-Security-Policy violations: Chromium's console messages, and the
// securitypolicyviolation events of every page (the embedded one too).
const cspViolations = await watchCsp(context, page);
// The policy each page came with.
const documents = [];
page.on('response', (r) => {
  if (r.request().resourceType() === 'document' && r.status() === 200) {
    documents.push({ path: new URL(r.url()).pathname, csp: r.headers()['content-security-policy'] || null,
      frame: r.headers()['x-frame-options'] || null });
  }
});
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
page.on('response', (r) => { if (r.status() >= 400 && !/\/login$/.test(r.url())) consoleErrors.push(`${r.status()} ${r.url()}`); });
const shot = (name) => page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });

// The API's numbers, fetched by the page with its session.
const apiStats = (query) => page.evaluate(async (q) => {
  const r = await fetch(`api/v1/${q}`, { headers: { 'X-Requested-With': 'gottwall' } });
  return r.json();
}, query);

// The range query the page uses now (period, from_date, to_date).
const pageQuery = () => page.evaluate(() => window.gw.query());
const stats = async (q) => apiStats(`${q}&${await pageQuery()}`);

// Waits for a widget to (re)draw after an action.
async function afterRedraw(sel, action) {
  const before = await page.$eval(sel, (e) => e.dataset.ready || '0').catch(() => '0');
  await action();
  await page.waitForFunction(([s, b]) => {
    const e = document.querySelector(s);
    return e && e.dataset.ready && e.dataset.ready !== b;
  }, [sel, before]);
}

let exitCode = 0;
let shareLink = null;
try {
  await step('login page, then wrong and right password', async () => {
    await page.goto(URL_);
    assert(page.url().includes('/login?next='), `not sent to the login page: ${page.url()}`);
    await shot('01-login');
    await page.fill('input[name=email]', process.env.GW_USER);
    await page.fill('input[name=password]', 'wrong password');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert((await page.textContent('[role=alert]')).includes('Wrong e-mail or password.'), 'no error shown');
    await page.fill('input[name=password]', process.env.GW_PASSWORD);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    await page.waitForSelector('body[data-loaded="1"]');
    assert((await page.textContent('#user')) === process.env.GW_USER, 'user not shown');
    same(await page.$eval('#project', (s) => s.value), PROJECT, 'project');
  });

  await step('empty dashboard says what to do', async () => {
    const text = await page.textContent('#empty');
    assert(text.includes('This dashboard is empty'), `empty state: ${text}`);
    await page.selectOption('#project', 'shop');
    await page.waitForFunction(() => document.querySelector('#empty').textContent.includes('No metrics yet'));
    const curl = await page.textContent('#empty pre.curl');
    assert(curl.includes("curl -u 'shop_public:PRIVATE_KEY'") && curl.includes('/api/v1/shop/incr'), curl);
    await shot('02-empty-project');
    await page.selectOption('#project', PROJECT);
    await page.waitForFunction(() => document.querySelector('#empty').textContent.includes('This dashboard is empty'));
  });

  const graph = '.widget[data-type=graph]';
  await step('add a graph with two series; uPlot plots the API numbers', async () => {
    same(await page.$eval('body', (b) => b.dataset.mode), 'view', 'the page opens in view mode');
    assert(!(await page.isVisible('#add-graph')), '"+ Graph" shown in view mode');
    await page.click('#edit-toggle');
    same(await page.$eval('#edit-toggle', (b) => b.getAttribute('aria-pressed')), 'true', 'Edit pressed');
    await page.selectOption('#range', '30d');
    await page.click('#periods button[data-period=day]');
    same(await page.$eval('#periods button[data-period=day]', (b) => b.getAttribute('aria-pressed')), 'true', 'Day pressed');
    await afterRedraw(graph, () => page.click('#add-graph'));
    await page.selectOption(`${graph} .series-row:nth-child(1) select.metric`, 'orders');
    await afterRedraw(graph, () => page.click(`${graph} .add-series`));
    await afterRedraw(graph, () => page.selectOption(`${graph} .series-row:nth-child(2) select.filter`,
      JSON.stringify(['status', 'paid'])));
    const plotted = await page.$eval(graph, (e) => {
      const v = window.gw.views.get(e.dataset.id);
      return { data: v.chart.u.data.map((a) => Array.from(a)), labels: v.chart.u.series.slice(1).map((s) => s.label) };
    });
    const total = await stats(`${PROJECT}/stats?name=orders`);
    const paid = await stats(`${PROJECT}/stats?name=orders&filter_name=status&filter_value=paid`);
    same(total.range.length, 31, 'the last 30 days are 31 day buckets, ending today');
    same(plotted.data[0], total.range.map((p) => p[0]), 'x values');
    same(plotted.data[1], total.range.map((p) => p[1]), 'series 1 (orders)');
    same(plotted.data[2], paid.range.map((p) => p[1]), 'series 2 (orders, status=paid)');
    same(plotted.labels, ['orders', 'orders · status=paid'], 'legend');
    assert(total.max > 0 && paid.max > 0, 'the test data is not there');
    // Hover: the legend shows the value under the cursor.
    const box = await page.$eval(`${graph} .u-over`, (e) => { const r = e.getBoundingClientRect(); return { x: r.right - 3, y: r.top + r.height / 2 }; });
    await page.mouse.move(box.x, box.y);
    const legend = await page.$$eval(`${graph} .u-legend .u-value`, (els) => els.map((e) => e.textContent));
    const lastI = total.range.length - 1;
    same(legend.slice(1), [String(total.range[lastI][1]), String(paid.range[lastI][1])], 'legend values on hover');
    // The title is editable.
    await page.click(`${graph} .title`);
    await page.keyboard.press('Control+A');
    await page.keyboard.type('Orders per day');
    await page.keyboard.press('Enter');
    same(await page.textContent(`${graph} .title`), 'Orders per day', 'title');
    await shot('03-graph-day');
  });

  await step('last 24 hours by hour: 25 buckets ending at the current one, then renderers', async () => {
    await afterRedraw(graph, () => page.click('#periods button[data-period=hour]'));
    await afterRedraw(graph, () => page.selectOption('#range', '24h'));
    const xs = await page.$eval(graph, (e) => Array.from(window.gw.views.get(e.dataset.id).chart.u.data[0]));
    const api = await stats(`${PROJECT}/stats?name=orders`);
    same(xs, api.range.map((p) => p[0]), 'hour buckets');
    const hourNow = Math.floor(Date.now() / 3600000) * 3600;
    assert(xs.length === 25 && xs[1] - xs[0] === 3600 && xs[24] === hourNow,
      `not the 25 hours up to ${hourNow}: ${xs.length}, last ${xs[xs.length - 1]}`);
    await afterRedraw(graph, () => page.selectOption(`${graph} select.renderer`, 'stacked'));
    assert(await page.isVisible(`${graph} .stack-note`), 'the stacked chart does not say that it stacks');
    const st = await page.$eval(graph, (e) => { const c = window.gw.views.get(e.dataset.id).chart; return { raw: c.raw.map((a) => Array.from(a)), drawn: c.u.data.map((a) => Array.from(a)) }; });
    same(st.drawn[2], st.raw[2].map((y, i) => (st.raw[1][i] || 0) + (y || 0)), 'the second series is drawn on the first');
    same(st.raw[2], (await stats(`${PROJECT}/stats?name=orders&filter_name=status&filter_value=paid`)).range.map((p) => p[1]), 'while its own values stay the API\'s (tooltip and legend)');
    await shot('04-graph-hour-stacked');
    await afterRedraw(graph, () => page.selectOption(`${graph} select.renderer`, 'bar'));
    await afterRedraw(graph, () => page.selectOption('#range', '30d'));
    await afterRedraw(graph, () => page.click('#periods button[data-period=day]'));
    await shot('05-graph-day-bar');
  });

  const table = '.widget[data-type=table]';
  await step('add a table split by status; sort it', async () => {
    await page.click('#add-table');
    await page.waitForSelector(`${table} table.data tbody tr`);
    // A new table opens on the first metric with filters (api_ms): pick orders.
    await afterRedraw(table, () => page.selectOption(`${table} select.metric`, 'orders'));
    const api = await stats(`${PROJECT}/stats_dataset?name=orders&filter_name=status`);
    const rows = await page.$$eval(`${table} tbody tr`, (trs) => trs.map((tr) => [...tr.children].map((td) => td.title || td.textContent)));
    const values = Object.keys(api.data);
    same(rows.map((r) => r[0]).sort(), values.slice().sort(), 'table rows');
    for (const r of rows) {
      same(r.slice(1, -1).map(Number), api.data[r[0]].range.map((p) => p[1]), `cells of ${r[0]}`);
    }
    // Sorted by total, descending; a click on the name column sorts by name.
    const totals = rows.map((r) => Number(r[r.length - 1]));
    same(totals, totals.slice().sort((a, b) => b - a), 'sorted by total');
    await page.click(`${table} thead th[data-col="-2"] button`);
    const names = await page.$$eval(`${table} tbody tr > :first-child`, (tds) => tds.map((td) => td.textContent));
    same(names, names.slice().sort(), 'sorted by name');
    same(await page.$eval(`${table} thead th[data-col="-2"]`, (th) => th.getAttribute('aria-sort')), 'ascending', 'aria-sort');
    // From the keyboard: the focused header's button, Enter, sorts again.
    await page.focus(`${table} thead th[data-col="-2"] button`);
    await page.keyboard.press('Enter');
    const back = await page.$$eval(`${table} tbody tr > :first-child`, (tds) => tds.map((td) => td.textContent));
    same(back, names.slice().reverse(), 'sorted by name, descending, with the keyboard');
    await shot('06-graph-and-table');
  });

  await step('CSV download of the graph', async () => {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`${graph} button.csv`)]);
    const file = path.join(OUT, 'graph.csv');
    await dl.saveAs(file);
    const lines = fs.readFileSync(file, 'utf8').trim().split(/\r\n/);
    same(lines[0], 'bucket,time_utc,orders,orders · status=paid', 'CSV header');
    same(lines.length, 32, 'CSV rows: a header and 31 days');
  });

  await step('a graph is made wider from the keyboard (Shift+arrows on its grip)', async () => {
    const width = () => page.$eval(graph, (e) => window.gw.views.get(e.dataset.id).chart.u.width);
    const before = await width();
    await page.focus(`${graph} button.grip`);
    for (let i = 0; i < 6; i++) await page.keyboard.press('Shift+ArrowRight');
    same(await page.$eval(graph, (e) => e.dataset.cols), '12', 'twelve columns');
    await page.waitForFunction(([s, b]) => {
      const e = document.querySelector(s);
      return window.gw.views.get(e.dataset.id).chart.u.width > b * 1.5;
    }, [graph, before]);
  });

  await step('share the graph as an embedded chart', async () => {
    await page.click(`${graph} button.share`);
    await page.waitForSelector('#share-dialog[open]');
    shareLink = await page.$eval('#share-dialog', (d) => d.dataset.html);
    assert(/\/api\/v1\/embedded\/[0-9a-f-]{36}\.html\?from_date=\d+&to_date=\d+&period=day$/.test(shareLink), shareLink);
    const fields = await page.$$eval('#share-links input', (els) => els.map((e) => e.value));
    assert(fields[1].startsWith('<iframe src="') && fields[1].includes('.html?from_date=')
      && /\.js\?from_date=\d+&to_date=\d+&period=day"><\/script>$/.test(fields[2]), fields.join('\n'));
    // No clipboard on this page (plain HTTP is not a secure context off
    // localhost, and headless Chromium grants none): "Copy" selects the
    // text for a manual copy instead of claiming it copied.
    const copy = `#share-links .share-field:nth-child(1) button`;
    await page.click(copy);
    await page.waitForFunction((c) => document.querySelector(c).textContent !== 'Copy', copy);
    const said = await page.textContent(copy);
    const selected = await page.evaluate(() => { const i = document.activeElement; return i && i.tagName === 'INPUT' ? i.value.slice(i.selectionStart, i.selectionEnd) : ''; });
    assert((said === 'Copied' && await page.evaluate(() => window.isSecureContext && !!navigator.clipboard))
      || (said === 'Press Ctrl+C' && selected === shareLink), `Copy said ${said}, selected ${selected}`);
    await shot('07-share-dialog');
    await page.click('#share-dialog button[value=close]');
  });

  await step('Share again answers the same chart; the list of shared charts deletes it', async () => {
    const first = await page.$eval('#share-dialog', (d) => d.dataset.id);
    const title = await page.textContent(`${graph} .title`);
    await page.click(`${graph} button.share`);
    await page.waitForSelector('#share-dialog[open]');
    same(await page.$eval('#share-dialog', (d) => d.dataset.id), first, 'the chart shared again');
    assert((await page.textContent('#share-what')).endsWith('It was shared before: these are its links (no new chart was stored).'),
      await page.textContent('#share-what'));
    await page.click('#shared summary');
    await page.waitForSelector('#shared-list li');
    same(await page.$$eval('#shared-list li', (lis) => lis.map((li) => [li.dataset.id, li.className, li.querySelector('a').textContent])),
      [[first, 'current', title]], 'the shared charts');
    same(await page.textContent('#shared-count'), '(1)', 'their count');
    await shot('07b-shared-list');
    await page.click('#shared-list li button.danger');
    await page.waitForFunction(() => document.querySelector('#shared-status').textContent.startsWith('Deleted'));
    same(await page.textContent('#shared-status'), `Deleted “${title}”: its links no longer work.`, 'the status');
    same(await page.$$eval('#share-links input', (e) => e.length), 0, 'its links are gone from the dialog');
    same(await page.textContent('#shared-list'), 'No chart of this project is shared.', 'the list');
    same((await context.request.get(shareLink)).status(), 404, 'the deleted chart\'s page');
    await page.click('#share-dialog button[value=close]');
    // Shared once more: a new chart, with new links.
    await page.click(`${graph} button.share`);
    await page.waitForSelector('#share-dialog[open]');
    const again = await page.$eval('#share-dialog', (d) => d.dataset.id);
    assert(again && again !== first, `a new chart: ${again}`);
    shareLink = await page.$eval('#share-dialog', (d) => d.dataset.html);
    same((await context.request.get(shareLink)).status(), 200, 'the new chart\'s page');
    await page.click('#share-dialog button[value=close]');
  });

  await step('reload: the dashboard is still there (saved on the server)', async () => {
    await page.evaluate(() => window.gw.flush());
    await page.reload();
    await page.waitForSelector('body[data-loaded="1"]');
    await page.waitForSelector(`${graph}[data-ready]`);
    same(await page.$$eval('.widget', (ws) => ws.map((w) => w.dataset.type)), ['graph', 'table'], 'widgets');
    same(await page.textContent(`${graph} .title`), 'Orders per day', 'title kept');
    same(await page.$$eval(`${graph} .series-row`, (r) => r.length), 2, 'series kept');
    same(await page.$eval(`${graph} select.renderer`, (s) => s.value), 'bar', 'renderer kept');
    same(await page.$eval('#periods button.active', (b) => b.dataset.period), 'day', 'period kept');
    same(await page.$eval(graph, (e) => e.classList.contains('wide')), true, 'full width kept');
    same(await page.$eval('#range', (s) => s.value), '30d', 'range kept (in the URL)');
    await page.waitForSelector(`${table} table.data`);
    await shot('08-after-reload');
  });

  await step('a timing metric plots a percentile (p95 by default); the stat can be picked', async () => {
    const before = await page.$$eval(graph, (es) => es.map((e) => e.dataset.id));
    await page.click('#add-graph');
    await page.waitForFunction((n) => document.querySelectorAll('.widget[data-type=graph]').length === n, before.length + 1);
    const id = (await page.$$eval(graph, (es) => es.map((e) => e.dataset.id))).find((x) => !before.includes(x));
    const g = `.widget[data-id="${id}"]`;
    await afterRedraw(g, () => page.selectOption(`${g} .series-row:nth-child(1) select.metric`, 'api_ms'));
    same(await page.$eval(`${g} select.stat`, (s) => s.value), 'p95', 'the default statistic of a timing');
    const plotted = async () => page.$eval(g, (e) => {
      const v = window.gw.views.get(e.dataset.id);
      return { ys: Array.from(v.chart.u.data[1]), label: v.chart.u.series[1].label };
    });
    const p95 = await stats(`${PROJECT}/stats?name=api_ms&stat=p95`);
    let got = await plotted();
    same(got.ys, p95.range.map((p) => p[1]), 'the p95 of each day');
    same(got.label, 'api_ms p95', 'legend names the statistic');
    await afterRedraw(g, () => page.selectOption(`${g} select.stat`, 'p50'));
    const p50 = await stats(`${PROJECT}/stats?name=api_ms&stat=p50`);
    got = await plotted();
    same(got.ys, p50.range.map((p) => p[1]), 'the p50 of each day');
    const today = p95.range.length - 1;
    assert(p95.range[today][1] > p50.range[today][1], `p95 ${p95.range[today][1]} not above p50 ${p50.range[today][1]}`);
    // The latency band: p50 to p99 shaded, the API's numbers.
    await afterRedraw(g, () => page.click(`${g} button.band`));
    same(await page.$eval(`${g} button.band`, (b) => b.getAttribute('aria-pressed')), 'true', 'band toggle pressed');
    const p99 = await stats(`${PROJECT}/stats?name=api_ms&stat=p99`);
    const band = await page.$eval(g, (e) => {
      const u = window.gw.views.get(e.dataset.id).chart.u;
      return { n: u.series.length, lo: Array.from(u.data[2]), hi: Array.from(u.data[3]),
        labels: u.series.slice(2).map((s) => s.label), bands: u.bands.map((b) => b.series) };
    });
    same(band.n, 4, 'the series and its band (p50, p99)');
    same(band.lo, p50.range.map((p) => p[1]), 'band low: p50');
    same(band.hi, p99.range.map((p) => p[1]), 'band high: p99');
    same(band.labels, ['api_ms p50 p50', 'api_ms p50 p99'], 'band labels');
    same(band.bands, [[3, 2]], 'one band, p99 over p50');
    await shot('08c-timing-band');
    // A counter's series has no statistic to pick, nor a band.
    same(await page.$eval(`.widget[data-id="${before[0]}"] button.band`, (b) => b.hidden), true, 'no band for a counter');
    assert(!(await page.$(`.widget[data-id="${before[0]}"] select.stat`)), 'a counter graph shows a stat picker');
    await shot('08b-timing-p50');
    await page.click(`${g} .remove`);
    await page.waitForFunction((n) => document.querySelectorAll('.widget[data-type=graph]').length === n, before.length);
  });

  await step('a table of a timing metric shows a stat of each bucket (p95 by default); totals only where they add', async () => {
    const before = await page.$$eval(table, (es) => es.map((e) => e.dataset.id));
    await page.click('#add-table');
    await page.waitForFunction((n) => document.querySelectorAll('.widget[data-type=table]').length === n, before.length + 1);
    const id = (await page.$$eval(table, (es) => es.map((e) => e.dataset.id))).find((x) => !before.includes(x));
    const t = `.widget[data-id="${id}"]`;
    await afterRedraw(t, () => page.selectOption(`${t} select.metric`, 'api_ms'));
    same(await page.$eval(`${t} select.filter-name`, (s) => s.value), 'route', 'split by the timing\'s filter');
    same(await page.$eval(`${t} select.stat`, (s) => s.value), 'p95', 'the default statistic of a timing table');
    const cells = () => page.$$eval(`${t} tbody tr`, (trs) => trs.map((tr) => [...tr.children].map((td) => td.title || td.textContent)));
    const header = () => page.$$eval(`${t} thead th`, (ths) => ths.map((th) => th.textContent));
    const check = async (stat, withTotal) => {
      const api = await stats(`${PROJECT}/stats_dataset?name=api_ms&filter_name=route&stat=${stat}`);
      const rows = await cells();
      same(rows.map((r) => r[0]).sort(), ['/a', '/b'], `rows (${stat})`);
      for (const r of rows) {
        const want = api.data[r[0]].range.map((p) => p[1]);
        same(r.slice(1, 1 + want.length).map((c) => (c === '–' || c === 'null' ? null : Number(c))), want, `${stat} cells of ${r[0]}`);
        same(r.length, 1 + want.length + (withTotal ? 1 : 0), `${stat}: a total column ${withTotal ? '' : 'not '}shown`);
      }
      return { rows, api };
    };
    await check('p95', false);
    const h = await header();
    assert(h[h.length - 1] !== 'total', `a p95 table has no total column: ${h}`);
    // Today's p95 of /a (1, 3, .., 99) and of /b (2, .., 100) within 1 %.
    const today = (await cells()).map((r) => [r[0], Number(r[r.length - 1])]);
    for (const [route, v] of today) {
      const exact = route === '/a' ? 95 : 96; // nearest rank: the 48th of 50
      assert(Math.abs(v - exact) / exact <= 0.01, `${route} p95 today ${v}, exact ${exact}`);
    }
    same(await page.textContent(`${t} p.status`), "2 values × 31 day buckets · api_ms p95 · no total: the p95 of a range is not made of its buckets'", 'status names the statistic and why there is no total');
    await afterRedraw(t, () => page.selectOption(`${t} select.stat`, 'p50'));
    await check('p50', false);
    // max: the row's greatest; count: a sum.
    await afterRedraw(t, () => page.selectOption(`${t} select.stat`, 'max'));
    let { rows, api } = await check('max', true);
    same((await header()).slice(-1)[0], 'max', 'the max column');
    for (const r of rows) {
      const xs = api.data[r[0]].range.map((p) => p[1]).filter((x) => x != null);
      same(Number(r[r.length - 1]), Math.max(...xs), `max of ${r[0]}`);
    }
    await afterRedraw(t, () => page.selectOption(`${t} select.stat`, 'count'));
    ({ rows, api } = await check('count', true));
    for (const r of rows) same(Number(r[r.length - 1]), 50, `count of ${r[0]} over the range`);
    await shot('08d-timing-table');
    // It is saved with the widget.
    const saved = await page.evaluate((wid) => window.gw.state.store.doc.projects[window.gw.state.view.project].widgets.find((w) => String(w.id) === wid).stat, id);
    same(saved, 'count', 'the stat saved in the widget');
    await page.click(`${t} button.remove`);
  });

  await step('CSV export of a table neutralises formulas in text cells', async () => {
    // Filter values come from any key holder (or statsd without any):
    // text cells starting with = + - @ tab or CR get a leading quote, so
    // a spreadsheet shows them as text; numbers, negative ones too, stay.
    const hostile = [['=HYPERLINK("http://x")', 7], ['@SUM(1)', 6], ['+1+1', 5],
      ['-2', 4], ['\t=1', 3], ['\r=2', 2], ['plain', -2]];
    const r = await fetch(process.env.GW_INGEST, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Basic ${Buffer.from(process.env.GW_BASIC).toString('base64')}` },
      body: JSON.stringify(hostile.map(([s, v]) => ({ n: 'hostile', v, f: { '@source': s } }))),
    });
    same([r.status, await r.text()], [200, 'OK'], 'ingest');
    for (let i = 0; ; i++) { // stored after the next flush
      const m = await apiStats(`${PROJECT}/metrics`);
      if (m.hostile && m.hostile['@source'] && m.hostile['@source'].length === 7) break;
      assert(i < 200, `the events are not stored: ${JSON.stringify(m)}`);
      await page.waitForTimeout(100);
    }
    await page.reload();
    await page.waitForSelector('body[data-loaded="1"]');
    await page.waitForSelector(`${table} table.data`);
    await afterRedraw(table, () => page.selectOption(`${table} select.metric`, 'hostile'));
    same(await page.$eval(`${table} select.filter-name`, (s) => s.value), '@source', 'split by');
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`${table} button.csv`)]);
    const file = path.join(OUT, 'table.csv');
    await dl.saveAs(file);
    const got = fs.readFileSync(file, 'utf8');
    // The buckets from the API; the cells written out by hand.
    const api = await stats(`${PROJECT}/stats_dataset?name=hostile&filter_name=%40source`);
    const days = api.data.plain.range.map((p) => new Date(p[0] * 1000).toISOString().slice(0, 10));
    same(days.length, 31, 'day buckets');
    const zeros = '0,'.repeat(days.length - 1);
    const want = [
      `'@source,${days.join(',')},total`,
      `"'=HYPERLINK(""http://x"")",${zeros}7,7`,
      `'@SUM(1),${zeros}6,6`,
      `'+1+1,${zeros}5,5`,
      `'-2,${zeros}4,4`,
      `'\t=1,${zeros}3,3`,
      `"'\r=2",${zeros}2,2`,
      `plain,${zeros}-2,-2`,
    ].join('\r\n') + '\r\n';
    same(got, want, 'the CSV file');
  });

  await step('auto-refresh shows new events; paused, it does not', async () => {
    const last = () => page.$eval(graph, (e) => {
      const raw = window.gw.views.get(e.dataset.id).chart.raw;
      return raw[1][raw[1].length - 1];
    });
    const send = async (v) => {
      const r = await fetch(process.env.GW_INGEST, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Basic ${Buffer.from(process.env.GW_BASIC).toString('base64')}` },
        body: JSON.stringify({ n: 'orders', v }),
      });
      same([r.status, await r.text()], [200, 'OK'], 'ingest');
    };
    const before = await last();
    await send(100);
    await page.waitForFunction(([s, b]) => {
      const e = document.querySelector(s);
      const raw = window.gw.views.get(e.dataset.id).chart.raw;
      return raw[1][raw[1].length - 1] === b + 100;
    }, [graph, before], { timeout: 15000 });
    await page.click('#refresh-toggle');
    same(await page.textContent('#refresh-toggle'), 'Auto-refresh paused', 'toggle label');
    await send(1000);
    await page.waitForTimeout(5600); // longer than the 5 s refresh period
    same(await last(), before + 100, 'no refresh while paused');
    await page.click('#refresh-toggle'); // resuming refreshes at once
    await page.waitForFunction(([s, b]) => {
      const e = document.querySelector(s);
      const raw = window.gw.views.get(e.dataset.id).chart.raw;
      return raw[1][raw[1].length - 1] === b + 1100;
    }, [graph, before], { timeout: 2000 });
  });

  await step("a project's first event shows up on a chart by itself", async () => {
    // A new user: the project is empty, they send one event with curl and
    // watch the open page. No click: the page adds a graph of it.
    await page.selectOption('#project', 'shop');
    await page.waitForFunction(() => document.querySelector('#empty').textContent.includes('No metrics yet'));
    same(await page.$$eval('.widget', (ws) => ws.length), 0, 'widgets before the first event');
    const t0 = Date.now();
    const r = await fetch(process.env.GW_INGEST.replace('/test_project/', '/shop/'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Basic ${Buffer.from('shop_public:shop_private').toString('base64')}` },
      body: JSON.stringify({ n: 'signups', v: 3 }),
    });
    same([r.status, await r.text()], [200, 'OK'], 'ingest');
    await page.waitForFunction((s) => {
      const e = document.querySelector(s);
      if (!e || !window.gw.views.get(e.dataset.id) || !window.gw.views.get(e.dataset.id).chart) return false;
      const raw = window.gw.views.get(e.dataset.id).chart.raw;
      return raw[1][raw[1].length - 1] === 3;
    }, graph, { timeout: 10000 });
    console.log(`  first event on the chart after ${Date.now() - t0} ms`);
    same(await page.$eval(`${graph} .series-row select.metric`, (e) => e.value), 'signups', 'the graph shows the new metric');
    assert(await page.$eval('#empty', (e) => e.classList.contains('hidden')), 'the empty notice is gone');
    await shot('10-first-event');
  });

  const open = async (p, query) => {
    await p.goto(`${URL_}?project=${PROJECT}&${query}`);
    await p.waitForSelector('body[data-loaded="1"]');
  };
  const newGraph = async (metric) => {
    const before = await page.$$eval(graph, (es) => es.map((e) => e.dataset.id));
    await page.click('#add-graph');
    await page.waitForFunction((n) => document.querySelectorAll('.widget[data-type=graph]').length === n, before.length + 1);
    const id = (await page.$$eval(graph, (es) => es.map((e) => e.dataset.id))).find((x) => !before.includes(x));
    const g = `.widget[data-id="${id}"]`;
    await afterRedraw(g, () => page.selectOption(`${g} .series-row:nth-child(1) select.metric`, metric));
    return g;
  };
  const xsOf = (g) => page.$eval(g, (e) => Array.from(window.gw.views.get(e.dataset.id).chart.u.data[0]));
  let gapGraph = null;

  await step('an average with no events in a minute shows a gap there, not 0; the last 15 minutes end at the current one', async () => {
    // The page, the API and this check must see the same current minute:
    // not started in the last 10 s of one.
    const left = 60000 - (Date.now() % 60000);
    if (left < 10000) await new Promise((r) => setTimeout(r, left + 200));
    await open(page, 'range=15m&period=auto');
    if ((await page.$eval('body', (b) => b.dataset.mode)) !== 'edit') await page.click('#edit-toggle');
    gapGraph = await newGraph('response_ms');
    same(await page.$eval(gapGraph, (e) => e.dataset.period), 'minute', 'Auto picks minutes for 15 minutes');
    same(await page.$eval(gapGraph, (e) => e.querySelector('.title').textContent), 'response_ms', 'the title follows the metric');
    const u = await page.$eval(gapGraph, (e) => Array.from(window.gw.views.get(e.dataset.id).chart.u.data[1]));
    const xs = await xsOf(gapGraph);
    const api = await stats(`${PROJECT}/stats?name=response_ms`);
    same(u, api.range.map((p) => p[1]), 'plotted: the API numbers, nulls included');
    const minuteNow = Math.floor(Date.now() / 60000) * 60;
    same(xs[xs.length - 1], minuteNow, 'the last bucket is the current minute');
    const seeded = Number(process.env.GW_MINUTE); // the minute the events were sent in
    same(xs.length, 16, '15 minutes back from now: 16 minute buckets');
    // Events came every other minute (1, 3, 5, .. minutes ago): the others are null.
    const want = xs.map((x) => {
      const k = (seeded - x) / 60;
      return k >= 1 && k <= 19 && k % 2 === 1 ? 30 + k : null;
    });
    same(u, want, 'values, and nulls where no event came');
    // Hovering an empty minute: the legend and the tooltip say "–", not 0.
    const i = want.findIndex((v) => v === null);
    await page.$eval(gapGraph, (e) => e.scrollIntoView({ block: 'center' }));
    const pos = await page.$eval(gapGraph, (e, idx) => {
      const ch = window.gw.views.get(e.dataset.id).chart.u;
      const r = ch.over.getBoundingClientRect();
      return { x: r.left + ch.valToPos(ch.data[0][idx], 'x'), y: r.top + r.height / 2 };
    }, i);
    await page.mouse.move(pos.x, pos.y);
    const legend = await page.$$eval(`${gapGraph} .u-legend .u-value`, (els) => els.map((e) => e.textContent));
    same(legend[1], '–', 'the legend at an empty minute');
    const tip = await page.$eval(gapGraph, (e) => {
      const t = e.querySelector('.gw-tooltip');
      return t ? `${t.hidden ? 'hidden' : 'shown'}: ${t.textContent}` : 'none';
    });
    assert(tip.startsWith("shown") && tip.includes("response_ms: –"), `tooltip at an empty minute: ${tip} ${consoleErrors.join("; ")}`);
    await shot('12-gap');
  });

  await step('drag-to-zoom sets the range of every chart and the URL; a reload keeps it; Zoom out returns', async () => {
    const other = await newGraph('orders');
    const before = page.url();
    await page.$eval(gapGraph, (e) => e.scrollIntoView({ block: 'center' }));
    const box = await page.$eval(`${gapGraph} .u-over`, (e) => { const r = e.getBoundingClientRect(); return { l: r.left, w: r.width, y: r.top + r.height / 2 }; });
    await page.mouse.move(box.l + box.w * 0.2, box.y);
    await page.mouse.down();
    await page.mouse.move(box.l + box.w * 0.5, box.y, { steps: 5 });
    await page.mouse.move(box.l + box.w * 0.8, box.y, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction(() => new URL(location.href).searchParams.has('from'));
    const q = new URL(page.url()).searchParams;
    const from = Date.parse(`${q.get('from')}:00Z`) / 1000;
    const to = Date.parse(`${q.get('to')}:00Z`) / 1000;
    assert(to - from >= 60 && to - from < 15 * 60, `zoomed range ${q.get('from')} – ${q.get('to')}`);
    for (const g of [gapGraph, other]) {
      await page.waitForFunction(([s, f]) => {
        const v = window.gw.views.get(document.querySelector(s).dataset.id);
        return v.chart && v.chart.u.data[0][0] >= f - 60;
      }, [g, from]);
      const xs = await xsOf(g);
      assert(xs[0] >= from - 60 && xs[xs.length - 1] <= to, `${g}: ${xs[0]}..${xs[xs.length - 1]} not inside ${from}..${to}`);
    }
    same(await page.$eval('#range', (s) => s.value), 'custom', 'the range picker says custom');
    assert(await page.isVisible('#zoom-out'), 'no Zoom out button');
    const zoomed = page.url();
    await page.reload();
    await page.waitForSelector('body[data-loaded="1"]');
    await page.waitForSelector(`${gapGraph}[data-ready]`);
    same(page.url(), zoomed, 'the URL after a reload');
    const xs = await xsOf(gapGraph);
    assert(xs[0] >= from - 60 && xs[xs.length - 1] <= to, `after the reload: ${xs[0]}..${xs[xs.length - 1]}`);
    same(await page.$eval('#from-time', (i) => i.value), q.get('from').replace('T', ' '), 'the custom range shows the zoom (ISO, UTC)');
    await page.click('#zoom-out');
    await page.waitForFunction((u) => location.href === u, before).catch(() => { throw new Error(`after Zoom out at ${page.url()}, not ${before}`); });
    await page.waitForFunction((s) => window.gw.views.get(document.querySelector(s).dataset.id).chart.u.data[0].length === 16, gapGraph);
    same(await page.$eval('#range', (s) => s.value), '15m', 'back to the last 15 minutes');
    await page.click(`${other} .remove`);
  });

  await step('charts share a crosshair and a tooltip; legends toggle from the keyboard; a unit shows in the data table behind the chart; the all period; one column under 700 px', async () => {
    const other = await newGraph('orders');
    const view = (g) => `window.gw.views.get(document.querySelector(${JSON.stringify(g)}).dataset.id)`;
    // The crosshair of one chart moves the other's to the same bucket.
    await page.$eval(gapGraph, (e) => e.scrollIntoView({ block: 'center' }));
    const box = await page.$eval(`${gapGraph} .u-over`, (e) => { const r = e.getBoundingClientRect(); return { l: r.left, w: r.width, y: r.top + r.height / 2 }; });
    await page.mouse.move(box.l + box.w * 0.5, box.y, { steps: 3 });
    await page.waitForFunction(([a, b]) => {
      const ua = window.gw.views.get(document.querySelector(a).dataset.id).chart.u;
      const ub = window.gw.views.get(document.querySelector(b).dataset.id).chart.u;
      return ua.cursor.idx != null && ub.cursor.idx === ua.cursor.idx && ub.cursor.left >= 0;
    }, [gapGraph, other]);
    const idx = await page.evaluate(`${view(gapGraph)}.chart.u.cursor.idx`);
    const xs = await xsOf(gapGraph);
    const tip = `${gapGraph} .gw-tooltip`;
    assert(await page.isVisible(tip), 'no tooltip under the cursor');
    const d = new Date(xs[idx] * 1000).toISOString();
    same(await page.textContent(`${tip} .gw-tooltip-time`), `${d.slice(0, 10)} ${d.slice(11, 16)}`, 'the tooltip names the bucket (ISO, UTC, 24-hour)');
    await page.mouse.move(5, 5);
    // A legend entry is a toggle button reachable by the keyboard.
    const row = `${other} .u-legend .u-series:nth-child(2)`;
    same(await page.$eval(row, (r) => [r.tabIndex, r.getAttribute('role'), r.getAttribute('aria-pressed')]), [0, 'button', 'true'], 'the legend entry');
    await page.focus(row);
    await page.keyboard.press('Enter');
    same(await page.evaluate(`${view(other)}.chart.u.series[1].show`), false, 'Enter hides the series');
    same(await page.getAttribute(row, 'aria-pressed'), 'false', 'and says so');
    await page.keyboard.press(' ');
    same(await page.evaluate(`${view(other)}.chart.u.series[1].show`), true, 'Space shows it again');
    // A unit: the data table behind the chart (for screen readers) says it.
    await afterRedraw(gapGraph, () => page.selectOption(`${gapGraph} .series-row:nth-child(1) select.unit`, 'ms'));
    await page.click(`${gapGraph} details summary`);
    await page.waitForSelector(`${gapGraph} details .table-wrap table`);
    const table = await page.$eval(`${gapGraph} details table`, (t) => ({
      caption: t.caption.textContent,
      head: Array.from(t.tHead.rows[0].cells, (c) => c.textContent),
      rows: Array.from(t.tBodies[0].rows, (r) => Array.from(r.cells, (c) => c.textContent)),
    }));
    const api = await stats(`${PROJECT}/stats?name=response_ms`);
    const num = (x) => String(+x.toFixed(Math.abs(x) >= 100 ? 1 : 3));
    const ms = (v) => (v == null ? '–' : v >= 1000 ? `${num(v / 1000)} s` : `${num(v)} ms`);
    same(table.caption, 'response_ms', 'the table is named after the chart');
    same(table.head, ['Time (UTC)', 'response_ms'], 'its header');
    same(table.rows, api.range.map(([t, v]) => { const z = new Date(t * 1000).toISOString(); return [`${z.slice(0, 10)} ${z.slice(11, 16)}`, ms(v)]; }), 'its rows: every bucket, in ms, gaps as –');
    await page.click(`${gapGraph} details summary`);
    // The all period: one bucket, the all-time value.
    await page.click('#periods button[data-period=all]');
    same(await page.getAttribute('#periods button[data-period=all]', 'aria-pressed'), 'true', 'All is pressed');
    await page.waitForFunction((g) => { const v = window.gw.views.get(document.querySelector(g).dataset.id); return v.chart && v.chart.u.data[0].length === 1; }, other);
    const all = await apiStats(`${PROJECT}/stats?name=orders&period=all`);
    same(await page.evaluate(`Array.from(${view(other)}.chart.raw[1])`), all.range.map((p) => p[1]), 'the all-time count');
    await page.click('#periods button[data-period=auto]');
    await page.waitForFunction((g) => window.gw.views.get(document.querySelector(g).dataset.id).chart.u.data[0].length === 16, gapGraph);
    // One heading, notices announced.
    same(await page.$$eval('h1', (h) => h.map((x) => x.textContent.trim())), ['GottWall'], 'one h1');
    same(await page.$eval('#notice', (n) => [n.getAttribute('role'), n.getAttribute('aria-live')]), ['status', 'polite'], 'the notice line is a live region');
    // Under 700 px the grid is one column, widgets one under another.
    await page.setViewportSize({ width: 650, height: 900 });
    await page.waitForTimeout(300);
    const rects = (await page.$$eval('.widget', (ws) => ws.map((w) => { const r = w.getBoundingClientRect(); return [Math.round(r.left), Math.round(r.top), Math.round(r.bottom)]; }))).sort((a, b) => a[1] - b[1]);
    assert(rects.length >= 3, `${rects.length} widgets`);
    assert(rects.every((r) => r[0] === rects[0][0]), `not one column at 650 px: ${JSON.stringify(rects)}`);
    rects.slice(1).forEach((r, i) => assert(r[1] >= rects[i][2], `widget ${i + 1} overlaps the one above: ${JSON.stringify(rects)}`));
    await page.setViewportSize({ width: 1360, height: 900 });
    await page.click(`${other} .remove`);
  });

  await step('minutes over the last year: more than MAX_POINTS; each widget says so and draws nothing; Auto draws hours', async () => {
    await page.selectOption('#range', '1y');
    await page.click('#periods button[data-period=minute]');
    await page.waitForFunction((s) => /more than MAX_POINTS/.test(document.querySelector(`${s} .status`).textContent), gapGraph);
    const said = await page.textContent(`${gapGraph} .status`);
    assert(/^the range asks for 5\d{5} minute buckets, more than MAX_POINTS \(10000\): shorten the range or use a longer period$/.test(said), said);
    same(await page.$$eval(`${gapGraph} canvas`, (c) => c.length), 0, 'no chart of the view before');
    same(await page.$eval('#periods button[data-period=auto]', (b) => b.title), 'The finest period that keeps the whole range: now hour', 'what Auto would pick (8,761 hours fit)');
    await page.click('#periods button[data-period=auto]');
    await page.waitForFunction((s) => { const v = window.gw.views.get(document.querySelector(s).dataset.id); return v.chart && v.chart.u.data[0].length >= 8760; }, gapGraph);
    same(await page.$eval(gapGraph, (e) => e.dataset.period), 'hour', 'the period drawn');
    const refused = (e) => /^400 .*\/stats(_dataset)?\?period=minute&/.test(e);
    assert(consoleErrors.filter(refused).length > 0, 'the refused requests were seen');
    consoleErrors.splice(0, consoleErrors.length, ...consoleErrors.filter((e) => !refused(e)));
    await page.selectOption('#range', '15m');
    await page.waitForFunction((s) => window.gw.views.get(document.querySelector(s).dataset.id).chart.u.data[0].length === 16, gapGraph);
  });

  await step('a save from a stale tab gets the conflict dialog; Merge keeps both tabs\' widgets', async () => {
    await page.evaluate(() => window.gw.flush());
    const other = await context.newPage();
    other.on('pageerror', (e) => consoleErrors.push(String(e)));
    await open(other, 'range=24h');
    await other.click('#edit-toggle');
    const n = await other.$$eval('.widget', (ws) => ws.length);
    await other.click('#add-table');
    await other.waitForFunction((k) => document.querySelectorAll('.widget').length === k, n + 1);
    await other.evaluate(() => window.gw.flush());
    const theirs = await other.$eval('.widget:last-child', (e) => e.dataset.id);
    // This tab has not seen that save: its next one is refused.
    const mine = (await newGraph('latency_ms')).match(/"(.*)"/)[1];
    await page.evaluate(() => window.gw.flush());
    await page.waitForSelector('#conflict-dialog[open]');
    const text = await page.textContent('#conflict-dialog');
    assert(/You added “latency_ms”/.test(text) && /The other side added “api_ms by route”/.test(text), `the dialog says: ${text}`);
    same(await page.textContent('#save-state'), 'Not saved: changed elsewhere', 'the save state');
    await shot('13-conflict');
    await page.click('#conflict-merge');
    await page.waitForFunction(() => document.querySelector('#save-state').textContent === 'Saved');
    const stored = await page.evaluate(async (p) => {
      const r = await fetch('api/v1/dashboards/Main', { headers: { 'X-Requested-With': 'gottwall' } });
      return (await r.json()).doc.projects[p].widgets.map((w) => w.id);
    }, PROJECT);
    assert(stored.includes(mine) && stored.includes(theirs), `stored ${stored}, mine ${mine}, theirs ${theirs}`);
    const ids = await page.$$eval('.widget', (ws) => ws.map((w) => w.dataset.id));
    same(ids, stored, 'this tab shows the merged dashboard');
    await other.reload();
    await other.waitForSelector('body[data-loaded="1"]');
    same(await other.$$eval('.widget', (ws) => ws.map((w) => w.dataset.id)), stored, 'the other tab after a reload');
    await other.close();
    // The refused save is the one failed request this step expects.
    const refused = (e) => /^409 .*\/api\/v1\/dashboards\/Main$/.test(e);
    same(consoleErrors.filter(refused).length, 1, 'the stale save was refused once (409)');
    consoleErrors.splice(0, consoleErrors.length, ...consoleErrors.filter((e) => !refused(e)));
  });

  await step('a save while the server cannot be reached is kept as unsaved, retried, and lands', async () => {
    const t = `${gapGraph} .title`;
    await context.setOffline(true);
    await page.click(t);
    await page.keyboard.press('Control+A');
    await page.keyboard.type('Response time (offline edit)');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#save-state').dataset.state === 'unsaved');
    const said = await page.textContent('#save-state');
    assert(/^Unsaved: the server cannot be reached .* Retrying in \d+ s…$/.test(said), `save state offline: ${said}`);
    await shot('14-unsaved');
    await context.setOffline(false);
    await page.waitForFunction(() => document.querySelector('#save-state').textContent === 'Saved', null, { timeout: 20000 });
    const title = await page.evaluate(async ([p, id]) => {
      const r = await fetch('api/v1/dashboards/Main', { headers: { 'X-Requested-With': 'gottwall' } });
      return (await r.json()).doc.projects[p].widgets.find((w) => w.id === id).title;
    }, [PROJECT, await page.$eval(gapGraph, (e) => e.dataset.id)]);
    same(title, 'Response time (offline edit)', 'the title stored after the retry');
    // Back online, the page refreshes at once: the notice about the lost
    // connection goes (not at the next 10 s tick).
    await page.waitForFunction(() => document.querySelector('#notice').classList.contains('hidden'), null, { timeout: 3000 });
  });

  await step('view mode shows charts only; at 400 px the page has no horizontal scroll; screenshots light and dark', async () => {
    const shots = [];
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const [size, w] of [['desktop', 1360], ['phone', 400]]) {
        await page.setViewportSize({ width: w, height: 900 });
        for (const mode of ['view', 'edit']) {
          if ((await page.$eval('body', (b) => b.dataset.mode)) !== mode) await page.click('#edit-toggle');
          await page.waitForTimeout(150); // the charts' ResizeObserver
          const m = await page.evaluate(() => ({
            scroll: document.documentElement.scrollWidth,
            wide: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && e.offsetParent !== null && !e.parentElement.closest('.table-wrap'))
              .slice(0, 4).map((e) => `${e.tagName}.${e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`),
            editors: [...document.querySelectorAll('.series-list')].filter((e) => e.offsetParent !== null).length,
            logout: document.querySelector('#logout button').getBoundingClientRect().right,
            cut: [...document.querySelectorAll('.widget .title')].filter((t) => t.scrollWidth > t.clientWidth + 1).map((t) => t.textContent),
          }));
          assert(m.scroll <= w, `${scheme} ${size} ${mode}: the page is ${m.scroll} px wide in a ${w} px window: ${m.wide.join(', ')}`);
          assert(m.logout <= w, `${scheme} ${size} ${mode}: "Log out" is off-screen at ${m.logout} px`);
          same(m.editors > 0, mode === 'edit', `${scheme} ${size} ${mode}: series editors shown`);
          if (size === 'phone') same(m.cut, [], `${scheme} phone ${mode}: titles cut`);
          const name = `dashboard-${mode}-${size}-${scheme}`;
          await shot(name);
          shots.push(name);
        }
      }
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1360, height: 900 });
    console.log(`  screenshots: ${shots.join(', ')} in ${OUT}`);
  });

  await step('axe-core: no serious or critical violation on the dashboard, in view and in edit mode', async () => {
    const src = fs.readFileSync(new URL('../../node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
    for (const mode of ['view', 'edit']) {
      if ((await page.$eval('body', (b) => b.dataset.mode)) !== mode) await page.click('#edit-toggle');
      await page.evaluate(src); // through the DevTools protocol: not an inline script
      const found = await page.evaluate(async () => {
        const r = await window.axe.run(document, { resultTypes: ['violations'] });
        return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, at: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
      });
      for (const v of found) console.log(`  axe (${mode}): ${v.impact} ${v.id} ×${v.nodes} at ${v.at.join(', ')}`);
      same(found.filter((v) => v.impact === 'serious' || v.impact === 'critical'), [], `serious or critical violations in ${mode} mode`);
    }
    if ((await page.$eval('body', (b) => b.dataset.mode)) !== 'view') await page.click('#edit-toggle');
  });

  await step('log out with the button (a POST); the cookie copied before is refused', async () => {
    const before = (await context.cookies()).filter((c) => c.name === 'gw_session');
    same(before.length, 1, 'one session cookie');
    await Promise.all([page.waitForNavigation(), page.click('#logout button[type=submit]')]);
    assert(new URL(page.url()).pathname.endsWith('/login'), `not on the login page: ${page.url()}`);
    same((await context.cookies()).filter((c) => c.name === 'gw_session').length, 0, 'cookie cleared');
    // The cookie as someone who copied it before the logout would send it.
    await context.addCookies(before);
    const r = await context.request.get(new URL('api/v1/projects', URL_).href);
    same(r.status(), 401, 'the copied cookie after the logout');
    await page.goto(URL_);
    assert(page.url().includes('/login?next='), `the copied cookie opened the dashboard: ${page.url()}`);
    await shot('11-logged-out');
  });

  await step('the embedded page works without login', async () => {
    await context.clearCookies();
    await page.goto(shareLink);
    await page.waitForSelector('body[data-ready="1"]');
    const data = await page.evaluate(() => window.gwEmbed.chart.u.data.map((a) => Array.from(a)));
    const j = await page.evaluate(async () => (await fetch(document.body.dataset.json + location.search)).json());
    same(data[1], j.metrics[0].range.map((p) => p[1]), 'embedded series 1');
    same(data[2], j.metrics[1].range.map((p) => p[1]), 'embedded series 2');
    same(j.name, 'Orders per day', 'embedded name');
    await shot('09-embedded');
    await page.goto(URL_);
    assert(page.url().includes('/login'), 'logged out after clearing cookies');
  });

  await step('no errors in the browser console', async () => {
    same(consoleErrors.filter((e) => !/^Failed to load resource/.test(e)), [], 'console errors and failed requests');
  });

  await step('every page ran under its Content-Security-Policy, with no violation', async () => {
    const base = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
      + "connect-src 'self'; form-action 'self'; base-uri 'self'";
    const kinds = new Set();
    for (const d of documents) {
      const embedded = /\/api\/v1\/embedded\/[0-9a-f-]{36}\.html$/.test(d.path);
      kinds.add(embedded ? 'embedded' : /\/login$/.test(d.path) ? 'login' : 'dashboard');
      same([d.csp, d.frame], embedded ? [base, null] : [`${base}; frame-ancestors 'none'`, 'DENY'],
        `the policy of ${d.path}`);
    }
    same([...kinds].sort(), ['dashboard', 'embedded', 'login'], 'pages seen');
    same(cspViolations, [], 'Content-Security-Policy violations');
  });

  await step('the policy is enforced: inline script and style are refused and reported', async () => {
    // Proves the two steps above could fail: on a page of the server, an
    // inline script does not run and a style attribute does not apply, and
    // both are reported as violations.
    const n = cspViolations.length;
    const probe = await page.evaluate(() => new Promise((resolve) => {
      const seen = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        seen.push(e.effectiveDirective);
        if (seen.length === 2) resolve({ seen, ran: window.gwInlineRan === 1, color: getComputedStyle(div).color });
      });
      const s = document.createElement('script');
      s.textContent = 'window.gwInlineRan = 1;';
      document.head.append(s);
      const div = document.createElement('div');
      div.setAttribute('style', 'color: rgb(1, 2, 3)');
      document.body.append(div);
      setTimeout(() => resolve({ seen, ran: window.gwInlineRan === 1, color: getComputedStyle(div).color }), 5000);
    }));
    same(probe.seen.sort(), ['script-src-elem', 'style-src-attr'], 'violations reported');
    assert(!probe.ran && probe.color !== 'rgb(1, 2, 3)', `inline code applied: ${JSON.stringify(probe)}`);
    for (let i = 0; i < 100 && cspViolations.length < n + 2; i++) await page.waitForTimeout(100);
    assert(cspViolations.length >= n + 2, `the console did not report them: ${cspViolations.slice(n)}`);
  });
} catch (e) {
  exitCode = 1;
  try { await shot('failure'); } catch (_) { /* ignore */ }
} finally {
  await context.close();
  fs.rmSync(userDir, { recursive: true, force: true });
}
finish(exitCode);
