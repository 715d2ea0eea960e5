// The dialogs that change a record for good: export, destroy, audio removal.
// Each asks for a reason and an explicit confirmation, as the API does.
import { get, post, del } from '../api.js';
import { h, replace, field, checkbox, when } from '../dom.js';
import { app, isAdmin, flash } from '../app.js';

/** modal opens a <dialog> with a heading; it is removed when closed. */
function modal(title, id) {
  const heading = h('h2', { id: `${id}-h` }, title);
  const body = h('div');
  const dlg = h('dialog', { id, 'aria-labelledby': `${id}-h` }, heading, body);
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  return { dlg, body };
}

function cancelButton(dlg, text = 'Cancel') {
  const b = h('button', { type: 'button', class: 'secondary' }, text);
  b.addEventListener('click', () => dlg.close());
  return b;
}

/** signingKey returns the newsroom signing key's fingerprint, if the server tells it. */
async function signingKey() {
  if (!app.status) {
    try {
      app.status = await get('/api/v1/status');
    } catch {
      return '';
    }
  }
  return app.status?.signing_key?.fingerprint || '';
}

function verifyHelp(fingerprint) {
  const fp = fingerprint || 'SHA256:…';
  return [
    h('p', {}, 'The package is signed with the newsroom\'s signing key. The receiver checks it offline with OpenSSH:'),
    h('pre', { class: 'doc', tabindex: 0 }, 'ssh-keygen -Y verify -f allowed_signers -I tyst -n tyst-export-v1 \\\n  -s manifest.json.sig < manifest.json'),
    h('p', {}, 'A good signature prints the key\'s fingerprint. It must be the one the newsroom publishes',
      fingerprint ? ':' : ' (ask an admin; it is on the status page).'),
    fingerprint ? h('p', { class: 'secret-box', id: 'export-fingerprint' }, fingerprint) : null,
    h('p', {}, 'Or, with tyst, give it that fingerprint:'),
    h('pre', { class: 'doc', tabindex: 0, id: 'export-verify-command' }, `tyst verify-package package.zip --fingerprint ${fp}`),
    h('p', { class: 'small muted' }, 'The key inside the ZIP proves nothing alone; the fingerprint does. Without --fingerprint (or the newsroom\'s allowed_signers file), tyst verify-package exits 3: intact, but its signer not checked.'),
  ];
}

/** exportDialog asks for mode, reason and confirmation, then offers the ZIP. */
export async function exportDialog(ctx) {
  const { dlg, body } = modal('Export this record', 'export-dialog');
  const fp = await signingKey();
  const enc = h('input', { type: 'radio', name: 'mode', value: 'encrypted', id: 'mode-enc', checked: true });
  const dec = h('input', { type: 'radio', name: 'mode', value: 'decrypted', id: 'mode-dec', disabled: !isAdmin() });
  const reason = h('textarea', { id: 'export-reason', required: true, autocomplete: 'off' });
  const confirm = checkbox('I confirm this export and its reason', { id: 'export-confirm' });
  const err = h('p', { class: 'error', role: 'alert' });
  const submit = h('button', { type: 'submit' }, 'Export');
  const form = h('form', {},
    h('fieldset', {}, h('legend', {}, 'Audio in the package'),
      h('label', { class: 'inline', for: enc.id }, enc, 'Encrypted with the newsroom key (the receiver needs the key holder)'),
      h('label', { class: 'inline', for: dec.id }, dec, 'Decrypted, playable anywhere', isAdmin() ? '' : ' (admins only)')),
    field('Reason', reason, 'Who receives it and why. Stored encrypted in the signed receipt; required, at least 10 characters for decrypted audio.'),
    confirm.el, err,
    h('div', { class: 'actions' }, submit, cancelButton(dlg)),
    ...verifyHelp(fp));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    const mode = dec.checked ? 'decrypted' : 'encrypted';
    if (!confirm.input.checked) { err.textContent = 'Tick the confirmation first.'; return; }
    if (reason.value.trim().length < (mode === 'decrypted' ? 10 : 1)) {
      err.textContent = mode === 'decrypted' ? 'A decrypted export needs a reason of at least 10 characters.' : 'Give a reason.';
      return;
    }
    submit.disabled = true;
    try {
      const res = await post(`/api/v1/record/${ctx.id}/export`, { confirm: true, reason: reason.value.trim(), export_audio_mode: mode });
      await exported(body, dlg, res, fp);
    } catch (ex) {
      submit.disabled = false;
      err.textContent = ex.message;
    }
  });
  replace(body, form);
  reason.focus();
}

async function exported(body, dlg, res, fingerprint) {
  let fp = fingerprint;
  if (!fp && res.receipt_id) {
    try {
      fp = (await get(`/api/v1/receipts/${encodeURIComponent(res.receipt_id)}`)).signing_key || '';
    } catch {
      // the help below then says where to find it
    }
  }
  const link = h('a', { class: 'button', href: res.download_url, download: `tyst-export-${res.package_id}.zip`, id: 'export-download' }, 'Download the package (ZIP)');
  const warnings = (res.warnings || []).map((w) => h('p', { class: 'error', role: 'alert' }, w));
  replace(body,
    h('p', { class: 'success', role: 'status' }, 'The package is ready.'),
    ...warnings,
    h('dl', { class: 'facts' },
      h('dt', {}, 'Package'), h('dd', { class: 'mono' }, res.package_id),
      h('dt', {}, 'Audio'), h('dd', {}, res.audio_mode),
      h('dt', {}, 'Receipt'), h('dd', { class: 'mono' }, res.receipt_id)),
    h('div', { class: 'actions' }, link, cancelButton(dlg, 'Close')),
    ...verifyHelp(fp));
  link.focus();
}

/** destroyDialog shows the dry run, asks for the title, destroys, shows the receipt. */
export async function destroyDialog(ctx, done) {
  const { dlg, body } = modal('Destroy this record', 'destroy-dialog');
  replace(body, h('p', {}, 'Counting what would be destroyed…'));
  let dry;
  try {
    dry = await post(`/api/v1/record/${ctx.id}/destroy`, { dry_run: true });
  } catch (ex) {
    replace(body, h('p', { class: 'error', role: 'alert' }, ex.message), h('div', { class: 'actions' }, cancelButton(dlg, 'Close')));
    return;
  }
  const w = dry.would_delete;
  const typed = h('input', { type: 'text', id: 'destroy-title', autocomplete: 'off', required: true, spellcheck: false });
  const reason = h('textarea', { id: 'destroy-reason', required: true, autocomplete: 'off' });
  const err = h('p', { class: 'error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'danger', disabled: true }, 'Destroy for good');
  typed.addEventListener('input', () => { submit.disabled = typed.value.trim() !== ctx.rec.title.trim(); });
  const form = h('form', {},
    h('p', {}, 'This erases the record and cannot be undone. It will destroy:'),
    h('ul', { id: 'destroy-counts' },
      h('li', {}, `${w.files} audio file${w.files === 1 ? '' : 's'}`),
      h('li', {}, `${w.segments} transcript segment${w.segments === 1 ? '' : 's'}`),
      h('li', {}, `${w.notes} note${w.notes === 1 ? '' : 's'}`)),
    h('p', { id: 'destroy-exports-note' },
      `${w.exports ?? 0} export package${w.exports === 1 ? '' : 's'} on this server will be deleted too; copies already downloaded are not.`),
    field('Type the record\'s title to confirm', typed),
    field('Reason', reason, 'Stored encrypted in the signed receipt.'),
    err,
    h('div', { class: 'actions' }, submit, cancelButton(dlg)));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    if (typed.value.trim() !== ctx.rec.title.trim()) { err.textContent = 'The title does not match.'; return; }
    if (!reason.value.trim()) { err.textContent = 'Give a reason.'; return; }
    submit.disabled = true;
    try {
      const res = await post(`/api/v1/record/${ctx.id}/destroy`, { dry_run: false, confirm: true, reason: reason.value.trim() });
      await showReceipt(body, dlg, res.receipt_id, 'The record is destroyed.');
      dlg.addEventListener('close', done);
    } catch (ex) {
      submit.disabled = false;
      err.textContent = ex.message;
    }
  });
  replace(body, form);
  typed.focus();
}

/** showReceipt fetches a signed receipt and shows it with how to check it. */
async function showReceipt(body, dlg, id, headline) {
  let rc = null;
  try {
    rc = await get(`/api/v1/receipts/${encodeURIComponent(id)}`);
  } catch {
    // shown without the document below
  }
  const close = cancelButton(dlg, 'Close');
  replace(body,
    h('p', { class: 'success', role: 'status' }, headline),
    h('dl', { class: 'facts', id: 'receipt' },
      h('dt', {}, 'Receipt'), h('dd', { class: 'mono' }, id),
      rc ? [h('dt', {}, 'Kind'), h('dd', {}, rc.kind), h('dt', {}, 'Time'), h('dd', {}, when(rc.created_at)),
        h('dt', {}, 'Signing key'), h('dd', { class: 'mono' }, rc.signing_key)] : null),
    rc ? [
      h('p', {}, 'The signed receipt. Keep it: it proves what was destroyed and when, without saying what it was.'),
      h('h3', {}, 'Document'), h('pre', { class: 'doc', tabindex: 0, id: 'receipt-document' }, rc.document),
      h('h3', {}, 'Signature'), h('pre', { class: 'doc', tabindex: 0 }, rc.signature),
      h('p', { class: 'small' }, 'Check it: save the document as receipt.json, the signature as receipt.sig and this line as allowed_signers, then run ssh-keygen -Y verify -f allowed_signers -I tyst -n tyst-receipt-v1 -s receipt.sig < receipt.json'),
      h('pre', { class: 'doc', tabindex: 0 }, rc.allowed_signers),
    ] : h('p', { class: 'error' }, 'The receipt could not be loaded; its id is above.'),
    h('div', { class: 'actions' }, close));
  close.focus();
}

/** removeAudioDialog removes a record's audio by erasure, with a reason. */
export function removeAudioDialog(ctx, done) {
  const { dlg, body } = modal('Remove the audio', 'remove-audio-dialog');
  const reason = h('textarea', { id: 'remove-reason', required: true, autocomplete: 'off' });
  const confirm = checkbox('I confirm: erase this audio for good', { id: 'remove-confirm' });
  const err = h('p', { class: 'error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'danger' }, 'Remove audio');
  const form = h('form', {},
    h('p', {}, 'The audio is erased (its key is forgotten); the record, transcript and notes stay. A new upload may follow.'),
    h('p', { id: 'remove-exports-note' },
      'Export packages of this audio on this server will be deleted too; copies already downloaded are not.'),
    field('Reason', reason, 'Stored encrypted in the signed receipt.'), confirm.el, err,
    h('div', { class: 'actions' }, submit, cancelButton(dlg)));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    if (!confirm.input.checked || !reason.value.trim()) { err.textContent = 'Give a reason and tick the confirmation.'; return; }
    submit.disabled = true;
    try {
      const res = await del(`/api/v1/record/${ctx.id}/audio`, { confirm: true, reason: reason.value.trim() });
      await showReceipt(body, dlg, res.receipt_id, 'The audio is removed.');
      dlg.addEventListener('close', done);
      flash('Audio removed.');
    } catch (ex) {
      submit.disabled = false;
      err.textContent = ex.message;
    }
  });
  replace(body, form);
  reason.focus();
}
