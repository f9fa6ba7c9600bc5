// web/embed.js: the standalone embedded chart page ({id}.html). Reads the
// chart's JSON ({id}.json, with this page's query string: from_date,
// to_date, period) and draws it with uPlot; the renderer can be switched.
// The chart fills what the header and the status line leave of the page,
// which is the iframe it is embedded in (or the window), and follows its
// size. Needs no login.

import { RENDERERS, makeChart, seriesLabel } from './chart.js';

const body = document.body;
const params = new URLSearchParams(location.search);
let chart = null;
let doc = null;
let renderer = params.get('renderer');

function draw() {
  const el = document.getElementById('chart');
  if (chart) chart.destroy();
  el.replaceChildren();
  const ms = doc.metrics;
  const xs = ms.length ? ms[0].range.map((p) => p[0]) : [];
  const raw = [xs, ...ms.map((m) => m.range.map((p) => p[1]))];
  chart = makeChart(el, {
    raw,
    labels: ms.map((m) => seriesLabel({ metric: m.name, filter_name: m.filter_name, filter_value: m.filter_value })),
    renderer,
    period: doc.period,
    fill: true,
  });
  window.gwEmbed = { doc, chart };
  for (const b of document.querySelectorAll('#renderers button')) {
    b.classList.toggle('active', b.dataset.renderer === renderer);
    b.setAttribute('aria-pressed', String(b.dataset.renderer === renderer));
  }
  document.getElementById('status').textContent = `${doc.period} buckets, ${doc.from_date} – ${doc.to_date}`;
  body.dataset.ready = '1';
}

async function main() {
  const q = new URLSearchParams();
  for (const k of ['from_date', 'to_date', 'period', 'name']) if (params.get(k)) q.set(k, params.get(k));
  const url = body.dataset.json + (q.toString() ? `?${q}` : '');
  const r = await fetch(url);
  const j = await r.json().catch(() => ({}));
  if (!r.ok) {
    document.getElementById('status').textContent = j.error || `${r.status} ${r.statusText}`;
    document.getElementById('status').classList.add('error');
    return;
  }
  doc = j;
  if (!RENDERERS.includes(renderer)) renderer = RENDERERS.includes(doc.renderer) ? doc.renderer : 'line';
  document.getElementById('title').textContent = doc.name;
  const bar = document.getElementById('renderers');
  for (const r2 of RENDERERS) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = r2;
    b.dataset.renderer = r2;
    b.addEventListener('click', () => { renderer = r2; draw(); });
    bar.append(b);
  }
  draw();
}

main();
