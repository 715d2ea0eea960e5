// First-run setup, login (with the second factor) and the account page,
// where a user enrols TOTP and sees the recovery codes once.
import { get, post } from '../api.js';
import { h, replace, field } from '../dom.js';
import { app, setMe, flash } from '../app.js';
import qrcode from '../../vendor/qrcode.mjs';

function errorBox() {
  return h('p', { class: 'error', role: 'alert' });
}

/** setup renders the first-run page: the one-time token creates the first admin. */
export async function setup(main, tokenFromLink) {
  const token = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: false });
  if (tokenFromLink) {
    token.value = tokenFromLink;
    // Keep the token out of the address bar and the history.
    history.replaceState(null, '', '#/setup');
  }
  const user = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, value: 'admin' });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', required: true, minLength: 10 });
  const err = errorBox();
  const form = h('form', { class: 'card auth-form' },
    field('Setup token', token, 'The server printed it when it started with no accounts (tyst_setup_…).'),
    field('Username of the first admin', user),
    field('Password', pass, 'At least 10 characters.'),
    err,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create the admin account')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      await post('/api/v1/setup', { token: token.value.trim(), username: user.value.trim(), password: pass.value }, { noRedirect: true });
      await post('/api/v1/session', { username: user.value.trim(), password: pass.value }, { noRedirect: true });
      await setMe('#/account');
      flash('The admin account is ready. Enrol a second factor now; then turn on "Admins must use a second factor" in Settings.');
    } catch (ex) {
      err.textContent = ex.message;
    }
  });
  replace(main, h('div', { class: 'auth' },
    h('h1', {}, 'Set up tyst'),
    h('p', {}, 'No account exists yet. Create the first admin with the one-time setup token.'),
    form));
}

/** login renders the login form; the second-factor field appears when needed. */
export async function login(main) {
  if (app.me) { location.hash = '#/records'; return; }
  const user = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const code = h('input', { type: 'text', name: 'totp', autocomplete: 'one-time-code', inputMode: 'numeric', spellcheck: false });
  const codeField = field('Code from the authenticator app', code, 'Six digits, or one of your recovery codes.');
  codeField.hidden = true;
  const err = errorBox();
  const form = h('form', {},
    field('Username', user), field('Password', pass), codeField, err,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Log in')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    const body = { username: user.value.trim(), password: pass.value };
    if (!codeField.hidden && code.value.trim()) body.totp = code.value.trim();
    try {
      await post('/api/v1/session', body, { noRedirect: true });
      await setMe();
    } catch (ex) {
      if (ex.status === 401 && /second factor required/.test(ex.message)) {
        codeField.hidden = false;
        code.focus();
        err.textContent = 'Enter the code from your authenticator app.';
        return;
      }
      err.textContent = ex.status === 401 ? 'Wrong username, password or code.' : ex.message;
    }
  });
  replace(main, h('div', { class: 'auth' }, h('h1', {}, 'Log in to tyst'), form));
  user.focus();
}

/** account shows who is signed in and enrols a second factor. */
export async function account(main) {
  const me = app.me;
  const box = h('div');
  replace(main,
    h('h1', {}, 'Your account'),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Username'), h('dd', {}, me.username),
      h('dt', {}, 'Role'), h('dd', {}, me.role),
      h('dt', {}, 'Second factor'), h('dd', {}, me.totp_enabled ? 'enrolled (TOTP)' : 'not enrolled')),
    h('section', { class: 'card', 'aria-labelledby': 'totp-h' }, h('h2', { id: 'totp-h' }, 'Second factor (TOTP)'), box));
  if (me.needs_totp) {
    box.append(h('p', { class: 'error', role: 'alert' }, 'Admins must enrol a second factor before they can use tyst.'));
  }
  if (me.totp_enabled) {
    box.append(h('p', {}, 'A second factor is enrolled. An admin can reset it if the phone is lost; that also revokes your API tokens.'));
    return;
  }
  enrolForm(box);
}

function enrolForm(box) {
  const pass = h('input', { type: 'password', autocomplete: 'current-password', required: true });
  const err = errorBox();
  const form = h('form', {},
    h('p', {}, 'Scan a QR code with an authenticator app (for example FreeOTP, Aegis or Google Authenticator), then type the code it shows.'),
    field('Current password', pass), err,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Start enrolment')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      const { otpauth_uri: uri } = await post('/api/v1/me/totp', { password: pass.value });
      pass.value = '';
      confirmForm(box, uri);
    } catch (ex) {
      err.textContent = ex.status === 403 ? 'That password is not right.' : ex.message;
    }
  });
  replace(box, form);
}

/** qrCanvas draws text as a QR code on a canvas, in the page itself. */
export function qrCanvas(text) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const scale = 6;
  const margin = 4;
  const size = (n + 2 * margin) * scale;
  const canvas = h('canvas', { class: 'qr', width: size, height: size, role: 'img', 'aria-label': 'QR code of the second-factor secret' });
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, size, size);
  ctx.fillStyle = '#000';
  for (let r = 0; r < n; r += 1) {
    for (let c = 0; c < n; c += 1) {
      if (qr.isDark(r, c)) ctx.fillRect((c + margin) * scale, (r + margin) * scale, scale, scale);
    }
  }
  return canvas;
}

function confirmForm(box, uri) {
  const secret = new URL(uri).searchParams.get('secret') || '';
  const code = h('input', { type: 'text', autocomplete: 'one-time-code', inputMode: 'numeric', required: true, spellcheck: false, maxLength: 8 });
  const err = errorBox();
  const form = h('form', {},
    qrCanvas(uri),
    h('p', {}, 'Cannot scan? Type this key into the app instead:'),
    h('p', { class: 'secret-box', id: 'totp-secret' }, secret.replace(/(.{4})/g, '$1 ').trim()),
    field('Code from the app', code), err,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Confirm')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      const { recovery_codes: codes } = await post('/api/v1/me/totp/confirm', { code: code.value.trim() });
      app.me = await get('/api/v1/me');
      showRecovery(box, codes);
    } catch (ex) {
      err.textContent = ex.message;
    }
  });
  replace(box, form);
  code.focus();
}

function showRecovery(box, codes) {
  const done = h('button', { type: 'button' }, 'I have saved them');
  done.addEventListener('click', async () => {
    replace(box, h('p', { class: 'success' }, 'Second factor enrolled.'));
    await setMe('#/records');
  });
  replace(box,
    h('p', { class: 'success', role: 'status' }, 'Second factor enrolled.'),
    h('h3', {}, 'Recovery codes'),
    h('p', {}, 'Each code logs you in once if the phone is lost. Write them down or keep them in a password manager now: they are shown only this once.'),
    h('ol', { class: 'codes', id: 'recovery-codes' }, codes.map((c) => h('li', {}, c))),
    h('div', { class: 'actions' }, done));
  done.focus();
}
