// tyst's browser UI: the shell (navigation, banners, messages) and a small
// hash router. Each screen is a module under views/ whose render function
// fills <main>. State lives in memory only and is dropped at logout.
import { get, del, setUnauthorizedHandler } from './api.js';
import { h, replace } from './dom.js';
import * as auth from './views/auth.js';
import * as records from './views/records.js';
import * as record from './views/record.js';
import * as admin from './views/admin.js';
import * as status from './views/status.js';

/** app is the shared state of the running page. */
export const app = {
  me: null, // GET /api/v1/me
  status: null, // GET /api/v1/status when the server has it and the role may read it
  maxUpload: Number(document.querySelector('meta[name="tyst-max-upload-bytes"]')?.content || 0),
  routeSeq: 0,
};

const main = document.getElementById('main');
const flashEl = document.getElementById('flash');

/** flash shows a short message in the live region. */
export function flash(text, isError = false) {
  flashEl.classList.toggle('is-error', isError);
  flashEl.textContent = text;
}

/** isAdmin reports whether the signed-in user is an admin. */
export function isAdmin() { return app.me?.role === 'admin'; }
/** canEdit reports whether the signed-in user may change records. */
export function canEdit() { return app.me?.role === 'admin' || app.me?.role === 'editor'; }

/** go navigates to a hash route. */
export function go(route) {
  if (location.hash === route) render();
  else location.hash = route;
}

const routes = [
  [/^#\/setup(?:\/([A-Za-z0-9_-]+))?$/, (m) => auth.setup(main, m[1]), { open: true }],
  [/^#\/login$/, () => auth.login(main), { open: true }],
  [/^#\/account$/, () => auth.account(main)],
  [/^#\/records(?:\?(.*))?$/, (m) => records.list(main, new URLSearchParams(m[1] || ''))],
  [/^#\/new$/, () => records.create(main)],
  [/^#\/projects$/, () => records.projects(main)],
  [/^#\/record\/(\d+)$/, (m) => record.show(main, m[1])],
  [/^#\/admin\/users$/, () => admin.users(main)],
  [/^#\/admin\/tokens$/, () => admin.tokens(main)],
  [/^#\/admin\/settings$/, () => admin.settings(main)],
  [/^#\/admin\/audit(?:\?(.*))?$/, (m) => admin.audit(main, new URLSearchParams(m[1] || ''))],
  [/^#\/status$/, () => status.show(main)],
];

/** render draws the screen of the current hash. */
export async function render() {
  app.routeSeq += 1;
  const hash = location.hash || '#/records';
  flash('');
  if (!app.me) {
    const open = routes.find(([re, , o]) => o?.open && re.test(hash));
    if (!open) {
      await start();
      return;
    }
  } else if (app.me.needs_totp && hash !== '#/account') {
    location.hash = '#/account';
    return;
  }
  for (const [re, fn] of routes) {
    const m = hash.match(re);
    if (m) {
      markNav(hash);
      try {
        await fn(m);
      } catch (err) {
        if (err?.status === 401) return;
        replace(main, h('h1', {}, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, err.message));
      }
      // After a move, focus goes to the new screen, unless the screen put
      // it on a field. On the first screen it stays at the top of the
      // page, where the skip link is.
      if (app.moved && !main.contains(document.activeElement)) {
        main.focus({ preventScroll: true });
      }
      app.moved = true;
      return;
    }
  }
  replace(main, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/records' }, 'Back to the records')));
}

function markNav(hash) {
  for (const a of document.querySelectorAll('#nav a')) {
    const target = a.getAttribute('href');
    if (hash === target || hash.startsWith(`${target}?`) || (target === '#/records' && hash.startsWith('#/record/'))) {
      a.setAttribute('aria-current', 'page');
    } else {
      a.removeAttribute('aria-current');
    }
  }
}

/** start finds out who is signed in, or sends the user to setup or login. */
export async function start() {
  try {
    app.me = await get('/api/v1/me', { noRedirect: true });
  } catch (err) {
    if (err.status === 401) {
      let needed = false;
      try {
        needed = (await get('/api/v1/setup', { noRedirect: true })).needed;
      } catch {
        // an old server without the endpoint: log in
      }
      const want = needed ? '#/setup' : '#/login';
      if (location.hash === want || (needed && location.hash.startsWith('#/setup/'))) render();
      else location.hash = want;
      return;
    }
    replace(main, h('h1', {}, 'tyst is not reachable'), h('p', { class: 'error', role: 'alert' }, err.message),
      h('button', { type: 'button', onclick: () => start() }, 'Try again'));
    return;
  }
  signedIn();
  const hash = location.hash;
  if (!hash || hash === '#/login' || hash.startsWith('#/setup')) location.hash = '#/records';
  else render();
}

/** signedIn shows the navigation and the banners for app.me. */
function signedIn() {
  document.getElementById('nav').hidden = false;
  document.body.classList.toggle('is-admin', isAdmin());
  loadStatus();
}

/** loadStatus reads GET /api/v1/status for the upload limit and the warning banners. */
export async function loadStatus() {
  const banners = document.getElementById('banners');
  replace(banners);
  if (app.me?.needs_totp) return;
  try {
    app.status = await get('/api/v1/status');
  } catch {
    app.status = null;
    return;
  }
  const st = app.status;
  if (st?.limits?.max_upload_bytes > 0) app.maxUpload = st.limits.max_upload_bytes;
  const warn = (text) => banners.append(h('div', { class: 'banner', role: 'note' }, h('p', {}, text)));
  if (isAdmin() && st?.keys?.beside_data) {
    warn('The newsroom key lies beside the data: anyone who copies the data directory can read everything. See the Status page.');
  }
  if (st?.debug_dump?.enabled) {
    warn('The debug audio dump is on: live recordings are also written to the debug-audio directory. Ask an admin to turn it off when the debugging is done.');
  }
}

async function logout() {
  try {
    await del('/api/v1/session');
  } catch {
    // the session may be gone already; forget it here all the same
  }
  // A full reload drops everything this page held in memory.
  location.replace('/#/login');
  location.reload();
}

setUnauthorizedHandler(() => {
  if (!app.me) return;
  app.me = null;
  document.getElementById('nav').hidden = true;
  location.hash = '#/login';
  flash('Your session has ended. Log in again.', true);
});

document.getElementById('logout').addEventListener('click', logout);
// The skip link moves focus without touching the hash, which is the route.
document.querySelector('.skip').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', () => render());

/** setMe records a fresh login and opens the first screen. */
export async function setMe(next = '#/records') {
  const me = await get('/api/v1/me');
  app.me = me;
  signedIn();
  location.hash = me.needs_totp ? '#/account' : next;
}

start();
