// web/app.js: the GottWall dashboard (SPEC §8). Plain ES module, no build
// step. Every URL is relative to the <base href="{PREFIX}/"> the server
// puts in the page, so the dashboard works under any PREFIX.
//
// State (saved per user on the server, GET/PUT api/v1/dashboard):
//   {version: 1, project, period, from, to, autorefresh,
//    projects: {name: {widgets: [graph | table]}}}
//   graph: {id, type: "graph", title, renderer, series: [{metric, filter_name, filter_value}]}
//   table: {id, type: "table", title, metric, filter_name}

import { PALETTE, RENDERERS, bucketStart, fmtBucket, fmtDuration, fmtNum, seriesLabel, makeChart, toCSV, download } from './chart.js';

const CONFIG = JSON.parse(document.getElementById('gw-config').textContent);
const PERIODS = ['minute', 'hour', 'day', 'week', 'month', 'year'];
const REFRESH_MS = 5000;
// While a project has no metrics yet, look every second, so a new user's
// first event shows up on a chart within a flush and a second.
const EMPTY_REFRESH_MS = 1000;

const $ = (sel, root = document) => root.querySelector(sel);
// style takes an object of properties, set through the DOM: the page's
// Content-Security-Policy (style-src 'self') refuses style="..." attributes.
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'style') Object.assign(e.style, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
};

// ---- The API ----

class ApiError extends Error {}

async function api(path, opts = {}) {
  const headers = { 'X-Requested-With': 'gottwall', ...(opts.headers || {}) };
  if (opts.body && typeof opts.body !== 'string') {
    opts = { ...opts, body: JSON.stringify(opts.body) };
    headers['Content-Type'] = 'application/json';
  }
  const r = await fetch(path, { credentials: 'same-origin', ...opts, headers });
  if (r.status === 401) {
    location.href = `login?next=${encodeURIComponent(location.pathname)}`;
    throw new ApiError('login required');
  }
  const text = await r.text();
  let body;
  try { body = JSON.parse(text); } catch (e) { body = null; }
  if (!r.ok) throw new ApiError((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

const P = (project) => `api/v1/${encodeURIComponent(project)}`;

// ---- State ----

const state = {
  doc: { version: 1, project: null, period: 'day', from: '', to: '', autorefresh: true, projects: {} },
  metrics: {},            // metric -> {filter: [values]}
  kinds: {},              // metric -> "counter", "avg", "gauge", "timing", "set"
  views: new Map(),       // widget id -> view
};
window.gw = { state, views: state.views }; // for the browser test

function newId() {
  return Math.random().toString(36).slice(2, 10);
}

function widgets() {
  const p = state.doc.project;
  if (!state.doc.projects[p]) state.doc.projects[p] = { widgets: [] };
  return state.doc.projects[p].widgets;
}

let saveTimer = null;
let saving = Promise.resolve();
function save() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => {
    saveTimer = null;
    saving = api('api/v1/dashboard', { method: 'PUT', body: state.doc })
      .then(() => { document.body.dataset.saved = String(Date.now()); })
      .catch((e) => notice(`Could not save the dashboard: ${e.message}`));
  }, 250);
}
// Leaving the page with a save pending: send it anyway (keepalive).
window.addEventListener('pagehide', () => {
  if (!saveTimer) return;
  clearTimeout(saveTimer);
  saveTimer = null;
  fetch('api/v1/dashboard', {
    method: 'PUT', keepalive: true, credentials: 'same-origin', body: JSON.stringify(state.doc),
    headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'gottwall' },
  });
});
window.gw.flush = async () => { if (saveTimer) { clearTimeout(saveTimer); saveTimer = null; await api('api/v1/dashboard', { method: 'PUT', body: state.doc }); } await saving; };

function notice(text) {
  const n = $('#notice');
  n.textContent = text || '';
  n.classList.toggle('hidden', !text);
}

// ---- Query parameters for the current period and dates ----

// The whole "to" day: its last second (the server aligns it down).
const toEnd = () => Date.parse(`${state.doc.to}T23:59:59Z`) / 1000;

function rangeParams() {
  const q = new URLSearchParams({ period: state.doc.period });
  if (state.doc.from) q.set('from_date', state.doc.from);
  if (state.doc.to) q.set('to_date', String(toEnd()));
  return q;
}

// ---- What the server keeps (GET api/v1/config) ----
// A range reaching before the oldest bucket its period keeps (RETENTION)
// is not asked for: the server would refuse it (400), and the buckets are
// gone. The widgets say so and offer the next coarser period that still
// holds the time. Without the answer (an older server) the server's 400
// is shown as any error.

const server = { periods: null, retention: {}, skew: 0 }; // skew: its clock - ours, s

async function loadServerConfig() {
  try {
    const t0 = Date.now();
    const c = await api('api/v1/config');
    server.periods = c.periods;
    server.retention = c.retention || {};
    server.skew = c.now - (t0 + Date.now()) / 2000;
  } catch (e) { /* keeps the defaults */ }
}

const isKept = (p) => !server.periods || server.periods.includes(p);

// The start of period's oldest bucket kept now (as the server counts it),
// or null: kept for ever.
function oldestKept(period) {
  const secs = server.retention[period];
  return secs ? bucketStart(period, Date.now() / 1000 + server.skew - secs) : null;
}

// null, or why the dashboard's range cannot be shown in period:
// {period, secs, oldest, start, ends, coarser} (ends: only a "to" date,
// before the oldest; coarser: the next kept period that holds start).
function expiry(period = state.doc.period) {
  const oldest = oldestKept(period);
  if (oldest == null || !(state.doc.from || state.doc.to)) return null;
  // As the server: without "from" the range starts at the oldest bucket,
  // unless "to" is before it too.
  const ends = !state.doc.from;
  const start = bucketStart(period, ends ? toEnd() : Date.parse(`${state.doc.from}T00:00:00Z`) / 1000);
  if (start >= oldest) return null;
  const coarser = PERIODS.slice(PERIODS.indexOf(period) + 1).find((q) => {
    const o = oldestKept(q);
    return isKept(q) && (o == null || o <= bucketStart(q, start));
  }) || null;
  return { period, secs: server.retention[period], oldest, start, ends, coarser };
}

function expiryText(x) {
  return `${x.period} buckets are kept for ${fmtDuration(x.secs)} (RETENTION.${x.period}): the oldest starts at `
    + `${fmtBucket(x.oldest, x.period)}, and this range ${x.ends ? 'ends' : 'starts'} at ${fmtBucket(x.start, x.period)}.`;
}

// What a widget shows instead of a chart or table of buckets that are gone.
function expiryNotice(x) {
  return el('div', { class: 'expired' },
    el('p', { text: expiryText(x) }),
    x.coarser
      ? el('button', { class: 'coarser', 'data-period': x.coarser, onclick: () => setPeriod(x.coarser) },
        `Switch to ${x.coarser} (kept ${fmtDuration(server.retention[x.coarser])})`)
      : el('p', { class: 'muted', text: 'No period keeps that time: pick a later date.' }));
}

// Shows x in place (of the chart or table) unless it already shows the same.
function showExpiry(view, place, x) {
  const text = expiryText(x);
  view.root.dataset.expired = x.period;
  delete view.root.dataset.points;
  if (view.shownExpiry === text && place.firstChild) return;
  view.shownExpiry = text;
  place.replaceChildren(expiryNotice(x));
  view.setStatus('');
}

// Takes the notice away (the range is inside the retention again).
function clearExpiry(view, place) {
  if (!view.shownExpiry) return;
  delete view.root.dataset.expired;
  view.shownExpiry = null;
  place.replaceChildren();
}

// ---- Graph widget ----

// A timing metric's series shows one statistic (stat= of the read API):
// p95 unless another is picked. Other kinds show their value.
const TIMING_STATS = ['p50', 'p75', 'p90', 'p95', 'p99', 'p999', 'mean', 'min', 'max', 'count', 'sum'];
const statOf = (s) => (state.kinds[s.metric] === 'timing' ? s.stat || 'p95' : null);
const labelOf = (s) => (statOf(s) ? `${seriesLabel(s)} ${statOf(s)}` : seriesLabel(s));

function statSelect(s, onchange) {
  const sel = el('select', { class: 'stat', 'aria-label': 'Statistic', onchange: (e) => onchange(e.target.value) });
  for (const st of TIMING_STATS) sel.append(el('option', { value: st, text: st }));
  sel.value = statOf(s);
  return sel;
}

function seriesOptions(metric) {
  const opts = [{ value: '', label: 'total' }];
  const filters = state.metrics[metric] || {};
  for (const f of Object.keys(filters)) {
    for (const v of filters[f]) opts.push({ value: JSON.stringify([f, v]), label: `${f} = ${v}` });
  }
  return opts;
}

function metricSelect(value, onchange) {
  const s = el('select', { class: 'metric', 'aria-label': 'Metric', onchange: (e) => onchange(e.target.value) });
  const names = Object.keys(state.metrics);
  if (value && !names.includes(value)) names.unshift(value);
  for (const m of names) s.append(el('option', { value: m, text: m }));
  s.value = value || '';
  return s;
}

class GraphView {
  constructor(w) {
    this.w = w;
    this.chart = null;
    this.root = el('section', { class: w.wide ? 'widget wide' : 'widget', 'data-type': 'graph', 'data-id': w.id });
    this.seq = 0;
    this.build();
  }

  build() {
    const w = this.w;
    const title = el('h3', { class: 'title', contenteditable: 'true', spellcheck: 'false', title: 'Click to rename', text: w.title });
    title.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); title.blur(); }
      if (e.key === 'Escape') { title.textContent = w.title; title.blur(); }
    });
    title.addEventListener('blur', () => {
      const t = title.textContent.trim();
      if (t && t !== w.title) { w.title = t; save(); } else title.textContent = w.title;
    });
    const renderer = el('select', { class: 'renderer', 'aria-label': 'Chart type', onchange: (e) => { w.renderer = e.target.value; save(); this.redraw(); } });
    for (const r of RENDERERS) renderer.append(el('option', { value: r, text: r }));
    renderer.value = w.renderer || 'line';
    this.root.replaceChildren(
      el('header', {},
        title,
        el('div', { class: 'actions' },
          renderer,
          this.bandButton = el('button', { class: 'band', title: 'Shade each timing series from its p50 to its p99', 'aria-pressed': String(!!w.band), onclick: () => { w.band = !w.band; this.bandButton.setAttribute('aria-pressed', String(w.band)); save(); this.redraw(); } }, 'p50–p99'),
          el('button', { class: 'share', title: 'Share as an embedded chart', onclick: () => this.share() }, 'Share'),
          el('button', { class: 'csv', title: 'Download the data as CSV', onclick: () => this.csv() }, 'CSV'),
          el('button', { class: 'wide-toggle', title: 'Full width or half', 'aria-label': 'Toggle width', onclick: () => { w.wide = !w.wide; this.root.classList.toggle('wide', !!w.wide); save(); } }, '⇔'),
          el('button', { class: 'icon remove', title: 'Remove this graph', 'aria-label': 'Remove', onclick: () => removeWidget(w.id) }, '×'))),
      this.seriesList = el('div', { class: 'series-list' }),
      el('button', { class: 'link add-series', onclick: () => this.addSeries() }, '+ Add series'),
      this.chartEl = el('div', { class: 'chart' }),
      this.status = el('p', { class: 'status' }));
    this.buildSeries();
  }

  buildSeries() {
    this.bandButton.hidden = !this.w.series.some(statOf);
    this.seriesList.replaceChildren(...this.w.series.map((s, i) => {
      const filt = el('select', { class: 'filter', 'aria-label': 'Filter value' });
      for (const o of seriesOptions(s.metric)) filt.append(el('option', { value: o.value, text: o.label }));
      filt.value = s.filter_name ? JSON.stringify([s.filter_name, s.filter_value]) : '';
      if (filt.value === '' && s.filter_name) {
        const v = JSON.stringify([s.filter_name, s.filter_value]);
        filt.append(el('option', { value: v, text: `${s.filter_name} = ${s.filter_value}` }));
        filt.value = v;
      }
      filt.addEventListener('change', () => {
        if (filt.value) [s.filter_name, s.filter_value] = JSON.parse(filt.value);
        else { s.filter_name = null; s.filter_value = null; }
        save(); this.redraw();
      });
      return el('div', { class: 'series-row' },
        el('span', { class: 'swatch', style: { background: PALETTE[i % PALETTE.length] } }),
        metricSelect(s.metric, (m) => { s.metric = m; s.filter_name = null; s.filter_value = null; s.stat = null; save(); this.buildSeries(); this.redraw(); }),
        filt,
        statOf(s) ? statSelect(s, (v) => { s.stat = v; save(); this.redraw(); }) : null,
        this.w.series.length > 1
          ? el('button', { class: 'icon', title: 'Remove this series', 'aria-label': 'Remove series', onclick: () => { this.w.series.splice(i, 1); save(); this.buildSeries(); this.redraw(); } }, '×')
          : null);
    }));
  }

  addSeries() {
    const first = Object.keys(state.metrics)[0] || '';
    const last = this.w.series[this.w.series.length - 1];
    this.w.series.push({ metric: last ? last.metric : first, filter_name: null, filter_value: null });
    save();
    this.buildSeries();
    this.redraw();
  }

  // The series' stats, and with the band on, each timing series' p50 and
  // p99 after them (this.bands says where).
  async fetch() {
    const seq = ++this.seq;
    const ask = (s, stat) => {
      const q = rangeParams();
      q.set('name', s.metric);
      if (s.filter_name) { q.set('filter_name', s.filter_name); q.set('filter_value', s.filter_value); }
      if (stat) q.set('stat', stat);
      return api(`${P(state.doc.project)}/stats?${q}`);
    };
    const banded = this.w.band && this.w.renderer !== 'stacked';
    const timed = banded ? this.w.series.map((s, i) => [s, i]).filter(([s]) => statOf(s)) : [];
    const [results, extra] = await Promise.all([
      Promise.all(this.w.series.map((s) => ask(s, statOf(s)))),
      Promise.all(timed.flatMap(([s]) => [ask(s, 'p50'), ask(s, 'p99')])),
    ]);
    if (seq !== this.seq) return null; // a newer fetch started
    const xs = results.length ? results[0].range.map((p) => p[0]) : [];
    const raw = [xs, ...[...results, ...extra].map((r) => r.range.map((p) => p[1]))];
    const n = results.length;
    this.bands = timed.map(([, i], k) => ({ of: i + 1, lo: n + 1 + 2 * k, hi: n + 2 + 2 * k }));
    this.results = results;
    return raw;
  }

  // Rebuilds the chart (series, renderer or period changed).
  async redraw() {
    if (!this.w.series.length || !this.w.series.every((s) => s.metric)) {
      this.destroyChart();
      clearExpiry(this, this.chartEl);
      this.setStatus('Pick a metric for each series.');
      return;
    }
    const x = expiry();
    if (x) {
      this.seq++; // a fetch in flight must not draw
      if (this.chart) this.destroyChart();
      this.results = null;
      showExpiry(this, this.chartEl, x);
      return;
    }
    clearExpiry(this, this.chartEl);
    try {
      const raw = await this.fetch();
      if (!raw) return;
      this.destroyChart();
      this.chart = makeChart(this.chartEl, {
        raw,
        labels: this.w.series.map(labelOf),
        bands: this.bands || [],
        renderer: this.w.renderer || 'line',
        period: state.doc.period,
      });
      this.root.dataset.points = String(raw[0].length);
      this.setStatus(this.summary());
      this.root.dataset.ready = String(++GraphView.draws);
    } catch (e) {
      this.setStatus(e.message, true);
    }
  }

  // New data for the same chart (auto-refresh).
  async refresh() {
    if (!this.chart || expiry()) return this.redraw();
    try {
      const raw = await this.fetch();
      if (!raw) return;
      if (raw[0].length !== this.chart.raw[0].length || raw[0][0] !== this.chart.raw[0][0]) return this.redraw();
      this.chart.update(raw);
      this.setStatus(this.summary());
    } catch (e) {
      this.setStatus(e.message, true);
    }
  }

  summary() {
    const r = this.results || [];
    if (!r.length || !r[0].range.length) return '';
    const a = r[0].range[0][0];
    const b = r[0].range[r[0].range.length - 1][0];
    return `${r[0].range.length} × ${state.doc.period} · ${fmtBucket(a, state.doc.period)} – ${fmtBucket(b, state.doc.period)}`;
  }

  setStatus(text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle('error', error);
  }

  destroyChart() {
    if (this.chart) { this.chart.destroy(); this.chart = null; }
    this.chartEl.replaceChildren();
  }

  csv() {
    if (!this.chart) return;
    const raw = this.chart.raw;
    const rows = [['bucket', 'time_utc', ...this.w.series.map(labelOf)]];
    const cols = raw.slice(1, 1 + this.w.series.length); // not the band's
    raw[0].forEach((x, i) => rows.push([x, fmtBucket(x, state.doc.period), ...cols.map((ys) => ys[i])]));
    download(`${slug(this.w.title)}-${state.doc.period}.csv`, toCSV(rows));
  }

  async share() {
    const body = {
      name: this.w.title,
      renderer: this.w.renderer || 'line',
      period: state.doc.period,
      metrics: this.w.series.map((s) => ({ metric_name: s.metric, filter_name: s.filter_name || null, filter_value: s.filter_name ? s.filter_value : null })),
    };
    try {
      const links = await api(`${P(state.doc.project)}/embedded/`, { method: 'POST', body });
      showShare(links);
    } catch (e) {
      this.setStatus(`Could not share: ${e.message}`, true);
    }
  }

  destroy() { this.seq++; this.destroyChart(); this.root.remove(); }
}
GraphView.draws = 0;

// ---- Table widget ----

class TableView {
  constructor(w) {
    this.w = w;
    this.root = el('section', { class: 'widget wide', 'data-type': 'table', 'data-id': w.id });
    this.sort = { col: -1, dir: -1 }; // -1: by total, descending
    this.seq = 0;
    this.build();
  }

  build() {
    const w = this.w;
    const title = el('h3', { class: 'title', contenteditable: 'true', spellcheck: 'false', title: 'Click to rename', text: w.title });
    title.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); title.blur(); }
      if (e.key === 'Escape') { title.textContent = w.title; title.blur(); }
    });
    title.addEventListener('blur', () => {
      const t = title.textContent.trim();
      if (t && t !== w.title) { w.title = t; save(); } else title.textContent = w.title;
    });
    this.root.replaceChildren(
      el('header', {},
        title,
        el('span', { class: 'kind' }, 'table'),
        el('div', { class: 'actions' },
          el('button', { class: 'csv', title: 'Download the data as CSV', onclick: () => this.csv() }, 'CSV'),
          el('button', { class: 'icon remove', title: 'Remove this table', 'aria-label': 'Remove', onclick: () => removeWidget(w.id) }, '×'))),
      this.controls = el('div', { class: 'table-controls' }),
      this.body = el('div', { class: 'table-wrap' }),
      this.status = el('p', { class: 'status' }));
    this.buildControls();
  }

  buildControls() {
    const w = this.w;
    const filters = Object.keys(state.metrics[w.metric] || {});
    const fsel = el('select', { class: 'filter-name', 'aria-label': 'Split by filter', onchange: (e) => { w.filter_name = e.target.value; save(); this.redraw(); } });
    for (const f of filters) fsel.append(el('option', { value: f, text: f }));
    if (w.filter_name && !filters.includes(w.filter_name)) fsel.append(el('option', { value: w.filter_name, text: w.filter_name }));
    fsel.value = w.filter_name || '';
    this.controls.replaceChildren(
      'Metric', metricSelect(w.metric, (m) => { w.metric = m; w.filter_name = Object.keys(state.metrics[m] || {})[0] || ''; w.stat = null; save(); this.buildControls(); this.redraw(); }),
      'split by', fsel,
      ...(statOf(w) ? ['showing', statSelect(w, (v) => { w.stat = v; save(); this.redraw(); })] : []));
  }

  async redraw() {
    const w = this.w;
    if (!w.metric || !w.filter_name) {
      clearExpiry(this, this.body);
      this.body.replaceChildren();
      this.setStatus(w.metric ? `"${w.metric}" has no filters to split by: send events with "f", e.g. {"status": "paid"}.` : 'Pick a metric.');
      return;
    }
    const seq = ++this.seq;
    const x = expiry();
    if (x) {
      this.data = null;
      this.rendered = false;
      showExpiry(this, this.body, x);
      return;
    }
    clearExpiry(this, this.body);
    const q = rangeParams();
    q.set('name', w.metric);
    q.set('filter_name', w.filter_name);
    if (statOf(w)) q.set('stat', statOf(w));
    try {
      const r = await api(`${P(state.doc.project)}/stats_dataset?${q}`);
      if (seq !== this.seq) return;
      this.data = r;
      this.render();
      this.root.dataset.ready = String(++TableView.draws);
    } catch (e) {
      this.setStatus(e.message, true);
    }
  }

  refresh() { return this.redraw(); }

  // A row's total: the sum where values add (a counter, a count, a sum),
  // the least or greatest for min and max; an average, a gauge, a set's
  // distinct count or a percentile of the range is not made of its
  // buckets' ones, so those have none (null).
  totalOf(cells) {
    const stat = statOf(this.w);
    const kind = state.kinds[this.w.metric];
    const xs = cells.filter((c) => c != null);
    if (stat === 'min' || stat === 'max') return xs.length ? Math[stat](...xs) : null;
    if (stat === 'count' || stat === 'sum' || (!stat && kind === 'counter')) return xs.reduce((a, b) => a + b, 0);
    return null;
  }

  rows() {
    const d = (this.data && this.data.data) || {};
    const values = Object.keys(d);
    const buckets = values.length ? d[values[0]].range.map((p) => p[0]) : [];
    const rows = values.map((v) => {
      const cells = d[v].range.map((p) => p[1]);
      return { value: v, cells, total: this.totalOf(cells) };
    });
    const { col, dir } = this.sort;
    rows.sort((a, b) => {
      let x; let y;
      if (col === -2) { x = a.value; y = b.value; return dir * x.localeCompare(y); }
      if (col === -1) { x = a.total; y = b.total; } else { x = a.cells[col]; y = b.cells[col]; }
      if (x == null || y == null) return (x == null) - (y == null) || a.value.localeCompare(b.value); // empty last
      return dir * (x - y) || a.value.localeCompare(b.value);
    });
    return { buckets, rows, totals: rows.some((r) => r.total != null) };
  }

  render() {
    const { buckets, rows, totals } = this.rows();
    const period = this.data.period;
    if (!rows.length) {
      this.body.replaceChildren();
      this.setStatus(`No values of "${this.w.filter_name}" in this range.`);
      return;
    }
    const head = el('tr');
    const th = (label, col) => {
      const cls = this.sort.col === col ? (this.sort.dir > 0 ? 'sorted-asc' : 'sorted-desc') : '';
      return el('th', { class: cls, 'data-col': col, title: 'Sort', onclick: () => {
        this.sort = { col, dir: this.sort.col === col ? -this.sort.dir : (col === -2 ? 1 : -1) };
        this.render();
      } }, label);
    };
    head.append(th(this.w.filter_name, -2));
    buckets.forEach((b, i) => head.append(th(fmtBucket(b, period), i)));
    if (totals) head.append(th(statOf(this.w) === 'min' || statOf(this.w) === 'max' ? statOf(this.w) : 'total', -1));
    const body = el('tbody');
    for (const r of rows) {
      const tr = el('tr', {}, el('td', { text: r.value }));
      for (const c of r.cells) tr.append(el('td', { text: fmtNum(c), title: String(c) }));
      if (totals) tr.append(el('td', { text: fmtNum(r.total), title: String(r.total) }));
      body.append(tr);
    }
    const keep = this.body.scrollLeft;
    const atStart = !this.rendered;
    this.body.replaceChildren(el('table', { class: 'data' }, el('thead', {}, head), body));
    // The newest buckets are at the right: start there, then keep the place.
    this.body.scrollLeft = atStart ? this.body.scrollWidth : keep;
    this.rendered = true;
    const shows = statOf(this.w) ? ` · ${this.w.metric} ${statOf(this.w)}` : '';
    this.setStatus(`${rows.length} value${rows.length === 1 ? '' : 's'} × ${buckets.length} ${period} bucket${buckets.length === 1 ? '' : 's'}${shows}${totals ? '' : ' · no total: the ' + (statOf(this.w) || `${state.kinds[this.w.metric] || ''} value`) + ' of a range is not made of its buckets\''}`);
  }

  setStatus(text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle('error', error);
  }

  csv() {
    if (!this.data) return;
    const { buckets, rows, totals } = this.rows();
    const head = statOf(this.w) ? `${this.w.filter_name} (${this.w.metric} ${statOf(this.w)})` : this.w.filter_name;
    const out = [[head, ...buckets.map((b) => fmtBucket(b, this.data.period)), ...(totals ? ['total'] : [])]];
    for (const r of rows) out.push([r.value, ...r.cells, ...(totals ? [r.total] : [])]);
    download(`${slug(this.w.title)}-${this.data.period}.csv`, toCSV(out));
  }

  destroy() { this.seq++; this.root.remove(); }
}
TableView.draws = 0;

function slug(s) {
  return (s || 'gottwall').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'gottwall';
}

// ---- Widgets on the page ----

function mount(w) {
  const v = w.type === 'table' ? new TableView(w) : new GraphView(w);
  state.views.set(w.id, v);
  $('#widgets').append(v.root);
  v.redraw();
  return v;
}

function removeWidget(id) {
  const list = widgets();
  const i = list.findIndex((w) => w.id === id);
  if (i >= 0) list.splice(i, 1);
  const v = state.views.get(id);
  if (v) v.destroy();
  state.views.delete(id);
  save();
  renderEmpty();
}

function addGraph() {
  const first = Object.keys(state.metrics)[0] || '';
  const w = { id: newId(), type: 'graph', title: first ? `${first}` : 'New graph', renderer: 'line', series: [{ metric: first, filter_name: null, filter_value: null }] };
  widgets().push(w);
  save();
  mount(w);
  renderEmpty();
}

function addTable() {
  const names = Object.keys(state.metrics);
  const metric = names.find((m) => Object.keys(state.metrics[m]).length) || names[0] || '';
  const filter = Object.keys(state.metrics[metric] || {})[0] || '';
  const w = { id: newId(), type: 'table', title: metric ? `${metric} by ${filter || '…'}` : 'New table', metric, filter_name: filter };
  widgets().push(w);
  save();
  mount(w);
  renderEmpty();
}

function curlLine(project) {
  const p = CONFIG.projects.find((x) => x.name === project);
  const pub = p ? p.public_key : 'PUBLIC_KEY';
  return `curl -u '${pub}:PRIVATE_KEY' -H 'Content-Type: application/json' \\\n     -d '{"n": "orders", "v": 1, "f": {"status": "paid"}}' \\\n     ${CONFIG.ingest_url}/api/v1/${project}/incr`;
}

function renderEmpty() {
  const e = $('#empty');
  const noMetrics = Object.keys(state.metrics).length === 0;
  const noWidgets = widgets().length === 0;
  if (noMetrics) {
    e.replaceChildren(
      el('h2', {}, `No metrics yet in “${state.doc.project}”`),
      el('p', {}, 'Send one with curl (PRIVATE_KEY is the project\'s private key from gottwall.conf, or SECRET_KEY):'),
      el('pre', { class: 'curl' }, curlLine(state.doc.project)),
      el('p', {}, 'It shows up here within a second or two.'));
  } else if (noWidgets) {
    e.replaceChildren(
      el('h2', {}, 'This dashboard is empty'),
      el('p', {}, `“${state.doc.project}” has ${Object.keys(state.metrics).length} metric${Object.keys(state.metrics).length === 1 ? '' : 's'}. Add a graph or a table to look at them.`),
      el('p', {},
        el('button', { class: 'primary', onclick: addGraph }, '+ Graph'), ' ',
        el('button', { onclick: addTable }, '+ Table')));
  }
  e.classList.toggle('hidden', !(noMetrics || noWidgets));
}

// ---- Share dialog ----

function showShare(links) {
  const field = (label, value, open) => el('div', { class: 'share-field' },
    el('label', {}, label),
    el('div', { class: 'row' },
      el('input', { readonly: true, value, onfocus: (e) => e.target.select() }),
      el('button', { type: 'button', onclick: (e) => { navigator.clipboard && navigator.clipboard.writeText(value); e.target.textContent = 'Copied'; } }, 'Copy'),
      open ? el('a', { href: value, target: '_blank', rel: 'noopener', class: 'open-link' }, 'Open') : null));
  $('#share-links').replaceChildren(
    field('Page', links.html_link, true),
    field('Iframe', links.iframe),
    field('Script', `<script src="${links.js_link}"></script>`),
    field('JSON', links.json_link, true));
  $('#share-dialog').dataset.html = links.html_link;
  $('#share-dialog').showModal();
}

// ---- Loading and refreshing ----

async function loadMetrics() {
  const [metrics, kinds] = await Promise.all([
    api(`${P(state.doc.project)}/metrics`),
    api(`${P(state.doc.project)}/kinds`),
  ]);
  state.metrics = metrics;
  state.kinds = kinds;
}

async function loadProject() {
  for (const v of state.views.values()) v.destroy();
  state.views.clear();
  notice('');
  try {
    await loadMetrics();
  } catch (e) {
    notice(`Could not read the metrics of “${state.doc.project}”: ${e.message}`);
    state.metrics = {};
  }
  renderEmpty();
  for (const w of widgets()) mount(w);
}

async function refreshAll() {
  if (document.hidden || !state.doc.autorefresh) return;
  try {
    const before = JSON.stringify(state.metrics);
    const wasEmpty = Object.keys(state.metrics).length === 0;
    await loadMetrics();
    if (JSON.stringify(state.metrics) !== before) {
      // The project's first metric arrived while the page was open: show it.
      if (wasEmpty && widgets().length === 0) addGraph();
      renderEmpty();
      for (const v of state.views.values()) (v.buildSeries || v.buildControls).call(v);
    }
    notice('');
  } catch (e) {
    notice(`Refresh failed: ${e.message}`);
    return;
  }
  syncPeriods(); // the oldest buckets kept move on with the clock
  await Promise.all([...state.views.values()].map((v) => v.refresh()));
}

// Ticks every EMPTY_REFRESH_MS; refreshes on every tick while the project
// has no metrics, else every REFRESH_MS.
let lastRefresh = Date.now();
function scheduleRefresh() {
  setTimeout(async () => {
    const empty = Object.keys(state.metrics).length === 0;
    if (empty || Date.now() - lastRefresh >= REFRESH_MS - EMPTY_REFRESH_MS / 2) {
      lastRefresh = Date.now();
      await refreshAll();
    }
    scheduleRefresh();
  }, EMPTY_REFRESH_MS);
}

function redrawAll() {
  for (const v of state.views.values()) v.redraw();
}

function setPeriod(p) {
  state.doc.period = p;
  syncToolbar();
  save();
  redrawAll();
}

// The period buttons: those PERIODS leaves out disabled, those whose
// retention the range reaches before greyed; the date pickers start at
// the first day the period keeps whole.
function syncPeriods() {
  for (const b of document.querySelectorAll('#periods button')) {
    const p = b.dataset.period;
    const x = isKept(p) && expiry(p);
    b.classList.toggle('active', p === state.doc.period);
    b.classList.toggle('expired', !!x);
    b.disabled = !isKept(p);
    b.title = !isKept(p) ? `${p} buckets are not kept by this server (PERIODS)`
      : x ? expiryText(x) : '';
  }
  const oldest = oldestKept(state.doc.period);
  let min = '';
  if (oldest != null) {
    const day = bucketStart('day', oldest);
    min = new Date((day < oldest ? day + 86400 : day) * 1000).toISOString().slice(0, 10);
  }
  $('#from-date').min = min;
  $('#to-date').min = min;
}

function syncToolbar() {
  syncPeriods();
  $('#from-date').value = state.doc.from || '';
  $('#to-date').value = state.doc.to || '';
  const t = $('#refresh-toggle');
  t.classList.toggle('on', !!state.doc.autorefresh);
  t.textContent = state.doc.autorefresh ? 'Auto-refresh on' : 'Auto-refresh paused';
}

function setupToolbar() {
  const sel = $('#project');
  for (const p of CONFIG.projects) sel.append(el('option', { value: p.name, text: p.name }));
  sel.value = state.doc.project;
  sel.addEventListener('change', () => { state.doc.project = sel.value; save(); loadProject(); });

  for (const b of document.querySelectorAll('#periods button')) {
    b.addEventListener('click', () => setPeriod(b.dataset.period));
  }
  const dateChanged = () => {
    const from = $('#from-date').value;
    const to = $('#to-date').value;
    if (from && to && from > to) { notice('The “from” date is after the “to” date.'); return; }
    notice('');
    state.doc.from = from;
    state.doc.to = to;
    syncPeriods();
    save();
    redrawAll();
  };
  $('#from-date').addEventListener('change', dateChanged);
  $('#to-date').addEventListener('change', dateChanged);
  $('#clear-dates').addEventListener('click', () => { state.doc.from = ''; state.doc.to = ''; syncToolbar(); save(); redrawAll(); });
  $('#refresh-toggle').addEventListener('click', () => {
    state.doc.autorefresh = !state.doc.autorefresh;
    syncToolbar();
    save();
    if (state.doc.autorefresh) refreshAll(); // resuming: catch up now
  });
  $('#add-graph').addEventListener('click', addGraph);
  $('#add-table').addEventListener('click', addTable);

  // Logging out ends the session on the server: store a pending or running
  // save of the dashboard first, or it would arrive after and be refused.
  $('#logout').addEventListener('submit', (e) => {
    e.preventDefault();
    window.gw.flush().catch(() => {}).finally(() => e.target.submit());
  });
  if (CONFIG.anonymous) {
    $('#logout').classList.add('hidden');
    $('#user').textContent = 'anonymous access';
  } else {
    $('#user').textContent = CONFIG.user;
  }
  syncToolbar();
}

async function main() {
  let saved = {};
  const config = loadServerConfig(); // at the same time
  try { saved = await api('api/v1/dashboard'); } catch (e) { notice(`Could not load your dashboard: ${e.message}`); }
  await config;
  if (saved && saved.version === 1) Object.assign(state.doc, saved);
  const names = CONFIG.projects.map((p) => p.name);
  if (!names.includes(state.doc.project)) state.doc.project = names[0] || '';
  if (!PERIODS.includes(state.doc.period)) state.doc.period = 'day';
  state.doc.projects = state.doc.projects || {};
  setupToolbar();
  if (!state.doc.project) {
    $('#empty').replaceChildren(el('h2', {}, 'No projects configured'), el('p', {}, 'Add one to PROJECTS in gottwall.conf and restart (or send SIGHUP).'));
    $('#empty').classList.remove('hidden');
    return;
  }
  await loadProject();
  scheduleRefresh();
  document.body.dataset.loaded = '1';
}

main();
