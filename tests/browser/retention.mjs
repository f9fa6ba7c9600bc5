// tests/browser/retention.mjs: the dashboard with RETENTION = { minute =
// "1d"; } in Debian's Chromium (headless, through playwright-core). The
// saved dashboard (a graph and a table of "orders") is opened on a URL
// whose range starts at GW_FROM, 2 days back, in minutes: each widget must
// say how long minute buckets are kept and draw nothing (no zeros), the
// page must send no stats request the server would refuse, the minute
// button must be greyed, and Auto must pick hours; the offered coarser
// period (hour) must switch the view (and its URL) and draw the event of
// GW_OLD. Under the page's Content-Security-Policy: any violation fails.
// Started by tests/browser/test_retention.py, which sets GW_URL (the
// dashboard, ending in "/"), GW_OUT (screenshots), CHROMIUM, GW_OLD (the
// old event's epoch seconds, value 7, status paid) and GW_FROM (its day).
// Prints one line per step and "N passed, N failed"; exits 1 on failure.

import { assert, finish, launch, same, step, watchCsp } from './harness.mjs';
import fs from 'node:fs';
import path from 'node:path';

const URL_ = process.env.GW_URL;
const OUT = process.env.GW_OUT;
const OLD = Number(process.env.GW_OLD);
const FROM = process.env.GW_FROM;
const DAY = 86400;
fs.mkdirSync(OUT, { recursive: true });

const pad = (n) => String(n).padStart(2, '0');
const minuteLabel = (ts) => {
  const d = new Date(ts * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
};

const { userDir, context, page } = await launch();
const consoleErrors = [];
const cspViolations = await watchCsp(context, page);
page.on('console', (m) => {
  if (m.type() === 'error') consoleErrors.push(m.text());
});
page.on('pageerror', (e) => consoleErrors.push(String(e)));
const refused = [];
page.on('response', (r) => { if (r.status() >= 400) refused.push(`${r.status()} ${r.url()}`); });
const statsAsked = [];
page.on('request', (r) => {
  const u = new URL(r.url());
  if (/\/stats(_dataset)?$/.test(u.pathname)) statsAsked.push(`${u.searchParams.get('period')} ${u.pathname}`);
});
const shot = (name) => page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
const apiGet = (q) => page.evaluate(async (p) => (await fetch(`api/v1/${p}`)).json(), q);

const graph = '.widget[data-type=graph]';
const table = '.widget[data-type=table]';
let exitCode = 0;
const nowMinute = () => minuteLabel(Math.floor(Date.now() / 1000)).replace(' ', 'T');
const VIEW = `?project=test_project&from=${FROM}T00:00&to=${nowMinute()}&period=minute`;
try {
  await step('a range 2 days back on minutes: each widget names the retention, draws nothing', async () => {
    await page.goto(URL_ + VIEW);
    await page.waitForSelector('body[data-loaded="1"]');
    await page.waitForSelector(`${graph}[data-expired=minute] .expired button.coarser`);
    await page.waitForSelector(`${table}[data-expired=minute] .expired button.coarser`);
    const text = await page.textContent(`${graph} .expired p`);
    // The oldest minute kept, by the clock of now or of a minute ago.
    const now = Math.floor(Date.now() / 1000);
    const cuts = [now - DAY - 60, now - DAY].map((t) => t - (t % 60));
    const want = cuts.map((c) => `minute buckets are kept for 1d (RETENTION.minute): the oldest starts at ${minuteLabel(c)}, and this range starts at ${FROM} 00:00.`);
    assert(want.includes(text), `the message: ${JSON.stringify(text)}, expected one of ${JSON.stringify(want)}`);
    same(await page.textContent(`${table} .expired p`), text, 'the table says the same');
    same(await page.textContent(`${graph} .expired button.coarser`), 'Switch to hour (kept for ever)', 'the offer');
    // No chart of zeros, no table of them.
    same(await page.$eval(graph, (e) => window.gw.views.get(e.dataset.id).chart), null, 'no chart');
    same(await page.$$eval(`${graph} canvas, ${table} table.data`, (els) => els.length), 0, 'nothing drawn');
    // The custom range shows the URL's times.
    same(await page.$eval('#range', (e) => e.value), 'custom', 'the range select');
    same(await page.$eval('#from-time', (e) => e.value), `${FROM} 00:00`, 'from');
    await shot('01-minutes-expired');
  });

  await step('the minute button is greyed and pressed; Auto would pick hours', async () => {
    const b = await page.$eval('#periods button[data-period=minute]', (e) => ({ expired: e.classList.contains('expired'), pressed: e.getAttribute('aria-pressed'), title: e.title }));
    same([b.expired, b.pressed], [true, 'true'], 'minute greyed and pressed');
    assert(b.title.startsWith('minute buckets are kept for 1d (RETENTION.minute): '), `title: ${b.title}`);
    same(await page.$$eval('#periods button.expired', (els) => els.map((e) => e.dataset.period)), ['minute'], 'greyed periods');
    const heights = await page.$$eval('#periods button', (els) => els.map((e) => e.getBoundingClientRect().height));
    assert(heights.every((h) => h === heights[1] && h < 40), `the period buttons keep their size: ${heights}`);
    same(await page.$eval('#periods button[data-period=auto]', (e) => e.title), 'The finest period that keeps the whole range: now hour', 'what Auto would pick');
  });

  await step('the page asked the server for no minute it does not keep', async () => {
    await page.waitForTimeout(5600); // an auto-refresh too
    same(statsAsked, [], 'stats requests');
    same(refused, [], 'refused requests');
  });

  await step('the offer switches the view to hours (and its URL) and draws the event of 2 days ago', async () => {
    await page.click(`${graph} .expired button.coarser`);
    await page.waitForFunction((s) => {
      const e = document.querySelector(s);
      return e && !e.dataset.expired && window.gw.views.get(e.dataset.id).chart;
    }, graph);
    same(await page.$eval('#periods button[aria-pressed=true]', (e) => e.dataset.period), 'hour', 'pressed period');
    same(await page.$$eval('#periods button.expired', (els) => els.map((e) => e.dataset.period)), ['minute'], 'greyed periods');
    same(new URL(page.url()).searchParams.get('period'), 'hour', 'the period in the URL');
    const raw = await page.$eval(graph, (e) => window.gw.views.get(e.dataset.id).chart.raw.map((a) => Array.from(a)));
    const q = new URL(page.url()).searchParams;
    const from = Date.parse(`${q.get('from')}:00Z`) / 1000;
    const to = Date.parse(`${q.get('to')}:00Z`) / 1000;
    const api = await apiGet(`test_project/stats?name=orders&period=hour&from_date=${from}&to_date=${to}`);
    same(raw[0], api.range.map((p) => p[0]), 'hour buckets');
    same(raw[1], api.range.map((p) => p[1]), 'hour values');
    same(api.range[0][0], Date.parse(`${FROM}T00:00:00Z`) / 1000, 'from the day 2 days back');
    const at = raw[0].indexOf(OLD - (OLD % 3600));
    assert(at >= 0 && raw[1][at] === 7, `the event of 2 days ago: ${at} ${raw[1][at]}`);
    await page.waitForSelector(`${table}:not([data-expired]) table.data tbody tr`);
    const cells = await page.$$eval(`${table} tbody tr`, (trs) => trs.map((tr) => [...tr.children].map((td) => td.title || td.textContent)));
    const paid = cells.find((r) => r[0] === 'paid');
    same(Number(paid[1 + at]), 7, 'the table cell of that hour');
    same(Number(paid[paid.length - 1]), 7, 'the total of paid');
    same(statsAsked.filter((s) => !s.startsWith('hour ')), [], 'stats requests not of hours');
    await shot('02-switched-to-hours');
    await page.reload();
    await page.waitForSelector('body[data-loaded="1"]');
    await page.waitForFunction((s) => window.gw.views.get(document.querySelector(s).dataset.id).chart, graph);
    same(await page.$eval('#periods button[aria-pressed=true]', (e) => e.dataset.period), 'hour', 'the period after a reload');
  });

  await step('no errors in the browser console, no Content-Security-Policy violation', async () => {
    same(consoleErrors, [], 'console errors');
    same(cspViolations, [], 'Content-Security-Policy violations');
    same(refused, [], 'refused requests');
  });
} catch (e) {
  exitCode = 1;
  try { await shot('failure'); } catch (_) { /* ignore */ }
} finally {
  await context.close();
  fs.rmSync(userDir, { recursive: true, force: true });
}
finish(exitCode);
