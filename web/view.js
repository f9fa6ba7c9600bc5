// web/view.js: what the dashboard shows: project, time range and period,
// and which dashboard. The view lives in the page's URL (a link or a
// reload shows the same thing); it is not part of the saved dashboard, so
// two tabs looking at different ranges never conflict.
//
//   ?project=shop&range=24h&period=auto            relative, ending now
//   ?project=shop&from=2026-12-03T10:00&to=2026-12-03T14:00&period=minute
//   &dash=Ops                                      a dashboard by name
//
// Times are UTC, as the server buckets.

import { bucketStart, fmtTime, parseTime } from './chart.js';

export const PERIODS = ['minute', 'hour', 'day', 'week', 'month', 'year', 'all'];

// Relative ranges, ending now: [key, seconds, label].
export const PRESETS = [
  ['15m', 900, 'Last 15 minutes'],
  ['1h', 3600, 'Last hour'],
  ['6h', 6 * 3600, 'Last 6 hours'],
  ['24h', 86400, 'Last 24 hours'],
  ['7d', 7 * 86400, 'Last 7 days'],
  ['30d', 30 * 86400, 'Last 30 days'],
  ['90d', 90 * 86400, 'Last 90 days'],
  ['1y', 365 * 86400, 'Last year'],
];
export const DEFAULT_RANGE = '24h';

// A bucket's length, near enough to count buckets (months and years vary).
const SIZE = { minute: 60, hour: 3600, day: 86400, week: 604800, month: 2629746, year: 31556952 };

// What the server keeps, from GET api/v1/config (null: not known).
export const server = { periods: null, retention: {}, maxPoints: 10000, skew: 0 };

export const serverNow = () => Date.now() / 1000 + server.skew;
export const isKept = (p) => p === 'auto' || !server.periods || server.periods.includes(p);

// The start of period's oldest bucket kept now, or null: kept for ever.
export function oldestKept(period) {
  const secs = server.retention[period];
  return secs ? bucketStart(period, serverNow() - secs) : null;
}

// The URL's view, with defaults for what it leaves out.
export function readURL(search = location.search) {
  const q = new URLSearchParams(search);
  const v = { project: q.get('project') || '', dash: q.get('dash') || '', range: null, from: null, to: null,
    period: q.get('period') || 'auto' };
  const from = parseTime(q.get('from'));
  const to = parseTime(q.get('to'));
  if (from != null && to != null && from < to) {
    v.from = from;
    v.to = to;
  } else {
    const r = q.get('range');
    v.range = PRESETS.some(([k]) => k === r) ? r : DEFAULT_RANGE;
  }
  if (v.period !== 'auto' && !PERIODS.includes(v.period)) v.period = 'auto';
  return v;
}

export function toURL(v) {
  const q = new URLSearchParams();
  if (v.project) q.set('project', v.project);
  if (v.dash) q.set('dash', v.dash);
  if (v.range) q.set('range', v.range);
  else {
    q.set('from', fmtTime(v.from).replace(' ', 'T'));
    q.set('to', fmtTime(v.to).replace(' ', 'T'));
  }
  q.set('period', v.period);
  return `?${q}`;
}

// The range in epoch seconds: {from, to}; a relative one ends now.
export function span(v, now = serverNow()) {
  if (v.range) {
    const secs = PRESETS.find(([k]) => k === v.range)[1];
    return { from: Math.floor(now - secs), to: Math.floor(now) };
  }
  return { from: v.from, to: Math.min(v.to, Math.floor(now)) };
}

// Why period cannot show from: null, or the oldest bucket it keeps.
export function expiredBefore(period, from) {
  if (period === 'all') return null;
  const oldest = oldestKept(period);
  return oldest != null && bucketStart(period, from) < oldest ? oldest : null;
}

export function bucketsIn(period, { from, to }) {
  if (period === 'all') return 1;
  return Math.floor((bucketStart(period, to) - bucketStart(period, from)) / SIZE[period]) + 1;
}

// The period to draw: the one chosen, or with "auto" the finest kept one
// that still holds the range's start and stays within MAX_POINTS.
export function periodOf(v, now = serverNow()) {
  if (v.period !== 'auto') return v.period;
  const s = span(v, now);
  for (const p of PERIODS) {
    if (p === 'all' || !isKept(p) || expiredBefore(p, s.from) != null) continue;
    if (bucketsIn(p, s) <= server.maxPoints) return p;
  }
  return 'all';
}

// The read API's query for the view: period, from_date, to_date.
export function rangeQuery(v, now = serverNow()) {
  const period = periodOf(v, now);
  const q = new URLSearchParams({ period });
  if (period !== 'all') {
    const s = span(v, now);
    q.set('from_date', String(s.from));
    q.set('to_date', String(s.to));
  }
  return q;
}

export function describe(v) {
  if (v.range) return PRESETS.find(([k]) => k === v.range)[2];
  return `${fmtTime(v.from)} – ${fmtTime(v.to)} UTC`;
}
