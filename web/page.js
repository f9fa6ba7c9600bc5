// web/page.js: what the dashboard's modules share: the API wrapper, DOM
// helpers, the notice line and the page's state.

export const CONFIG = JSON.parse(document.getElementById('gw-config').textContent);

export const $ = (sel, root = document) => root.querySelector(sel);

// style takes an object of properties, set through the DOM: the page's
// Content-Security-Policy (style-src 'self') refuses style="..." attributes.
export const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'style') Object.assign(e.style, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c != null && c !== false) e.append(c);
  return e;
};

export class ApiError extends Error {
  constructor(message, status = 0, body = null) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// fetch for the API: JSON in and out, the CSRF header, a login page for a
// 401, an ApiError with the server's message (and status and body) for any
// other failure; a network failure says that the server cannot be reached.
export async function api(path, opts = {}) {
  const headers = { 'X-Requested-With': 'gottwall', ...(opts.headers || {}) };
  if (opts.body && typeof opts.body !== 'string') {
    opts = { ...opts, body: JSON.stringify(opts.body) };
    headers['Content-Type'] = 'application/json';
  }
  let r;
  try {
    r = await fetch(path, { credentials: 'same-origin', ...opts, headers });
  } catch (e) {
    throw new ApiError('the server cannot be reached (offline, or restarting?)');
  }
  if (r.status === 401) {
    location.href = `login?next=${encodeURIComponent(location.pathname + location.search)}`;
    throw new ApiError('login required', 401);
  }
  const text = await r.text();
  let body;
  try { body = JSON.parse(text); } catch (e) { body = null; }
  if (!r.ok) throw new ApiError((body && body.error) || `${r.status} ${r.statusText}`, r.status, body);
  return body;
}

export const P = (project) => `api/v1/${encodeURIComponent(project)}`;

// The page's state: the view (from the URL, web/view.js), the dashboard
// document being edited (web/store.js), what the project holds.
export const state = {
  view: null,
  store: null,
  metrics: {},            // metric -> {filter: [values]}
  kinds: {},              // metric -> "counter", "avg", "gauge", "timing", "set"
  views: new Map(),       // widget id -> widget view
  editing: false,
};
window.gw = { state, views: state.views }; // for the browser test

export function widgets() {
  const doc = state.store.doc;
  const p = state.view.project;
  doc.projects = doc.projects || {};
  if (!doc.projects[p]) doc.projects[p] = { widgets: [] };
  return doc.projects[p].widgets;
}

export function save() {
  state.store.schedule();
}

// The notice line (a live region: screen readers read it out).
export function notice(text) {
  const n = $('#notice');
  n.textContent = text || '';
  n.classList.toggle('hidden', !text);
}

export function slug(s) {
  return (s || 'gottwall').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'gottwall';
}

// Copies text; says "Copied" only when it was, and otherwise selects it in
// input for a manual copy (no clipboard on a plain-HTTP host).
export async function copyText(text, button, input) {
  try {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard');
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch (e) {
    if (input) { input.focus(); input.select(); }
    button.textContent = 'Press Ctrl+C';
  }
}
