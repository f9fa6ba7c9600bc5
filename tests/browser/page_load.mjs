// tests/browser/page_load.mjs: the 3-day page of tests/browser/test_page_load.py
// in Debian's Chromium (headless, through playwright-core). Opens the
// dashboard on the last 3 days (period auto: minutes) three times; each
// time measures, by the page's own clock (performance.now() counts from
// the navigation's start), when every chart is drawn with all its
// buckets; checks each point of each series against GW_OUT/expected.json
// (exact values; an empty bucket of an average or a gauge is a gap, of a
// counter 0); then times a redraw of every chart from its data. Writes
// the figures to GW_OUT/page-load.txt (GW_TIMELINE=1 prints the last
// load's requests, start-end in ms, too). Prints "N passed, N failed";
// exits 1 on a failure. Times are reported, never asserted.

import { assert, finish, launch, same as sameAll, step } from './harness.mjs';
import fs from 'node:fs';
import path from 'node:path';

const URL_ = process.env.GW_URL;
const OUT = process.env.GW_OUT;
const want = JSON.parse(fs.readFileSync(path.join(OUT, 'expected.json'), 'utf8'));

const same = (a, b, msg) => sameAll(a, b, msg, 400);
const pad = (n) => String(n).padStart(2, '0');
const minuteOf = (ts) => {
  const d = new Date(ts * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const { userDir, context, page } = await launch({ timeout: 30000 });
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));

const now = Math.floor(Date.now() / 1000);
const from = now - 3 * 86400;
const NBUCKETS = (now - (now % 60) - (from - (from % 60))) / 60 + 1;
const VIEW = `?project=test_project&from=${minuteOf(from)}&to=${minuteOf(now)}&period=auto`;
const loads = [];
const report = [];
let exitCode = 0;

// Milliseconds from the navigation's start to every chart drawn whole.
async function load() {
  await page.goto(URL_ + VIEW, { waitUntil: 'commit' });
  const h = await page.waitForFunction((n) => {
    const gw = window.gw;
    const ws = document.querySelectorAll('.widget[data-type=graph]');
    if (!gw || !gw.views || ws.length !== 4) return false;
    for (const w of ws) {
      const v = gw.views.get(w.dataset.id);
      if (!v || !v.chart || v.chart.raw[0].length !== n || !w.querySelector('canvas')) return false;
    }
    return performance.now();
  }, NBUCKETS, { polling: 'raf', timeout: 30000 });
  return h.jsonValue();
}

try {
  await step(`3 days by minute: 4 graphs, 8 series of ${NBUCKETS} buckets, drawn (3 loads)`, async () => {
    for (let i = 0; i < 3; i++) loads.push(await load());
    same(await page.$eval('#periods button.auto-picked', (b) => b.dataset.period), 'minute', 'the period Auto picked');
    if (process.env.GW_TIMELINE) {
      console.log(await page.evaluate(() => performance.getEntriesByType('resource').map((e) => `${e.startTime.toFixed(0)}-${e.responseEnd.toFixed(0)} ${e.name.replace(/^https?:\/\/[^/]+/, '').slice(0, 90)}`).join('\n')));
    }
    report.push(`page load to all charts drawn, ms: ${loads.map((t) => t.toFixed(0)).join(', ')} (median ${median(loads).toFixed(0)}; the first with a cold cache)`);
    console.log(`  ${report[report.length - 1]}`);
  });

  await step('every point of every series is what was sent', async () => {
    const raws = await page.$$eval('.widget[data-type=graph]', (ws) => ws.map((w) => window.gw.views.get(w.dataset.id).chart.raw.map((a) => Array.from(a))));
    let points = 0;
    let gaps = 0;
    raws.forEach((raw, g) => {
      want.series[g].forEach((exp, s) => {
        const counter = want.kinds[g][s] === 'incr';
        const got = raw[s + 1];
        const expect = raw[0].map((x) => (x in exp ? exp[x] : (counter ? 0 : null)));
        same(got, expect, `graph ${g} series ${s}`);
        const inRange = Object.keys(exp).filter((x) => Number(x) >= raw[0][0]).length;
        same(Object.keys(exp).length, inRange, `graph ${g} series ${s}: every bucket sent is in the range`);
        points += got.length;
        gaps += got.filter((v) => v === null).length;
      });
    });
    same(points, 8 * NBUCKETS, 'points drawn');
    assert(gaps > 0, 'the average and the gauge have gaps at minutes without events');
    report.push(`${want.events} events; ${points} points drawn, ${gaps} of them gaps (minutes without an average or a gauge)`);
    console.log(`  ${report[report.length - 1]}`);
  });

  await step('a redraw of every chart from its data', async () => {
    const times = [];
    for (let i = 0; i < 5; i++) {
      times.push(await page.evaluate(async () => {
        const t0 = performance.now();
        for (const v of window.gw.views.values()) if (v.chart) v.chart.u.setData(v.chart.u.data);
        await new Promise((r) => requestAnimationFrame(() => r()));
        return performance.now() - t0;
      }));
    }
    report.push(`redraw of all 4 charts, ms: ${times.map((t) => t.toFixed(1)).join(', ')} (median ${median(times).toFixed(1)})`);
    console.log(`  ${report[report.length - 1]}`);
    await page.screenshot({ path: path.join(OUT, 'page-load.png'), fullPage: true });
  });

  await step('no errors in the browser console', async () => {
    same(consoleErrors.filter((e) => !/^Failed to load resource/.test(e)), [], 'console errors');
  });
} catch (e) {
  exitCode = 1;
  try { await page.screenshot({ path: path.join(OUT, 'failure.png'), fullPage: true }); } catch (_) { /* ignore */ }
} finally {
  await context.close();
  fs.rmSync(userDir, { recursive: true, force: true });
}
fs.writeFileSync(path.join(OUT, 'page-load.txt'), `${report.join('\n')}\n`);
finish(exitCode);
