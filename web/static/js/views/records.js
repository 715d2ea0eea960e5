// The record list (search, project filter, retention countdown, hold badge),
// the new-record form and the projects page.
import { get, post, patch } from '../api.js';
import { h, replace, field, bytes, duration, when, retention } from '../dom.js';
import { app, canEdit, flash, go } from '../app.js';

/** loadProjects returns the projects the user may see, by id. */
export async function loadProjects() {
  const { projects } = await get('/api/v1/projects');
  return projects;
}

function projectName(projects, id) {
  const p = projects.find((x) => x.project_id === id);
  if (!p) return `Project ${id}`;
  return p.unreadable ? `Project ${id} (unreadable)` : p.name;
}

/** projectSelect returns a <select> of projects; first is an optional leading option. */
export function projectSelect(projects, selected, first) {
  const sel = h('select', {});
  if (first) sel.append(h('option', { value: first.value }, first.label));
  for (const p of projects) {
    if (p.unreadable) continue;
    sel.append(h('option', { value: String(p.project_id) }, p.name));
  }
  sel.value = selected ? String(selected) : (first ? first.value : '');
  return sel;
}

/** list renders the records, filtered by ?q= and ?project=. */
export async function list(main, params) {
  const seq = app.routeSeq;
  const q = params.get('q') || '';
  const project = params.get('project') || '';
  const projects = await loadProjects();
  if (seq !== app.routeSeq) return;

  const search = h('input', { type: 'search', name: 'q', value: q, autocomplete: 'off' });
  const sel = projectSelect(projects, project, { value: '', label: 'All projects' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Records' },
    h('div', {}, field('Search titles', search)),
    h('div', {}, field('Project', sel)),
    h('div', {}, h('button', { type: 'submit' }, 'Search')));
  const apply = (e) => {
    e?.preventDefault();
    const p = new URLSearchParams();
    if (search.value.trim()) p.set('q', search.value.trim());
    if (sel.value) p.set('project', sel.value);
    const s = p.toString();
    go(s ? `#/records?${s}` : '#/records');
  };
  form.addEventListener('submit', apply);
  sel.addEventListener('change', apply);

  const tbody = h('tbody');
  const table = h('table', { class: 'cards', id: 'records' },
    h('caption', { class: 'muted small' }, 'Newest first'),
    h('thead', {}, h('tr', {},
      ['Title', 'Project', 'Created', 'Size', 'Duration', 'Retention'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Show older records');
  const empty = h('p', { class: 'muted', hidden: true });

  replace(main,
    h('div', { class: 'row' }, h('h1', {}, 'Records'), canEdit() ? h('a', { class: 'button', href: '#/new' }, 'New record') : null),
    form, table, empty, h('div', { class: 'actions' }, more));

  let cursor = '';
  const page = async () => {
    const p = new URLSearchParams({ limit: '50' });
    if (q) p.set('q', q);
    if (project) p.set('project_id', project);
    if (cursor) p.set('cursor', cursor);
    const res = await get(`/api/v1/records?${p}`);
    if (seq !== app.routeSeq) return;
    for (const r of res.records) tbody.append(row(r, projects));
    cursor = res.next_cursor || '';
    more.hidden = !cursor;
    if (!tbody.children.length) {
      empty.hidden = false;
      empty.textContent = q || project ? 'No record matches.' : 'No records yet.';
      table.hidden = true;
    }
  };
  more.addEventListener('click', () => page().catch((e) => flash(e.message, true)));
  await page();
}

function row(r, projects) {
  if (r.status === 'unreadable') {
    return h('tr', {}, h('td', { class: 'title', colSpan: 6 }, `Record ${r.transcript_id}: unreadable (its key is not configured)`));
  }
  const a = r.audio;
  return h('tr', {},
    h('td', { class: 'title' },
      h('a', { href: `#/record/${r.transcript_id}` }, r.title), ' ',
      r.sensitivity === 'sensitive' ? h('span', { class: 'badge sensitive' }, 'Sensitive') : null),
    h('td', { 'data-label': 'Project' }, projectName(projects, r.project_id)),
    h('td', { 'data-label': 'Created', class: 'num' }, when(r.created_at)),
    h('td', { 'data-label': 'Size', class: 'num' }, a ? bytes(a.size_bytes) : 'no audio'),
    h('td', { 'data-label': 'Duration', class: 'num' }, a ? duration(a.duration_ms) : '—'),
    h('td', { 'data-label': 'Retention' }, retention(r)));
}

/** create renders the new-record form. */
export async function create(main) {
  const projects = await loadProjects();
  const title = h('input', { type: 'text', name: 'title', required: true, maxLength: 500, autocomplete: 'off' });
  const sel = projectSelect(projects, '', { value: '', label: 'A new project for today' });
  const lang = h('input', { type: 'text', name: 'language', value: 'und', autocomplete: 'off', spellcheck: false });
  const std = h('input', { type: 'radio', name: 'sensitivity', value: 'standard', id: 'sens-std', checked: true });
  const sen = h('input', { type: 'radio', name: 'sensitivity', value: 'sensitive', id: 'sens-sen' });
  const err = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'card' },
    field('Title', title, 'Seen only by people who may open the record; stored encrypted.'),
    field('Project', sel),
    h('fieldset', {}, h('legend', {}, 'Sensitivity'),
      h('label', { class: 'inline', for: std.id }, std, 'Standard: everyone with access to tyst'),
      h('label', { class: 'inline', for: sen.id }, sen, 'Sensitive: only you and the admins')),
    field('Language', lang, 'A language tag such as sv, en or en-GB; und when unknown.'),
    err,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create record')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    const body = { title: title.value.trim(), sensitivity: sen.checked ? 'sensitive' : 'standard', language: lang.value.trim() || 'und' };
    if (sel.value) body.project_id = Number(sel.value);
    try {
      const rec = await post('/api/v1/record', body);
      go(`#/record/${rec.transcript_id}`);
      flash('Record created. Add its audio: upload a file or record from the microphone.');
    } catch (ex) {
      err.textContent = ex.message;
    }
  });
  replace(main, h('h1', {}, 'New record'), form);
  title.focus();
}

/** projects lists the projects with their record counts; create and rename. */
export async function projects(main) {
  const list = await loadProjects();
  const ul = h('ul', { class: 'plain', id: 'projects' });
  for (const p of list) ul.append(projectItem(p));
  if (!list.length) ul.append(h('li', { class: 'muted' }, 'No projects yet.'));
  let createForm = null;
  if (canEdit()) {
    const name = h('input', { type: 'text', name: 'name', required: true, autocomplete: 'off' });
    const err = h('p', { class: 'error', role: 'alert' });
    createForm = h('form', { class: 'card', 'aria-labelledby': 'newproj-h' },
      h('h2', { id: 'newproj-h' }, 'New project'), field('Name', name), err,
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create project')));
    createForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      err.textContent = '';
      try {
        await post('/api/v1/projects', { name: name.value.trim() });
        flash('Project created.');
        projects(main);
      } catch (ex) {
        err.textContent = ex.message;
      }
    });
  }
  replace(main, h('h1', {}, 'Projects'), ul, createForm);
}

function projectItem(p) {
  if (p.unreadable) return h('li', { class: 'muted' }, `Project ${p.project_id}: unreadable`);
  const li = h('li', { class: 'row' });
  const show = () => {
    const rename = canEdit() ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Rename project ${p.name}` }, 'Rename') : null;
    rename?.addEventListener('click', edit);
    replace(li,
      h('span', {}, h('a', { href: `#/records?project=${p.project_id}` }, p.name), ' ',
        h('span', { class: 'muted' }, `${p.records} record${p.records === 1 ? '' : 's'}`)),
      rename);
  };
  const edit = () => {
    const name = h('input', { type: 'text', value: p.name, required: true, autocomplete: 'off' });
    const err = h('p', { class: 'error', role: 'alert' });
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    cancel.addEventListener('click', show);
    const form = h('form', {}, field('New name', name), err,
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save'), cancel));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        Object.assign(p, await patch(`/api/v1/projects/${p.project_id}`, { name: name.value.trim() }));
        flash('Project renamed.');
        show();
      } catch (ex) {
        err.textContent = ex.message;
      }
    });
    replace(li, form);
    name.focus();
  };
  show();
  return li;
}
