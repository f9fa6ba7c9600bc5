// web/app.js: the GottWall dashboard (SPEC §8). Plain ES modules, no build
// step. Every URL is relative to the <base href="{PREFIX}/"> the server
// puts in the page, so the dashboard works under any PREFIX.
//
// What is shown (project, range, period, dashboard) is in the URL
// (web/view.js); the dashboards themselves are saved per user with
// revisions (web/store.js):
//   {version: 1, projects: {name: {widgets: [graph | table]}}}
// (widgets: web/widgets.js). Viewing shows the charts; "Edit" shows the
// editors.

import { fmtTime, parseTime } from './chart.js';
import { $, el, api, P, CONFIG, state, widgets, save, notice } from './page.js';
import { server, readURL, toURL, span, periodOf, isKept, rangeQuery } from './view.js';
import { Store, changes, merge } from './store.js';
import './share.js';
import { actions, mountWidget, autoTitle, expiry, expiryText, setEditable } from './widgets.js';

const REFRESH_MS = 5000;
// While a project has no metrics yet, look every second, so a new user's
// first event shows up on a chart within a flush and a second.
const EMPTY_REFRESH_MS = 1000;
const MAIN = 'Main';

const newId = () => Math.random().toString(36).slice(2, 10);

// ---- The view in the URL ----

// Applies a new view: the URL (a new history entry when push: a zoom),
// the toolbar, every widget.
function setView(changes, push = false) {
  Object.assign(state.view, changes);
  const url = toURL(state.view);
  const depth = (history.state && history.state.depth) || 0;
  if (push) history.pushState({ depth: depth + 1 }, '', url);
  else history.replaceState({ depth }, '', url);
  syncToolbar();
  redrawAll();
}

window.addEventListener('popstate', () => {
  const v = readURL();
  const projectChanged = v.project && v.project !== state.view.project;
  Object.assign(state.view, v, { dash: state.view.dash });
  syncToolbar();
  if (projectChanged) loadProject(); else redrawAll();
});

// A drag across a chart: that range, on every chart, as a new history
// entry ("Zoom out" or the browser's Back returns).
actions.zoomTo = (from, to) => {
  if (to - from < 60) to = from + 60;
  setView({ range: null, from, to }, true);
};

actions.setPeriod = (p) => setView({ period: p });

// ---- Saving ----

function saveState(kind, text) {
  const s = $('#save-state');
  s.dataset.state = kind;
  s.textContent = text;
  document.body.dataset.saved = kind === 'saved' ? String(Date.now()) : '';
}

window.gw.flush = () => state.store.flush();
// The read API's range query of the view (for the browser test).
window.gw.query = () => rangeQuery(state.view).toString();

// Leaving the page with a save pending: send it anyway (keepalive); it is
// in localStorage too, for the next visit.
window.addEventListener('pagehide', () => {
  const st = state.store;
  if (!st || !st.dirty() || st.blocked) return;
  fetch(st.path(), {
    method: 'PUT', keepalive: true, credentials: 'same-origin',
    body: JSON.stringify({ revision: st.revision, doc: st.doc }),
    headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'gottwall' },
  });
});

// ---- A save from a stale tab: keep mine, take theirs, or merge ----

function describeChanges(label, c) {
  const title = (x) => `“${x.widget.title || x.widget.id}”`;
  const parts = [];
  if (c.added.length) parts.push(`added ${c.added.map(title).join(', ')}`);
  if (c.changed.length) parts.push(`changed ${c.changed.map(title).join(', ')}`);
  if (c.removed.length) parts.push(`removed ${c.removed.map(title).join(', ')}`);
  return el('li', {}, `${label} ${parts.length ? parts.join('; ') : 'changed nothing in the widgets'}.`);
}

function onConflict(info) {
  const d = $('#conflict-dialog');
  const name = state.store.name;
  $('#conflict-what').textContent = info.deleted
    ? `“${name}” was deleted in another tab or by another session (now revision ${info.revision}).`
    : `“${name}” was saved in another tab or by another session (now revision ${info.revision}) after this page read it. Nothing is lost until you choose.`;
  $('#conflict-body').replaceChildren(el('ul', {},
    describeChanges('You', changes(info.base, info.mine)),
    info.deleted ? el('li', {}, 'The other side deleted the dashboard.') : describeChanges('The other side', changes(info.base, info.theirs))));
  $('#conflict-theirs').textContent = info.deleted ? 'Let it go' : 'Take theirs';
  $('#conflict-merge').hidden = !!info.deleted;
  d.returnValue = '';
  d.onclose = async () => {
    const how = d.returnValue || 'mine';
    if (how === 'theirs' && info.deleted) {
      state.store.blocked = false;
      state.store.doc = state.store.base = null;
      try { localStorage.removeItem(state.store.key()); } catch (e) { /* none */ }
      await openDashboard('');
      return;
    }
    const doc = how === 'theirs' ? info.theirs : how === 'merge' ? merge(info.base, info.mine, info.theirs) : info.mine;
    await state.store.resolve(doc, info.revision, how === 'theirs');
    remount();
  };
  d.showModal();
}

// ---- Dashboards: a list, one open, one the default ----

let dashboards = { default: null, dashboards: [] };

// Reads the list from the server (unless fetch is false) and shows it.
async function loadDashboardList(fetch = true) {
  try {
    if (fetch) dashboards = await state.store.list();
  } catch (e) {
    notice(`Could not list your dashboards: ${e.message}`);
  }
  const sel = $('#dashboard');
  const names = dashboards.dashboards.map((d) => d.name);
  if (state.store.name && !names.includes(state.store.name)) names.push(state.store.name);
  sel.replaceChildren(...names.map((n) => el('option', { value: n, text: n === dashboards.default ? `${n} (default)` : n })));
  sel.value = state.store.name || '';
  $('#dash-default').disabled = state.store.name === dashboards.default;
}

// Opens name, or the default ('') from the list (read again unless listed).
async function openDashboard(name, listed = false) {
  if (state.store.name && state.store.dirty()) await state.store.flush();
  if (!name) {
    if (!listed) await loadDashboardList();
    name = dashboards.default || (dashboards.dashboards[0] && dashboards.dashboards[0].name) || MAIN;
  }
  try {
    await state.store.open(name, dashboards.dashboards.some((d) => d.name === name));
  } catch (e) {
    notice(`Could not load the dashboard “${name}”: ${e.message}`);
  }
  state.view.dash = name === dashboards.default ? '' : name;
  history.replaceState(history.state, '', toURL(state.view));
  await loadDashboardList(false);
  saveState('saved', '');
  remount();
}

function askName() {
  return new Promise((resolve) => {
    const d = $('#name-dialog');
    $('#dash-name').value = '';
    $('#name-error').textContent = '';
    d.returnValue = '';
    d.onclose = () => resolve(d.returnValue === 'ok' ? $('#dash-name').value.trim() : null);
    d.showModal();
  });
}

async function newDashboard() {
  const name = await askName();
  if (!name) return;
  if (dashboards.dashboards.some((d) => d.name === name)) { notice(`There is a dashboard “${name}” already.`); return; }
  try {
    await api(state.store.path(name), { method: 'PUT', body: { revision: 0, doc: { version: 1, projects: {} } } });
  } catch (e) {
    notice(`Could not create “${name}”: ${e.message}`);
    return;
  }
  await loadDashboardList(); // so it opens at the revision just stored
  await openDashboard(name);
}

async function deleteDashboard() {
  const name = state.store.name;
  if (!confirm(`Delete the dashboard “${name}” with its widgets (every project's)?`)) return;
  try {
    await state.store.remove(name);
  } catch (e) {
    if (e.status !== 404) { notice(`Could not delete “${name}”: ${e.message}`); return; }
  }
  state.store.doc = state.store.base = null;
  await openDashboard('');
}

async function makeDefault() {
  try {
    await api('api/v1/dashboards', { method: 'PUT', body: { default: state.store.name } });
  } catch (e) {
    notice(`Could not make “${state.store.name}” the default: ${e.message}`);
    return;
  }
  state.view.dash = '';
  history.replaceState(history.state, '', toURL(state.view));
  await loadDashboardList();
}

// ---- Widgets on the page ----

function remount() {
  for (const v of state.views.values()) v.destroy();
  state.views.clear();
  renderEmpty();
  for (const w of widgets()) mountWidget(w);
}

actions.remove = (id) => {
  const list = widgets();
  const i = list.findIndex((w) => w.id === id);
  if (i >= 0) list.splice(i, 1);
  const v = state.views.get(id);
  if (v) v.destroy();
  state.views.delete(id);
  save();
  renderEmpty();
};

// The widgets' order after a drag: the order on the page.
actions.moved = () => {
  const order = [...document.querySelectorAll('#widgets > .widget')].map((n) => n.dataset.id);
  widgets().sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
  save();
};

actions.moveBy = (id, by) => {
  const list = widgets();
  const i = list.findIndex((w) => w.id === id);
  const j = i + by;
  if (i < 0 || j < 0 || j >= list.length) return;
  [list[i], list[j]] = [list[j], list[i]];
  const nodes = [...document.querySelectorAll('#widgets > .widget')];
  const a = nodes[i];
  const b = nodes[j];
  if (by < 0) b.before(a); else b.after(a);
  save();
};

function addWidget(w) {
  w.title = autoTitle(w);
  widgets().push(w);
  save();
  setEditing(true);
  mountWidget(w);
  renderEmpty();
}

function addGraph() {
  const first = Object.keys(state.metrics)[0] || '';
  addWidget({ id: newId(), type: 'graph', renderer: 'line', cols: 6, series: [{ metric: first, filter_name: null, filter_value: null }] });
}

function addTable() {
  const names = Object.keys(state.metrics);
  const metric = names.find((m) => Object.keys(state.metrics[m]).length) || names[0] || '';
  const filter = Object.keys(state.metrics[metric] || {})[0] || '';
  addWidget({ id: newId(), type: 'table', cols: 12, metric, filter_name: filter });
}

function curlLine(project) {
  const p = CONFIG.projects.find((x) => x.name === project);
  const pub = p ? p.public_key : 'PUBLIC_KEY';
  return `curl -u '${pub}:PRIVATE_KEY' -H 'Content-Type: application/json' \\\n     -d '{"n": "orders", "v": 1, "f": {"status": "paid"}}' \\\n     ${CONFIG.ingest_url}/api/v1/${project}/incr`;
}

function renderEmpty() {
  const e = $('#empty');
  const n = Object.keys(state.metrics).length;
  const noWidgets = widgets().length === 0;
  if (n === 0) {
    e.replaceChildren(
      el('h2', {}, `No metrics yet in “${state.view.project}”`),
      el('p', {}, 'Send one with curl (PRIVATE_KEY is the project\'s private key from gottwall.conf, or SECRET_KEY):'),
      el('pre', { class: 'curl', tabindex: '0' }, curlLine(state.view.project)),
      el('p', {}, 'It shows up here within a second or two.'));
  } else if (noWidgets) {
    e.replaceChildren(
      el('h2', {}, 'This dashboard is empty'),
      el('p', {}, `“${state.view.project}” has ${n} metric${n === 1 ? '' : 's'}. Add a graph or a table to look at them.`),
      el('p', {},
        el('button', { class: 'primary', onclick: addGraph }, '+ Graph'), ' ',
        el('button', { onclick: addTable }, '+ Table')));
  }
  e.classList.toggle('hidden', !(n === 0 || noWidgets));
}

// ---- View and edit modes ----

function setEditing(on) {
  state.editing = on;
  document.body.dataset.mode = on ? 'edit' : 'view';
  const b = $('#edit-toggle');
  b.setAttribute('aria-pressed', String(on));
  b.textContent = on ? 'Done editing' : 'Edit';
  for (const v of state.views.values()) setEditable(v, on);
  try { sessionStorage.setItem('gottwall.editing', on ? '1' : ''); } catch (e) { /* none */ }
}

// ---- Loading and refreshing ----

async function loadServerConfig() {
  try {
    const t0 = Date.now();
    const c = await api('api/v1/config');
    server.periods = c.periods;
    server.retention = c.retention || {};
    if (c.max_points) server.maxPoints = c.max_points;
    server.skew = c.now - (t0 + Date.now()) / 2000;
  } catch (e) { /* keeps the defaults */ }
}

async function loadMetrics() {
  const [metrics, kinds] = await Promise.all([
    api(`${P(state.view.project)}/metrics`),
    api(`${P(state.view.project)}/kinds`),
  ]);
  state.metrics = metrics;
  state.kinds = kinds;
}

async function loadProject(mount = true) {
  notice('');
  try {
    await loadMetrics();
  } catch (e) {
    notice(`Could not read the metrics of “${state.view.project}”: ${e.message}`);
    state.metrics = {};
  }
  if (mount) remount();
}

const autorefresh = () => {
  try { return localStorage.getItem('gottwall.autorefresh') !== 'off'; } catch (e) { return true; }
};

async function refreshAll() {
  if (document.hidden || !autorefresh()) return;
  try {
    const before = JSON.stringify(state.metrics);
    const wasEmpty = Object.keys(state.metrics).length === 0;
    await loadMetrics();
    if (JSON.stringify(state.metrics) !== before) {
      // The project's first metric arrived while the page was open: show it.
      if (wasEmpty && widgets().length === 0) { addGraph(); setEditing(false); }
      renderEmpty();
      for (const v of state.views.values()) (v.buildSeries || v.buildControls).call(v);
    }
    notice('');
  } catch (e) {
    notice(`Could not refresh: ${e.message}. Trying again in ${REFRESH_MS / 1000} s.`);
    return;
  }
  syncPeriods(); // the oldest buckets kept move on with the clock
  await Promise.all([...state.views.values()].map((v) => v.refresh()));
}

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

// ---- The toolbar ----

// The period buttons: pressed is the one chosen (Auto: the one it picked
// is marked too), those not kept disabled, those whose retention the range
// reaches before struck through.
function syncPeriods() {
  const chosen = state.view.period;
  const auto = periodOf({ ...state.view, period: 'auto' }); // what Auto picks
  for (const b of document.querySelectorAll('#periods button')) {
    const p = b.dataset.period;
    const x = p !== 'auto' && isKept(p) && expiry(p);
    b.setAttribute('aria-pressed', String(p === chosen));
    b.classList.toggle('active', p === chosen);
    b.classList.toggle('auto-picked', chosen === 'auto' && p === auto);
    b.classList.toggle('expired', !!x);
    b.disabled = !isKept(p);
    b.title = p === 'auto' ? `The finest period that keeps the whole range: now ${auto}`
      : !isKept(p) ? `${p} buckets are not kept by this server (PERIODS)`
        : x ? expiryText(x) : '';
  }
}

function syncToolbar() {
  syncPeriods();
  const v = state.view;
  $('#range').value = v.range || 'custom';
  $('#custom-range').classList.toggle('hidden', !!v.range);
  if (!v.range) {
    $('#from-time').value = fmtTime(v.from);
    $('#to-time').value = fmtTime(v.to);
  }
  $('#zoom-out').classList.toggle('hidden', !((history.state && history.state.depth) > 0));
  $('#project').value = v.project;
  const t = $('#refresh-toggle');
  const on = autorefresh();
  t.classList.toggle('on', on);
  t.setAttribute('aria-pressed', String(on));
  t.textContent = on ? 'Auto-refresh' : 'Auto-refresh paused';
}

function setupToolbar() {
  const sel = $('#project');
  for (const p of CONFIG.projects) sel.append(el('option', { value: p.name, text: p.name }));
  sel.addEventListener('change', () => { setView({ project: sel.value }); loadProject(); });
  $('#dashboard').addEventListener('change', (e) => openDashboard(e.target.value));

  for (const b of document.querySelectorAll('#periods button')) {
    b.addEventListener('click', () => actions.setPeriod(b.dataset.period));
  }
  $('#range').addEventListener('change', (e) => {
    if (e.target.value === 'custom') {
      const s = span(state.view);
      $('#from-time').value = fmtTime(s.from);
      $('#to-time').value = fmtTime(s.to);
      $('#custom-range').classList.remove('hidden');
      $('#from-time').focus();
      return;
    }
    setView({ range: e.target.value, from: null, to: null });
  });
  $('#custom-range').addEventListener('submit', (e) => {
    e.preventDefault();
    const from = parseTime($('#from-time').value);
    const to = parseTime($('#to-time').value);
    if (from == null || to == null) { notice('Write the times as YYYY-MM-DD HH:MM (UTC), e.g. 2026-12-03 14:30.'); return; }
    if (from >= to) { notice('The “from” time is not before the “to” time.'); return; }
    notice('');
    setView({ range: null, from, to });
  });
  $('#zoom-out').addEventListener('click', () => history.back());
  $('#refresh-toggle').addEventListener('click', () => {
    const on = !autorefresh();
    try { localStorage.setItem('gottwall.autorefresh', on ? 'on' : 'off'); } catch (e) { /* none */ }
    syncToolbar();
    if (on) refreshAll(); // resuming: catch up now
  });
  $('#edit-toggle').addEventListener('click', () => setEditing(!state.editing));
  $('#add-graph').addEventListener('click', addGraph);
  $('#add-table').addEventListener('click', addTable);
  $('#dash-new').addEventListener('click', newDashboard);
  $('#dash-delete').addEventListener('click', deleteDashboard);
  $('#dash-default').addEventListener('click', makeDefault);

  // Logging out ends the session on the server: store a pending or running
  // save of the dashboard first, or it would arrive after and be refused.
  $('#logout').addEventListener('submit', (e) => {
    e.preventDefault();
    state.store.flush().catch(() => {}).finally(() => e.target.submit());
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
  state.view = readURL();
  state.store = new Store(api, CONFIG.user || 'anonymous', { status: saveState, conflict: onConflict });
  const names = CONFIG.projects.map((p) => p.name);
  if (!names.includes(state.view.project)) state.view.project = names[0] || '';
  history.replaceState({ depth: (history.state && history.state.depth) || 0 }, '', toURL(state.view));
  // What the page needs before it can draw, asked at once (one round trip).
  const project = state.view.project;
  await Promise.all([loadServerConfig(), project && loadDashboardList(), project && loadProject(false)]);
  setupToolbar();
  let editing = false;
  try { editing = sessionStorage.getItem('gottwall.editing') === '1'; } catch (e) { /* none */ }
  setEditing(editing);
  if (!state.view.project) {
    $('#empty').replaceChildren(el('h2', {}, 'No projects configured'), el('p', {}, 'Add one to PROJECTS in gottwall.conf and restart (or send SIGHUP).'));
    $('#empty').classList.remove('hidden');
    return;
  }
  const dash = state.view.dash && dashboards.dashboards.some((d) => d.name === state.view.dash) ? state.view.dash : '';
  await openDashboard(dash, true);
  scheduleRefresh();
  // Back online: refresh now rather than at the next tick, so a notice
  // about the lost connection does not outlive it.
  window.addEventListener('online', () => { lastRefresh = Date.now(); refreshAll(); });
  // The charts' colours come from the theme: redraw them when it changes.
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', redrawAll);
  document.body.dataset.loaded = '1';
}

main();
