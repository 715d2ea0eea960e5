// Admin screens: users, API tokens, settings and the audit timeline.
import { get, post, patch, put, del } from '../api.js';
import { h, replace, field, checkbox, when } from '../dom.js';
import { app, flash, go } from '../app.js';

const ROLES = ['viewer', 'editor', 'admin'];

function roleSelect(value) {
  const sel = h('select', {}, ROLES.map((r) => h('option', { value: r }, r)));
  sel.value = value;
  return sel;
}

function modal(title, id) {
  const dlg = h('dialog', { id, 'aria-labelledby': `${id}-h` }, h('h2', { id: `${id}-h` }, title));
  const body = h('div');
  dlg.append(body);
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  return { dlg, body };
}

/** users lists accounts; create, change role, disable, reset password or second factor. */
export async function users(main) {
  const { users: list } = await get('/api/v1/users');
  const tbody = h('tbody');
  for (const u of list) tbody.append(userRow(main, u));
  const name = h('input', { type: 'text', required: true, autocomplete: 'off', spellcheck: false });
  const pass = h('input', { type: 'password', required: true, autocomplete: 'new-password', minLength: 10 });
  const role = roleSelect('editor');
  const err = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'card', 'aria-labelledby': 'newuser-h' },
    h('h2', { id: 'newuser-h' }, 'New user'),
    field('Username', name), field('Password', pass, 'At least 10 characters. Tell it to the person by a safe channel.'),
    field('Role', role, 'Viewer: read and listen. Editor: also create, upload, record, edit, export, destroy. Admin: everything, and accounts.'),
    err, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create user')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      await post('/api/v1/users', { username: name.value.trim(), password: pass.value, role: role.value });
      flash('User created.');
      users(main);
    } catch (ex) {
      err.textContent = ex.message;
    }
  });
  replace(main, h('h1', {}, 'Users'),
    h('table', { class: 'cards', id: 'users' },
      h('thead', {}, h('tr', {}, ['Username', 'Role', 'Second factor', 'State', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
      tbody),
    form);
}

function userRow(main, u) {
  if (u.unreadable) return h('tr', {}, h('td', { colSpan: 5 }, `User ${u.user_id}: unreadable`));
  const role = roleSelect(u.role);
  role.setAttribute('aria-label', `Role of ${u.username}`);
  const update = async (body, msg) => {
    try {
      const res = await patch(`/api/v1/users/${u.user_id}`, body);
      const revoked = res.tokens_revoked ? ` ${res.tokens_revoked} token${res.tokens_revoked === 1 ? '' : 's'} revoked.` : '';
      flash(`${msg}${revoked}`);
      return res;
    } catch (ex) {
      flash(ex.message, true);
      return null;
    }
  };
  const saveRole = h('button', { type: 'button', class: 'secondary' }, 'Change role');
  saveRole.addEventListener('click', async () => { if (await update({ role: role.value }, 'Role changed.')) users(main); });
  const toggle = h('button', { type: 'button', class: 'secondary' }, u.disabled ? 'Enable' : 'Disable');
  toggle.addEventListener('click', async () => {
    if (await update({ disabled: !u.disabled }, u.disabled ? 'User enabled.' : 'User disabled; their sessions and tokens no longer work.')) users(main);
  });
  const resetPw = h('button', { type: 'button', class: 'secondary' }, 'Reset password');
  resetPw.addEventListener('click', () => resetPassword(main, u, update));
  const reset2 = h('button', { type: 'button', class: 'secondary', disabled: !u.totp_enabled }, 'Reset second factor');
  reset2.addEventListener('click', async () => {
    if (!window.confirm(`Reset the second factor of ${u.username}? Their API tokens are revoked too.`)) return;
    if (await update({ reset_totp: true }, 'Second factor reset.')) users(main);
  });
  return h('tr', {},
    h('td', { class: 'title' }, h('strong', {}, u.username)),
    h('td', { 'data-label': 'Role' }, role),
    h('td', { 'data-label': 'Second factor' }, u.totp_enabled ? 'enrolled' : 'none'),
    h('td', { 'data-label': 'State' }, u.disabled ? h('span', { class: 'badge' }, 'disabled') : 'active'),
    h('td', {}, h('div', { class: 'actions' }, saveRole, toggle, resetPw, reset2)));
}

function resetPassword(main, u, update) {
  const { dlg, body } = modal(`New password for ${u.username}`, 'reset-password');
  const pass = h('input', { type: 'password', required: true, autocomplete: 'new-password', minLength: 10 });
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  cancel.addEventListener('click', () => dlg.close());
  const form = h('form', {}, field('New password', pass, 'At least 10 characters. Their API tokens are revoked.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Set password'), cancel));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (await update({ password: pass.value }, 'Password reset.')) {
      dlg.close();
      users(main);
    }
  });
  body.append(form);
  pass.focus();
}

/** tokens lists API tokens; create one (shown once) or revoke. */
export async function tokens(main) {
  const [{ tokens: list }, { users: people }] = await Promise.all([get('/api/v1/tokens'), get('/api/v1/users')]);
  const nameOf = (id) => people.find((u) => u.user_id === id)?.username || `user ${id}`;
  const tbody = h('tbody');
  for (const t of list) {
    if (t.unreadable) { tbody.append(h('tr', {}, h('td', { colSpan: 5 }, `Token ${t.token_id}: unreadable`))); continue; }
    const revoke = h('button', { type: 'button', class: 'secondary', 'aria-label': `Revoke token ${t.label || t.token_id}` }, 'Revoke');
    revoke.addEventListener('click', async () => {
      if (!window.confirm('Revoke this token? Scripts and devices using it stop working at once.')) return;
      try {
        await del(`/api/v1/tokens/${t.token_id}`);
        flash('Token revoked.');
        tokens(main);
      } catch (ex) {
        flash(ex.message, true);
      }
    });
    tbody.append(h('tr', {},
      h('td', { class: 'title' }, t.label || h('span', { class: 'muted' }, '(no label)')),
      h('td', { 'data-label': 'User' }, nameOf(t.user_id)),
      h('td', { 'data-label': 'Scope' }, t.scope || 'full'),
      h('td', { 'data-label': 'Created' }, when(t.created_at)),
      h('td', {}, revoke)));
  }
  const user = h('select', {}, people.filter((u) => !u.unreadable && !u.disabled).map((u) => h('option', { value: u.username }, u.username)));
  user.value = app.me.username;
  const label = h('input', { type: 'text', autocomplete: 'off', maxLength: 100 });
  const full = h('input', { type: 'radio', name: 'scope', value: '', id: 'scope-full', checked: true });
  const stream = h('input', { type: 'radio', name: 'scope', value: 'stream', id: 'scope-stream' });
  const err = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'card', 'aria-labelledby': 'newtok-h' },
    h('h2', { id: 'newtok-h' }, 'New API token'),
    field('For user', user), field('Label', label, 'What it is for, e.g. "field box 2".'),
    h('fieldset', {}, h('legend', {}, 'Scope'),
      h('label', { class: 'inline', for: full.id }, full, 'Full: acts as the user'),
      h('label', { class: 'inline', for: stream.id }, stream, 'Stream only: create records, upload and stream (for a field box)')),
    err, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create token')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      const res = await post('/api/v1/tokens', { username: user.value, label: label.value.trim(), scope: stream.checked ? 'stream' : '' });
      showToken(res.token, () => tokens(main));
    } catch (ex) {
      err.textContent = ex.message;
    }
  });
  replace(main, h('h1', {}, 'API tokens'),
    list.length ? h('table', { class: 'cards', id: 'tokens' },
      h('thead', {}, h('tr', {}, ['Label', 'User', 'Scope', 'Created', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))), tbody)
      : h('p', { class: 'muted' }, 'No tokens.'),
    form);
}

function showToken(token, done) {
  const { dlg, body } = modal('New API token', 'token-dialog');
  const close = h('button', { type: 'button' }, 'I have copied it');
  close.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', done);
  const copy = h('button', { type: 'button', class: 'secondary' }, 'Copy');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(token);
      copy.textContent = 'Copied';
    } catch {
      copy.textContent = 'Select and copy it by hand';
    }
  });
  body.append(
    h('p', {}, 'Copy the token now: it is shown only this once. Send it as "Authorization: Bearer <token>".'),
    h('p', { class: 'secret-box', id: 'new-token' }, token),
    h('div', { class: 'actions' }, copy, close));
  close.focus();
}

/** settings edits the server's settings. */
export async function settings(main) {
  const st = await get('/api/v1/settings');
  const totp = checkbox('Admins must use a second factor (TOTP)', { checked: !!st.require_admin_totp, id: 'set-admin-totp' });
  const err = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'card' }, totp.el,
    h('p', { class: 'hint' }, 'On: an admin without a second factor can do nothing but enrol one.'),
    err, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save settings')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      await put('/api/v1/settings', { require_admin_totp: totp.input.checked });
      flash('Settings saved.');
    } catch (ex) {
      err.textContent = ex.message;
    }
  });
  replace(main, h('h1', {}, 'Settings'), form);
}

const ACTIONS = {
  project_created: 'Project created', transcript_created: 'Record created', audio_uploaded: 'Audio uploaded',
  audio_accessed: 'Audio listened to', audio_removed: 'Audio removed', transcript_destroyed: 'Record destroyed',
  purged: 'Record purged', export_created: 'Export made', export_downloaded: 'Export downloaded',
};

/** audit shows the audit timeline, optionally for one record. */
export async function audit(main, params) {
  const seq = app.routeSeq;
  const rid = params.get('record') || '';
  const ol = h('ol', { class: 'timeline', id: 'audit' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Show more');
  const input = h('input', { type: 'text', inputMode: 'numeric', value: rid, autocomplete: 'off' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Audit events' },
    h('div', {}, field('Record number', input)), h('div', {}, h('button', { type: 'submit' }, 'Filter')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = input.value.trim();
    go(v ? `#/admin/audit?record=${encodeURIComponent(v)}` : '#/admin/audit');
  });
  replace(main, h('h1', {}, 'Audit log'),
    h('p', { class: 'muted' }, 'Every event is chained by hash. Events of destroyed records keep only their hash.'),
    form, ol, h('div', { class: 'actions' }, more));
  let names = new Map();
  try {
    names = new Map((await get('/api/v1/users')).users.map((u) => [u.user_id, u.username]));
  } catch {
    // ids only
  }
  let cursor = '';
  const page = async () => {
    const p = new URLSearchParams({ limit: '100' });
    if (rid) p.set('record_id', rid);
    if (cursor) p.set('cursor', cursor);
    const res = await get(`/api/v1/audit?${p}`);
    if (seq !== app.routeSeq) return;
    for (const ev of res.events) ol.append(eventItem(ev, names));
    cursor = res.next_cursor || '';
    more.hidden = !cursor;
    if (!ol.children.length) ol.append(h('li', { class: 'muted' }, 'No events.'));
  };
  more.addEventListener('click', () => page().catch((e) => flash(e.message, true)));
  await page();
}

function eventItem(ev, names) {
  if (ev.redacted) {
    return h('li', {}, h('span', { class: 'muted' }, `#${ev.seq} redacted (record destroyed or purged)`));
  }
  if (ev.body_missing) {
    return h('li', { class: 'body-missing' }, h('span', { class: 'error' },
      `#${ev.seq} body missing: removed, but not by a destroy or purge. The log was altered; run tyst verify.`));
  }
  const meta = Object.entries(ev.meta || {}).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
  return h('li', {},
    h('div', {}, h('span', { class: 'action' }, ACTIONS[ev.action] || ev.action), ' ',
      h('span', { class: 'muted small' }, `#${ev.seq}, ${when(ev.time)}`)),
    h('div', { class: 'small' },
      ev.transcript_id ? h('a', { href: `#/record/${ev.transcript_id}` }, `record ${ev.transcript_id}`) : null,
      ev.actor_id ? ` by ${names.get(ev.actor_id) || `user ${ev.actor_id}`}` : '',
      ev.token_id ? ` (token ${ev.token_id})` : '',
      meta ? h('span', { class: 'muted' }, ` — ${meta}`) : null));
}
