// web/chart.js: what the dashboard and the embedded chart page share:
// the palette, bucket and number formatting (all in UTC, as the server
// buckets), and uPlot charts in four renderers (line, area, bar, stacked).
// uPlot itself is loaded as a classic script (window.uPlot).

export const PALETTE = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c',
  '#0891b2', '#ca8a04', '#db2777', '#4b5563', '#65a30d'];

export const RENDERERS = ['line', 'area', 'bar', 'stacked'];

const pad = (n) => String(n).padStart(2, '0');

// A bucket's label, in UTC, as precise as its period.
export function fmtBucket(ts, period) {
  if (period === 'all') return 'all time';
  const d = new Date(ts * 1000);
  const day = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  switch (period) {
    case 'minute':
    case 'hour':
      return `${day} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    case 'month':
      return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`;
    case 'year':
      return String(d.getUTCFullYear());
    case 'week':
      return `week of ${day}`;
    default:
      return day;
  }
}

// The start of the bucket of period holding ts (epoch seconds), as the
// server's buckets are: UTC, weeks from Monday.
export function bucketStart(period, ts) {
  const size = { minute: 60, hour: 3600, day: 86400 }[period];
  if (size) return Math.floor(ts / size) * size;
  if (period === 'week') {
    const day = Math.floor(ts / 86400);
    return (day - ((day + 3) % 7 + 7) % 7) * 86400; // day 0 was a Thursday
  }
  const d = new Date(ts * 1000);
  if (period === 'month') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) / 1000;
  if (period === 'year') return Date.UTC(d.getUTCFullYear(), 0, 1) / 1000;
  return 0; // all
}

// RETENTION's seconds as the server writes them ("1d", "90d", "36h"), or
// "for ever" for none.
export function fmtDuration(secs) {
  if (!secs) return 'for ever';
  for (const [n, u] of [[365 * 86400, 'y'], [86400, 'd'], [3600, 'h'], [60, 'm']]) {
    if (secs % n === 0) return `${secs / n}${u}`;
  }
  return `${secs}s`;
}

// 1234567 -> "1.23M"; small numbers as they are (at most 3 decimals).
export function fmtNum(v) {
  if (v == null || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  const units = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'k']];
  for (const [n, s] of units) {
    if (a >= n) return +(v / n).toFixed(a >= n * 100 ? 0 : a >= n * 10 ? 1 : 2) + s;
  }
  return String(+v.toFixed(a >= 100 ? 1 : 3));
}

// The units a series can be shown in; "" is none, anything else not
// listed is a custom suffix.
export const UNITS = ['', 'ms', 's', 'bytes', '%'];

// A value with its unit: 1536 bytes -> "1.5 KiB", 1250 ms -> "1.25 s",
// 12.5 % -> "12.5%", a custom suffix after the number.
export function fmtValue(v, unit = '') {
  if (v == null || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  if (unit === 'bytes') {
    const steps = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (i < steps.length - 1 && Math.abs(v) >= 1024 ** (i + 1)) i++;
    return `${+(v / 1024 ** i).toFixed(i ? 1 : 0)} ${steps[i]}`;
  }
  if (unit === 'ms' && a >= 1000) return `${fmtNum(v / 1000)} s`;
  if (unit === '%') return `${fmtNum(v)}%`;
  return unit ? `${fmtNum(v)} ${unit}` : fmtNum(v);
}

// An x-axis tick in UTC, 24-hour ISO style, as fine as the ticks' spacing
// (secs): "14:30", with the day "12-03" under the first tick of a day;
// "12-03"; "2026-12"; "2026".
export function fmtTick(ts, secs, first) {
  const d = new Date(ts * 1000);
  const hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  const md = `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  if (secs < 86400) return first || hm === '00:00' ? `${hm}\n${d.getUTCFullYear()}-${md}` : hm;
  if (secs < 28 * 86400) return first || md === '01-01' ? `${md}\n${d.getUTCFullYear()}` : md;
  if (secs < 365 * 86400) return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`;
  return String(d.getUTCFullYear());
}

// "2026-12-03 14:30" (UTC) -> epoch seconds, or null when it is not one.
export function parseTime(text) {
  const m = /^\s*(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}))?\s*$/.exec(text || '');
  if (!m) return null;
  const t = Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] || 0), +(m[5] || 0)) / 1000;
  const back = new Date(t * 1000);
  return back.getUTCDate() === +m[3] && back.getUTCMonth() === +m[2] - 1 ? t : null;
}

// epoch seconds -> "2026-12-03 14:30" (UTC), what parseTime reads.
export function fmtTime(ts) {
  return new Date(ts * 1000).toISOString().slice(0, 16).replace('T', ' ');
}

export function seriesLabel(s) {
  if (s.filter_name && s.filter_value != null) {
    return `${s.metric} · ${s.filter_name}=${s.filter_value}`;
  }
  return s.metric || '(no metric)';
}

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

// Builds the uPlot data for a renderer: stacked charts plot running sums,
// the legend still shows each series' own value.
function plotData(raw, renderer) {
  if (renderer !== 'stacked') return raw;
  const out = [raw[0]];
  let acc = raw[0].map(() => 0);
  for (let i = 1; i < raw.length; i++) {
    acc = acc.map((v, j) => v + (raw[i][j] || 0));
    out.push(acc.slice());
  }
  return out;
}

// The theme's colours for axes and grid (the page's CSS variables, light
// or dark with prefers-color-scheme).
function themeColors() {
  const cs = getComputedStyle(document.documentElement);
  const v = (name, dflt) => (cs.getPropertyValue(name) || '').trim() || dflt;
  return { axis: v('--muted', '#6b7280'), grid: v('--grid', '#eef0f3'), tick: v('--line', '#e5e7eb') };
}

// A floating box by the cursor with the bucket and every series' value
// (a stacked chart's parts each with its own value, not the running sum).
function tooltipPlugin(state, fmtX, fmtY) {
  let tip;
  return {
    hooks: {
      init: (u) => {
        tip = document.createElement('div');
        tip.className = 'gw-tooltip';
        tip.hidden = true;
        u.over.append(tip);
        u.over.addEventListener('mouseleave', () => { tip.hidden = true; });
      },
      setCursor: (u) => {
        const i = u.cursor.idx;
        if (i == null || u.cursor.left < 0) { tip.hidden = true; return; }
        const rows = [];
        const head = document.createElement('div');
        head.className = 'gw-tooltip-time';
        head.textContent = fmtX(state.raw[0][i]);
        rows.push(head);
        u.series.forEach((s, si) => {
          if (si === 0 || !s.show || si >= state.raw.length) return;
          const r = document.createElement('div');
          const m = document.createElement('span');
          m.className = 'gw-tooltip-marker';
          m.style.background = typeof s.stroke === 'function' ? s.stroke(u, si) : s.stroke;
          r.append(m, `${s.label}: ${fmtY(si, state.raw[si][i])}`);
          rows.push(r);
        });
        tip.replaceChildren(...rows);
        tip.hidden = false;
        const w = u.over.clientWidth;
        const left = u.cursor.left + 14;
        tip.style.left = `${left + tip.offsetWidth > w ? Math.max(0, u.cursor.left - tip.offsetWidth - 14) : left}px`;
        tip.style.top = `${Math.max(0, Math.min(u.cursor.top + 10, u.over.clientHeight - tip.offsetHeight))}px`;
      },
    },
  };
}

// Legend entries (which toggle a series) reachable and usable from the
// keyboard, and saying whether their series is shown.
function keyboardLegend(u) {
  u.root.querySelectorAll('.u-legend .u-series').forEach((row, si) => {
    if (si === 0) return;
    row.tabIndex = 0;
    row.setAttribute('role', 'button');
    const sync = () => row.setAttribute('aria-pressed', String(!!u.series[si].show));
    sync();
    row.addEventListener('click', () => setTimeout(sync));
    row.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter' && e.key !== ' ') return;
      e.preventDefault();
      u.setSeries(si, { show: !u.series[si].show });
      sync();
    });
  });
}

// The smallest a filling chart's plot gets (px), however small its frame.
const FILL_MIN = 40;

// Sizes u (its plot and its legend under it) to el's box: el's width, and
// the height the legend leaves. The legend wraps with the width, which
// uPlot applies a little later (a microtask): its setSize hook calls this
// again once that is done (not from inside the hook, where uPlot would
// drop another size), until the size holds (the legend's height depends
// on the width alone).
function fitChart(u, el) {
  if (!u.root.isConnected) return;
  const w = Math.max(FILL_MIN, el.clientWidth);
  const legend = u.root.getBoundingClientRect().height - u.height;
  const h = Math.max(FILL_MIN, Math.floor(el.clientHeight - legend));
  if (w !== u.width || h !== u.height) u.setSize({ width: w, height: h });
}

// Creates a chart in el. raw = [xs, ys1, ys2, ...] (the API's numbers,
// null for a bucket without a value: drawn as a gap), labels = one per
// series, units = one per series ("" none, "ms", "s", "bytes", "%" or a
// suffix). Returns {u, update(raw), destroy()}.
// bands: [{ of, lo, hi }]: the series at raw indices lo and hi (after the
// labelled ones) drawn as a shaded area between them in the colour of
// series `of` (a latency band: a timing's p50 to p99).
// sync: a key shared by charts whose crosshairs move together; onZoom(from,
// to): called with the range of a drag across the chart (the chart itself
// does not zoom: the caller sets the range of every chart).
// fill: the chart, its legend included, takes el's width and height (not
// `height`) and follows el's size (an embedded chart filling its frame);
// el's size must not depend on its content (e.g. flex: 1 1 0).
export function makeChart(el, {
  raw, labels, units = [], renderer = 'line', period = 'day', height = 280, bands: shade = [],
  sync = null, onZoom = null, fill = false,
}) {
  const uPlot = window.uPlot;
  const width = fill ? Math.max(FILL_MIN, el.clientWidth) : Math.max(240, el.clientWidth || 600);
  if (fill) height = Math.max(FILL_MIN, el.clientHeight);
  const n = labels.length;
  const state = { raw };
  const colors = themeColors();
  const last = () => Math.max(0, (state.raw[0] || []).length - 1);
  const unitOf = (si) => units[Math.min(si, n) - 1] || '';
  const fmtY = (si, v) => fmtValue(v, unitOf(si));
  // Bars: two series side by side, more nested (widest first).
  const barPath = (i) => uPlot.paths.bars({
    size: n === 2 ? [0.42, 40] : [0.8 * (1 - i / (n + 1)), 64],
    align: n === 2 ? (i === 0 ? -1 : 1) : 0,
  });
  // Without the cursor on the chart the legend shows the latest bucket.
  const series = [{
    label: 'Time',
    value: (u, v, si, idx) => {
      const x = state.raw[0][idx == null ? last() : idx];
      return x == null ? '–' : fmtBucket(x, period);
    },
  }];
  labels.forEach((label, i) => {
    const color = PALETTE[i % PALETTE.length];
    const s = {
      label,
      stroke: color,
      width: 2,
      value: (u, v, si, idx) => fmtY(si, state.raw[si][idx == null ? last() : idx]),
      points: { show: (state.raw[0] || []).length < 60, size: 5 },
    };
    if (renderer === 'area') s.fill = alpha(color, 0.12);
    if (renderer === 'stacked') s.fill = alpha(color, 0.35);
    if (renderer === 'bar') {
      s.fill = alpha(color, 0.7);
      s.width = 1;
      s.paths = barPath(i);
      s.points = { show: false };
    }
    series.push(s);
  });
  for (const b of shade) {
    const color = PALETTE[(b.of - 1) % PALETTE.length];
    for (const [k, name] of [[b.lo, 'p50'], [b.hi, 'p99']]) {
      series[k] = {
        label: `${labels[b.of - 1]} ${name}`,
        stroke: alpha(color, 0.35),
        width: 1,
        value: (u, v, si, idx) => fmtValue(state.raw[si][idx == null ? last() : idx], units[b.of - 1] || ''),
        points: { show: false },
      };
    }
  }
  const bands = shade.map((b) => ({ series: [b.hi, b.lo], fill: alpha(PALETTE[(b.of - 1) % PALETTE.length], 0.15) }));
  if (renderer === 'stacked') {
    for (let i = labels.length; i > 1; i--) bands.push({ series: [i, i - 1] });
  }
  const axis = { stroke: colors.axis, grid: { stroke: colors.grid }, ticks: { stroke: colors.tick } };
  const opts = {
    width,
    height,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    scales: { x: { time: period !== 'all' }, y: { range: (u, mn, mx) => [Math.min(0, mn ?? 0), mx > 0 ? mx * 1.1 : 1] } },
    series,
    bands,
    legend: { live: true },
    cursor: {
      points: { size: 7 },
      drag: { x: !!onZoom, y: false, setScale: !onZoom },
      // The crosshair moves on every chart of the key; a drag (mousedown,
      // mouseup) stays on its own chart, which then zooms them all once.
      ...(sync ? { sync: { key: sync, filters: { pub: (type) => type !== 'mousedown' && type !== 'mouseup' && type !== 'dblclick' } } } : {}),
    },
    plugins: [tooltipPlugin(state, (x) => (x == null ? '–' : fmtBucket(x, period)), fmtY)],
    hooks: {
      setSize: fill ? [(u) => queueMicrotask(() => fitChart(u, el))] : [],
      setSelect: [(u) => {
        if (!onZoom || u.select.width < 3) return;
        const from = u.posToVal(u.select.left, 'x');
        const to = u.posToVal(u.select.left + u.select.width, 'x');
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        onZoom(Math.floor(from), Math.ceil(to));
      }],
    },
    axes: [
      { ...axis, size: 44,
        values: period === 'all' ? () => ['all time']
          : (u, vals, ai, space, incr) => vals.map((v, i) => fmtTick(v, incr, i === 0)) },
      { ...axis, size: 60, values: (u, vals) => vals.map((v) => fmtY(1, v)) },
    ],
  };
  // A single bucket (period "all") still gets some room either side, and
  // bars half a bucket at both ends.
  if (period === 'all') opts.scales.x = { time: false, range: () => [-1, 1] };
  else if (renderer === 'bar') {
    opts.scales.x.range = (u, mn, mx) => {
      const xs = state.raw[0];
      const pad = xs.length > 1 ? (mx - mn) / (xs.length - 1) / 2 : 1;
      return [mn - pad, mx + pad];
    };
  }
  const u = new uPlot(opts, plotData(raw, renderer), el);
  keyboardLegend(u);
  if (fill) fitChart(u, el);
  const ro = typeof ResizeObserver !== 'undefined'
    ? new ResizeObserver(() => {
      if (fill) { fitChart(u, el); return; }
      const w = Math.max(240, el.clientWidth);
      if (Math.abs(w - u.width) > 4) u.setSize({ width: w, height });
    })
    : null;
  if (ro) ro.observe(el);
  return {
    u,
    get raw() { return state.raw; },
    update(next) {
      state.raw = next;
      u.setData(plotData(next, renderer));
    },
    destroy() {
      if (ro) ro.disconnect();
      u.destroy();
    },
  };
}

// Rows of cells -> CSV text (RFC 4180 quoting). Text cells (names, filter
// values, which any key holder chooses) that a spreadsheet would run as a
// formula, those starting with = + - @ tab or CR, get a leading single
// quote (OWASP's advice against CSV injection); numbers, negative ones
// too, are written as they are.
export function toCSV(rows) {
  const cell = (v) => {
    let s = v == null ? '' : String(v);
    if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return rows.map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

export function download(name, text, type = 'text/csv') {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}
