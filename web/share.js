// web/share.js: Share (an embedded chart of a graph, with the view's range
// and period in its links) and the project's list of shared charts, each
// of which can be opened or deleted. Sharing a chart identical to one
// already shared answers that one's links (the server reuses it).

import { fmtTime } from './chart.js';
import { $, el, api, P, state, copyText } from './page.js';
import { span, periodOf, describe } from './view.js';
import { actions } from './widgets.js';

function withQuery(url, q) {
  return q ? url + (url.includes('?') ? `&${q.slice(1)}` : q) : url;
}

function field(label, value, open) {
  const input = el('input', { readonly: true, value, 'aria-label': label, onfocus: (e) => e.target.select() });
  return el('div', { class: 'share-field' },
    el('label', {}, label),
    el('div', { class: 'row' },
      input,
      el('button', { type: 'button', onclick: (e) => copyText(value, e.target, input) }, 'Copy'),
      open ? el('a', { href: value, target: '_blank', rel: 'noopener', class: 'open-link' }, 'Open') : null));
}

function showLinks(links, q, what) {
  const html = withQuery(links.html_link, q);
  const js = withQuery(links.js_link, q);
  const iframe = links.iframe.replace(/src="([^"]*)"/, (m, src) => `src="${withQuery(src, q)}"`);
  $('#share-what').textContent = `Anyone with these links can see the chart (${what}), without logging in.`
    + (links.reused ? ' It was shared before: these are its links (no new chart was stored).' : '');
  $('#share-links').replaceChildren(
    field('Page', html, true),
    field('Iframe', iframe),
    field('Script', `<script src="${js}"></script>`),
    field('JSON', withQuery(links.json_link, q), true));
  const d = $('#share-dialog');
  d.dataset.html = html;
  d.dataset.id = links.id;
}

// The project's shared charts, newest first; the one just shared marked.
async function listShared() {
  const box = $('#shared-list');
  const project = state.view.project;
  let charts;
  try {
    ({ charts } = await api(`${P(project)}/embedded/`));
  } catch (e) {
    box.replaceChildren(el('p', { class: 'status error', text: `Could not list the shared charts: ${e.message}` }));
    return;
  }
  $('#shared-count').textContent = `(${charts.length})`;
  if (!charts.length) {
    box.replaceChildren(el('p', { class: 'muted', text: 'No chart of this project is shared.' }));
    return;
  }
  const current = $('#share-dialog').dataset.id;
  box.replaceChildren(el('ul', { class: 'shared' }, ...charts.map((c) => {
    const del = el('button', { type: 'button', class: 'danger', 'aria-label': `Delete the shared chart “${c.name || c.id}”` }, 'Delete');
    del.addEventListener('click', () => deleteShared(c, del));
    return el('li', { 'data-id': c.id, class: c.id === current ? 'current' : '' },
      el('a', { href: c.html_link, target: '_blank', rel: 'noopener' }, c.name || '(untitled)'),
      el('span', { class: 'muted', text: ` ${c.created ? fmtTime(c.created) : ''}${c.created_by ? ` · ${c.created_by}` : ''}${c.id === current ? ' · this one' : ''}` }),
      del);
  })));
}

async function deleteShared(c, button) {
  button.disabled = true;
  try {
    await api(`${P(state.view.project)}/embedded/${c.id}`, { method: 'DELETE' });
  } catch (e) {
    button.disabled = false;
    $('#shared-status').textContent = `Could not delete “${c.name}”: ${e.message}`;
    return;
  }
  $('#shared-status').textContent = `Deleted “${c.name}”: its links no longer work.`;
  if ($('#share-dialog').dataset.id === c.id) {
    $('#share-links').replaceChildren();
    $('#share-what').textContent = 'This chart is no longer shared. Share it again for new links.';
    delete $('#share-dialog').dataset.id;
  }
  await listShared();
}

actions.share = async (view) => {
  const w = view.w;
  const { from, to } = span(state.view);
  const period = periodOf(state.view);
  const body = {
    name: w.title,
    renderer: w.renderer || 'line',
    period,
    metrics: w.series.map((s) => ({ metric_name: s.metric, filter_name: s.filter_name || null, filter_value: s.filter_name ? s.filter_value : null })),
  };
  let links;
  try {
    links = await api(`${P(state.view.project)}/embedded/`, { method: 'POST', body });
  } catch (e) {
    view.setStatus(`Could not share: ${e.message}`, true);
    return;
  }
  // The links show this range: a fixed one as it is, a relative one as
  // the window it is now.
  const q = period === 'all' ? '' : `?from_date=${from}&to_date=${to}&period=${period}`;
  showLinks(links, q, `${describe(state.view)}, ${period} buckets`);
  $('#shared-status').textContent = '';
  $('#share-dialog').showModal();
  await listShared();
};
