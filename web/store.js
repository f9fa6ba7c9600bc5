// web/store.js: saving a dashboard safely (api/v1/dashboards/{name}, see
// docs/api.md). Each save names the revision it was made from; the server
// refuses a stale one (409) and answers the stored dashboard, and the page
// lets the user keep theirs, take the other or merge. A save that does not
// reach the server stays "unsaved" (and in localStorage, so a reload keeps
// it) and is retried until it lands.

const RETRY_MS = [1000, 2000, 4000, 8000, 15000];

const clone = (x) => JSON.parse(JSON.stringify(x));
const byId = (list) => new Map((list || []).map((w) => [w.id, w]));
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const projectsOf = (doc) => Object.keys((doc && doc.projects) || {});
const widgetsOf = (doc, p) => ((doc && doc.projects && doc.projects[p]) || {}).widgets || [];

// What one side did to the widgets since base: {added, changed, removed}
// lists of {project, widget}.
export function changes(base, doc) {
  const out = { added: [], changed: [], removed: [] };
  for (const p of new Set([...projectsOf(base), ...projectsOf(doc)])) {
    const was = byId(widgetsOf(base, p));
    const now = byId(widgetsOf(doc, p));
    for (const [id, w] of now) {
      if (!was.has(id)) out.added.push({ project: p, widget: w });
      else if (!same(was.get(id), w)) out.changed.push({ project: p, widget: w });
    }
    for (const [id, w] of was) if (!now.has(id)) out.removed.push({ project: p, widget: w });
  }
  return out;
}

// Theirs plus the widgets I added or changed since base (mine replacing
// theirs where both changed one). A widget one side removed and the other
// kept stays: nothing is lost without the user choosing.
export function merge(base, mine, theirs) {
  const out = clone(theirs || { version: 1, projects: {} });
  out.projects = out.projects || {};
  const my = changes(base, mine);
  for (const { project, widget } of [...my.added, ...my.changed]) {
    const list = (out.projects[project] = out.projects[project] || { widgets: [] }).widgets;
    const i = list.findIndex((w) => w.id === widget.id);
    if (i >= 0) list[i] = clone(widget);
    else list.push(clone(widget));
  }
  return out;
}

export class Store {
  // api(path, opts): the page's fetch wrapper (throws with .status and
  // .body on an HTTP error). hooks: status(state, text), conflict(info).
  constructor(api, user, hooks) {
    this.api = api;
    this.user = user;
    this.hooks = hooks;
    this.name = null;
    this.revision = 0;
    this.base = null; // the document as last read from or stored on the server
    this.doc = null;
    this.timer = null;
    this.running = null;
    this.again = false;
    this.failures = 0;
    this.blocked = false; // a conflict waits for the user
    window.addEventListener('online', () => { if (this.dirty()) this.flush(); });
  }

  key() { return `gottwall.unsaved.${this.user}.${this.name}`; }
  dirty() { return !!this.doc && !same(this.doc, this.base); }
  path(name = this.name) { return `api/v1/dashboards/${encodeURIComponent(name)}`; }

  async list() {
    return this.api('api/v1/dashboards');
  }

  // Opens a dashboard: the stored one, and an unsaved edit of it kept from
  // before a reload (saved now, or a conflict if it was saved elsewhere).
  // known: the server listed it (a new one is not asked for).
  async open(name, known = true) {
    clearTimeout(this.timer);
    this.name = name;
    let stored = null;
    try {
      if (known) stored = await this.api(this.path());
    } catch (e) {
      if (e.status !== 404) throw e;
    }
    this.revision = stored ? stored.revision : 0;
    this.base = stored ? stored.doc : null;
    this.doc = clone(this.base || { version: 1, projects: {} });
    let kept = null;
    try { kept = JSON.parse(localStorage.getItem(this.key()) || 'null'); } catch (e) { kept = null; }
    if (kept && kept.doc && !same(kept.doc, this.base)) {
      if (kept.revision === this.revision) {
        this.doc = kept.doc;
        this.schedule(0);
      } else {
        this.blocked = true;
        this.hooks.conflict({ mine: kept.doc, base: kept.base, theirs: this.base, revision: this.revision,
          deleted: !stored });
      }
    }
    return this.doc;
  }

  schedule(ms = 300) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = null; this.flush(); }, ms);
    this.keep();
  }

  // The unsaved document in localStorage, so a reload or a crash keeps it.
  keep() {
    try {
      if (this.dirty()) localStorage.setItem(this.key(), JSON.stringify({ revision: this.revision, base: this.base, doc: this.doc }));
      else localStorage.removeItem(this.key());
    } catch (e) { /* private mode: kept in memory only */ }
  }

  async flush() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.blocked || !this.dirty()) return this.running;
    if (this.running) { this.again = true; return this.running; }
    const sent = clone(this.doc);
    this.hooks.status('saving', 'Saving…');
    this.running = this.api(this.path(), { method: 'PUT', body: { revision: this.revision, doc: sent } })
      .then((r) => {
        this.revision = r.revision;
        this.base = sent;
        this.failures = 0;
        this.keep();
        this.hooks.status(this.dirty() ? 'unsaved' : 'saved', this.dirty() ? 'Unsaved changes' : 'Saved');
      })
      .catch((e) => {
        if (e.status === 409 && e.body) {
          this.blocked = true;
          this.hooks.status('conflict', 'Not saved: changed elsewhere');
          this.hooks.conflict({ mine: clone(this.doc), base: this.base, theirs: e.body.deleted ? null : e.body.doc,
            revision: e.body.revision, deleted: !!e.body.deleted });
          return;
        }
        // Not reached the server (offline, restarting) or refused for now:
        // kept and retried; a refusal that will not change (400, 413) is
        // shown and waits for the next edit.
        const transient = !e.status || e.status >= 500 || e.status === 429;
        this.failures++;
        this.keep();
        if (transient) {
          const ms = RETRY_MS[Math.min(this.failures - 1, RETRY_MS.length - 1)];
          this.hooks.status('unsaved', `Unsaved: ${e.message}. Retrying in ${Math.round(ms / 1000)} s…`);
          this.timer = setTimeout(() => { this.timer = null; this.flush(); }, ms);
        } else {
          this.hooks.status('unsaved', `Unsaved: ${e.message}`);
        }
      })
      .finally(() => {
        this.running = null;
        if (this.again) { this.again = false; if (!this.timer) this.flush(); }
      });
    return this.running;
  }

  // The user's answer to a conflict: the document to store over the
  // revision the server holds now (keep mine, merge), or theirs to adopt.
  resolve(doc, revision, adopt) {
    this.blocked = false;
    this.revision = revision;
    if (adopt) {
      this.base = clone(doc);
      this.doc = clone(doc);
      this.keep();
      this.hooks.status('saved', 'Saved');
      return Promise.resolve();
    }
    this.base = null; // whatever it was, the server's differs from doc
    this.doc = clone(doc);
    return this.flush();
  }

  async remove(name) {
    await this.api(this.path(name), { method: 'DELETE' });
    try { localStorage.removeItem(`gottwall.unsaved.${this.user}.${name}`); } catch (e) { /* none */ }
  }
}
