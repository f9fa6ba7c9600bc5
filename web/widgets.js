// web/widgets.js: the dashboard's widgets: a graph (uPlot, web/chart.js)
// of one or more series, and a table of one metric split by a filter.
// Widgets sit on a 12-column grid (w.cols wide, w.height px of chart); in
// edit mode they show their editors and can be moved and resized with the
// mouse or the keyboard.
//
//   graph: {id, type: "graph", title, renamed, renderer, band, cols, height,
//           series: [{metric, filter_name, filter_value, stat, unit}]}
//   table: {id, type: "table", title, renamed, metric, filter_name, stat, cols}

import { PALETTE, RENDERERS, UNITS, bucketStart, fmtBucket, fmtDuration, fmtValue, seriesLabel, makeChart, toCSV, download } from './chart.js';
import { PERIODS, server, span, periodOf, rangeQuery, expiredBefore, isKept } from './view.js';
import { $, el, api, P, state, save, slug } from './page.js';

// What app.js provides: setPeriod(p), zoomTo(from, to), remove(id),
// share(view), moved().
export const actions = {};

// ---- Retention: a range reaching before what a period keeps ----

// null, or why the view cannot be shown in its period: {period, secs,
// oldest, start, coarser} (coarser: the next kept period holding start).
export function expiry(period = periodOf(state.view)) {
  if (period === 'all') return null;
  const { from } = span(state.view);
  const oldest = expiredBefore(period, from);
  if (oldest == null) return null;
  const start = bucketStart(period, from);
  const coarser = PERIODS.slice(PERIODS.indexOf(period) + 1).find((q) => (
    q !== 'all' && isKept(q) && expiredBefore(q, from) == null)) || null;
  return { period, secs: server.retention[period], oldest, start, coarser };
}

export function expiryText(x) {
  return `${x.period} buckets are kept for ${fmtDuration(x.secs)} (RETENTION.${x.period}): the oldest starts at `
    + `${fmtBucket(x.oldest, x.period)}, and this range starts at ${fmtBucket(x.start, x.period)}.`;
}

function expiryNotice(x) {
  return el('div', { class: 'expired' },
    el('p', { text: expiryText(x) }),
    x.coarser
      ? el('button', { class: 'coarser', 'data-period': x.coarser, onclick: () => actions.setPeriod(x.coarser) },
        `Switch to ${x.coarser} (kept ${fmtDuration(server.retention[x.coarser])})`)
      : el('p', { class: 'muted', text: 'No period keeps that time: pick a later range or Auto.' }));
}

function showExpiry(view, place, x) {
  const text = expiryText(x);
  view.root.dataset.expired = x.period;
  delete view.root.dataset.points;
  if (view.shownExpiry === text && place.firstChild) return;
  view.shownExpiry = text;
  place.replaceChildren(expiryNotice(x));
  view.setStatus('');
}

function clearExpiry(view, place) {
  if (!view.shownExpiry) return;
  delete view.root.dataset.expired;
  view.shownExpiry = null;
  place.replaceChildren();
}

// ---- Editors ----

// A timing metric's series shows one statistic (stat= of the read API):
// p95 unless another is picked. Other kinds show their value.
const TIMING_STATS = ['p50', 'p75', 'p90', 'p95', 'p99', 'p999', 'mean', 'min', 'max', 'count', 'sum'];
export const statOf = (s) => (state.kinds[s.metric] === 'timing' ? s.stat || 'p95' : null);
const labelOf = (s) => (statOf(s) ? `${seriesLabel(s)} ${statOf(s)}` : seriesLabel(s));
// A timing's values are milliseconds unless the series says otherwise.
const unitOf = (s) => (s.unit != null ? s.unit : (statOf(s) && statOf(s) !== 'count' ? 'ms' : ''));

function statSelect(s, onchange) {
  const sel = el('select', { class: 'stat', 'aria-label': 'Statistic', onchange: (e) => onchange(e.target.value) });
  for (const st of TIMING_STATS) sel.append(el('option', { value: st, text: st }));
  sel.value = statOf(s);
  return sel;
}

function unitSelect(s, onchange) {
  const sel = el('select', { class: 'unit', 'aria-label': 'Unit', title: 'Unit of the values' });
  const u = unitOf(s);
  for (const x of UNITS) sel.append(el('option', { value: x, text: x || 'no unit' }));
  if (!UNITS.includes(u)) sel.append(el('option', { value: u, text: u }));
  sel.append(el('option', { value: '\u0000custom', text: 'custom…' }));
  sel.value = u;
  const custom = el('input', { class: 'unit-custom', 'aria-label': 'Custom unit', placeholder: 'suffix', maxlength: '12', hidden: true });
  sel.addEventListener('change', () => {
    if (sel.value === '\u0000custom') { custom.hidden = false; custom.focus(); return; }
    onchange(sel.value);
  });
  custom.addEventListener('change', () => onchange(custom.value.trim()));
  return el('span', { class: 'unit-pick' }, sel, custom);
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

// A title that follows the widget's metric until the user renames it.
export function autoTitle(w) {
  if (w.type === 'table') return w.metric ? `${w.metric} by ${w.filter_name || '…'}` : 'New table';
  const s = w.series[0];
  return s && s.metric ? labelOf(s) : 'New graph';
}

function retitle(view) {
  if (view.w.renamed) return;
  view.w.title = autoTitle(view.w);
  view.titleEl.textContent = view.w.title;
}

function titleEditor(view) {
  const w = view.w;
  const title = el('h2', { class: 'title', spellcheck: 'false', text: w.title });
  title.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); title.blur(); }
    if (e.key === 'Escape') { title.textContent = w.title; title.blur(); }
  });
  title.addEventListener('blur', () => {
    const t = title.textContent.trim();
    if (t && t !== w.title) { w.title = t; w.renamed = true; save(); } else title.textContent = w.title;
  });
  return title;
}

// Turns the title editable in edit mode only.
export function setEditable(view, on) {
  view.titleEl.contentEditable = on ? 'true' : 'false';
  view.titleEl.title = on ? 'Click to rename' : '';
}

// ---- Moving and resizing on the grid ----

const MIN_COLS = 3;
const HEIGHTS = [160, 640]; // a chart's height, px

export function applySize(view) {
  const w = view.w;
  if (!w.cols) w.cols = w.type === 'table' || w.wide ? 12 : 6;
  view.root.dataset.cols = String(w.cols);
  view.root.classList.toggle('wide', w.cols === 12);
}

// The grid handle: drag to move; arrow keys move (left/right) or, with
// Shift, resize (left/right: width, up/down: height).
function gridHandles(view) {
  const move = el('button', { class: 'icon grip edit-only', title: 'Drag to move; arrow keys move, Shift+arrows resize',
    'aria-label': 'Move or resize (arrow keys; Shift+arrows resize)' }, '⠿');
  move.addEventListener('keydown', (e) => {
    const w = view.w;
    const k = e.key;
    if (!['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown'].includes(k)) return;
    e.preventDefault();
    if (e.shiftKey) {
      if (k === 'ArrowLeft' || k === 'ArrowRight') {
        w.cols = Math.max(MIN_COLS, Math.min(12, (w.cols || 6) + (k === 'ArrowRight' ? 1 : -1)));
        applySize(view);
      } else if (view.resizeChart) {
        view.resizeChart((w.height || 280) + (k === 'ArrowDown' ? 40 : -40));
      }
      save();
    } else {
      actions.moveBy(view.w.id, k === 'ArrowLeft' || k === 'ArrowUp' ? -1 : 1);
      move.focus();
    }
  });
  move.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    view.root.classList.add('dragging');
    const up = (ev) => {
      document.removeEventListener('pointermove', over);
      document.removeEventListener('pointerup', up);
      view.root.classList.remove('dragging');
      if (ev.type === 'pointerup') actions.moved();
    };
    const over = (ev) => {
      const target = document.elementFromPoint(ev.clientX, ev.clientY);
      const card = target && target.closest('.widget');
      if (!card || card === view.root) return;
      const r = card.getBoundingClientRect();
      const after = ev.clientX > r.left + r.width / 2;
      card.parentNode.insertBefore(view.root, after ? card.nextSibling : card);
    };
    document.addEventListener('pointermove', over);
    document.addEventListener('pointerup', up);
  });
  const size = el('div', { class: 'resize edit-only', title: 'Drag to resize', 'aria-hidden': 'true' });
  size.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    const grid = view.root.parentNode.getBoundingClientRect();
    const col = grid.width / 12;
    const x0 = e.clientX;
    const y0 = e.clientY;
    const cols0 = view.w.cols || 6;
    const h0 = view.w.height || 280;
    const moveTo = (ev) => {
      view.w.cols = Math.max(MIN_COLS, Math.min(12, Math.round(cols0 + (ev.clientX - x0) / col)));
      applySize(view);
      if (view.resizeChart) view.resizeChart(h0 + ev.clientY - y0, true);
    };
    const up = () => {
      document.removeEventListener('pointermove', moveTo);
      document.removeEventListener('pointerup', up);
      if (view.resizeChart) view.resizeChart(view.w.height || 280);
      save();
    };
    document.addEventListener('pointermove', moveTo);
    document.addEventListener('pointerup', up);
  });
  return { move, size };
}

// ---- A data table behind a chart, for screen readers and keyboards ----

function dataTable(view) {
  const box = el('details', { class: 'chart-data' }, el('summary', {}, 'Data as a table'));
  box.addEventListener('toggle', () => { if (box.open) view.fillDataTable(); });
  return box;
}

// ---- Graph widget ----

// What graphs and tables share: the card, its size in the grid, and the
// sequence number that drops answers to superseded requests.
class WidgetView {
  constructor(w, type) {
    this.w = w;
    this.root = el('section', { class: 'widget', 'data-type': type, 'data-id': w.id, 'aria-label': w.title });
    this.seq = 0;
    applySize(this);
  }
}

export class GraphView extends WidgetView {
  constructor(w) {
    super(w, 'graph');
    this.chart = null;
    this.build();
  }

  build() {
    const w = this.w;
    this.titleEl = titleEditor(this);
    const renderer = el('select', { class: 'renderer edit-only', 'aria-label': 'Chart type', onchange: (e) => { w.renderer = e.target.value; save(); this.redraw(); } });
    for (const r of RENDERERS) renderer.append(el('option', { value: r, text: r === 'stacked' ? 'stacked (sums the series)' : r }));
    renderer.value = w.renderer || 'line';
    const grid = gridHandles(this);
    this.root.replaceChildren(
      el('header', {},
        grid.move,
        this.titleEl,
        el('div', { class: 'actions' },
          renderer,
          this.bandButton = el('button', { class: 'band edit-only', title: 'Shade each timing series from its p50 to its p99', 'aria-pressed': String(!!w.band), onclick: () => { w.band = !w.band; this.bandButton.setAttribute('aria-pressed', String(w.band)); save(); this.redraw(); } }, 'p50–p99'),
          el('button', { class: 'share', title: 'Share as an embedded chart', onclick: () => actions.share(this) }, 'Share'),
          el('button', { class: 'csv', title: 'Download the data as CSV', onclick: () => this.csv() }, 'CSV'),
          el('button', { class: 'icon remove edit-only', title: 'Remove this graph', 'aria-label': 'Remove', onclick: () => actions.remove(w.id) }, '×'))),
      this.seriesList = el('div', { class: 'series-list edit-only' }),
      el('button', { class: 'link add-series edit-only', onclick: () => this.addSeries() }, '+ Add series'),
      this.stackNote = el('p', { class: 'stack-note', hidden: true }, 'Stacked: each series is drawn on top of the ones before it; the tooltip and legend show each one\'s own value.'),
      this.chartEl = el('div', { class: 'chart', role: 'figure', 'aria-label': w.title }),
      this.status = el('p', { class: 'status' }),
      this.tableBox = dataTable(this),
      grid.size);
    setEditable(this, state.editing);
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
        retitle(this); save(); this.redraw();
      });
      return el('div', { class: 'series-row' },
        el('span', { class: 'swatch', style: { background: PALETTE[i % PALETTE.length] } }),
        metricSelect(s.metric, (m) => { s.metric = m; s.filter_name = null; s.filter_value = null; s.stat = null; s.unit = null; retitle(this); save(); this.buildSeries(); this.redraw(); }),
        filt,
        statOf(s) ? statSelect(s, (v) => { s.stat = v; retitle(this); save(); this.redraw(); }) : null,
        unitSelect(s, (u) => { s.unit = u; save(); this.redraw(); }),
        this.w.series.length > 1
          ? el('button', { class: 'icon', title: 'Remove this series', 'aria-label': 'Remove series', onclick: () => { this.w.series.splice(i, 1); retitle(this); save(); this.buildSeries(); this.redraw(); } }, '×')
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
    const period = periodOf(state.view);
    const base = rangeQuery(state.view);
    const ask = (s, stat) => {
      const q = new URLSearchParams(base);
      q.set('name', s.metric);
      if (s.filter_name) { q.set('filter_name', s.filter_name); q.set('filter_value', s.filter_value); }
      if (stat) q.set('stat', stat);
      return api(`${P(state.view.project)}/stats?${q}`);
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
    this.period = period;
    return raw;
  }

  // Rebuilds the chart (series, renderer, range or period changed).
  async redraw() {
    this.stackNote.hidden = this.w.renderer !== 'stacked' || this.w.series.length < 2;
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
      this.draw(raw);
      this.root.dataset.ready = String(++GraphView.draws);
    } catch (e) {
      // Refused for this view (400: e.g. more buckets than MAX_POINTS): the
      // old chart is of another view and goes. A failed refresh keeps it.
      if (e.status === 400) this.destroyChart();
      this.setStatus(e.message, true);
    }
  }

  draw(raw) {
    this.destroyChart();
    this.chart = makeChart(this.chartEl, {
      raw,
      labels: this.w.series.map(labelOf),
      units: this.w.series.map(unitOf),
      bands: this.bands || [],
      renderer: this.w.renderer || 'line',
      period: this.period,
      height: this.w.height || 280,
      sync: 'gw',
      onZoom: this.period === 'all' ? null : (from, to) => actions.zoomTo(from, to),
    });
    this.root.dataset.points = String(raw[0].length);
    this.root.dataset.period = this.period;
    this.chartEl.setAttribute('aria-label', `${this.w.title}: chart, ${this.summary()}`);
    this.setStatus(this.summary());
    if (this.tableBox.open) this.fillDataTable();
  }

  // A new height (px) for the chart; live: while dragging, not saved yet.
  resizeChart(h, live = false) {
    const height = Math.round(Math.max(HEIGHTS[0], Math.min(HEIGHTS[1], h)) / 20) * 20;
    if (!live) this.w.height = height;
    if (this.chart) this.chart.u.setSize({ width: this.chart.u.width, height });
  }

  // New data for the same chart (auto-refresh).
  async refresh() {
    if (!this.chart || expiry()) return this.redraw();
    try {
      const raw = await this.fetch();
      if (!raw) return;
      if (raw[0].length !== this.chart.raw[0].length || raw[0][0] !== this.chart.raw[0][0]
          || this.period !== this.root.dataset.period) return this.draw(raw);
      this.chart.update(raw);
      this.setStatus(this.summary());
      if (this.tableBox.open) this.fillDataTable();
    } catch (e) {
      this.setStatus(e.message, true);
    }
  }

  summary() {
    const r = this.results || [];
    if (!r.length || !r[0].range.length) return r.length ? `no ${this.period} buckets in this range` : '';
    const a = r[0].range[0][0];
    const b = r[0].range[r[0].range.length - 1][0];
    return `${r[0].range.length} × ${this.period} · ${fmtBucket(a, this.period)} – ${fmtBucket(b, this.period)}`;
  }

  fillDataTable() {
    if (!this.chart) return;
    const raw = this.chart.raw;
    const n = this.w.series.length;
    const head = el('tr', {}, el('th', { scope: 'col' }, 'Time (UTC)'),
      ...this.w.series.map((s) => el('th', { scope: 'col' }, labelOf(s))));
    const body = el('tbody', {}, ...raw[0].map((x, i) => el('tr', {},
      el('th', { scope: 'row' }, fmtBucket(x, this.period)),
      ...raw.slice(1, 1 + n).map((ys, k) => el('td', {}, fmtValue(ys[i], unitOf(this.w.series[k])))))));
    const old = this.tableBox.querySelector('.table-wrap');
    const wrap = el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': `${this.w.title}: data` },
      el('table', { class: 'data plain' }, el('caption', { class: 'sr-only' }, this.w.title), el('thead', {}, head), body));
    if (old) old.replaceWith(wrap); else this.tableBox.append(wrap);
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
    raw[0].forEach((x, i) => rows.push([x, fmtBucket(x, this.period), ...cols.map((ys) => ys[i])]));
    download(`${slug(this.w.title)}-${this.period}.csv`, toCSV(rows));
  }

  destroy() { this.seq++; this.destroyChart(); this.root.remove(); }
}
GraphView.draws = 0;

// ---- Table widget ----

export class TableView extends WidgetView {
  constructor(w) {
    super(w, 'table');
    this.sort = { col: -1, dir: -1 }; // -1: by total, descending
    this.build();
  }

  build() {
    const w = this.w;
    this.titleEl = titleEditor(this);
    const grid = gridHandles(this);
    this.root.replaceChildren(
      el('header', {},
        grid.move,
        this.titleEl,
        el('span', { class: 'kind' }, 'table'),
        el('div', { class: 'actions' },
          el('button', { class: 'csv', title: 'Download the data as CSV', onclick: () => this.csv() }, 'CSV'),
          el('button', { class: 'icon remove edit-only', title: 'Remove this table', 'aria-label': 'Remove', onclick: () => actions.remove(w.id) }, '×'))),
      this.controls = el('div', { class: 'table-controls edit-only' }),
      this.body = el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': `${w.title}: table` }),
      this.status = el('p', { class: 'status' }),
      grid.size);
    setEditable(this, state.editing);
    this.buildControls();
  }

  buildControls() {
    const w = this.w;
    const filters = Object.keys(state.metrics[w.metric] || {});
    const fsel = el('select', { class: 'filter-name', 'aria-label': 'Split by filter', onchange: (e) => { w.filter_name = e.target.value; retitle(this); save(); this.redraw(); } });
    for (const f of filters) fsel.append(el('option', { value: f, text: f }));
    if (w.filter_name && !filters.includes(w.filter_name)) fsel.append(el('option', { value: w.filter_name, text: w.filter_name }));
    fsel.value = w.filter_name || '';
    this.controls.replaceChildren(
      'Metric', metricSelect(w.metric, (m) => { w.metric = m; w.filter_name = Object.keys(state.metrics[m] || {})[0] || ''; w.stat = null; retitle(this); save(); this.buildControls(); this.redraw(); }),
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
    const q = rangeQuery(state.view);
    q.set('name', w.metric);
    q.set('filter_name', w.filter_name);
    if (statOf(w)) q.set('stat', statOf(w));
    try {
      const r = await api(`${P(state.view.project)}/stats_dataset?${q}`);
      if (seq !== this.seq) return;
      this.data = r;
      this.render();
      this.root.dataset.ready = String(++TableView.draws);
    } catch (e) {
      if (e.status === 400) { // as for a graph
        this.data = null;
        this.rendered = false;
        this.body.replaceChildren();
      }
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
    // Each header is a button: sorting works from the keyboard too.
    const th = (label, col) => {
      const sorted = this.sort.col === col;
      const cls = sorted ? (this.sort.dir > 0 ? 'sorted-asc' : 'sorted-desc') : '';
      return el('th', { class: cls, 'data-col': col, scope: 'col',
        'aria-sort': sorted ? (this.sort.dir > 0 ? 'ascending' : 'descending') : 'none' },
      el('button', { class: 'sort', title: 'Sort', onclick: () => {
        this.sort = { col, dir: this.sort.col === col ? -this.sort.dir : (col === -2 ? 1 : -1) };
        this.render();
        const again = this.body.querySelector(`th[data-col="${col}"] button`);
        if (again) again.focus();
      } }, label));
    };
    head.append(th(this.w.filter_name, -2));
    buckets.forEach((b, i) => head.append(th(fmtBucket(b, period), i)));
    if (totals) head.append(th(statOf(this.w) === 'min' || statOf(this.w) === 'max' ? statOf(this.w) : 'total', -1));
    const body = el('tbody');
    const unit = statOf(this.w) && statOf(this.w) !== 'count' ? 'ms' : '';
    for (const r of rows) {
      const tr = el('tr', {}, el('th', { scope: 'row', text: r.value }));
      for (const c of r.cells) tr.append(el('td', { text: fmtValue(c, unit), title: String(c) }));
      if (totals) tr.append(el('td', { class: 'total', text: fmtValue(r.total, unit), title: String(r.total) }));
      body.append(tr);
    }
    const keep = this.body.scrollLeft;
    const atStart = !this.rendered;
    this.body.replaceChildren(el('table', { class: totals ? 'data totals' : 'data' }, el('thead', {}, head), body));
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

export function mountWidget(w) {
  const v = w.type === 'table' ? new TableView(w) : new GraphView(w);
  state.views.set(w.id, v);
  $('#widgets').append(v.root);
  v.redraw();
  return v;
}
