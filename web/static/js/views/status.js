// The status page (admins): version, retention and purge, key and
// debug-dump warnings, the signing key and storage (GET /api/v1/status).
import { get } from '../api.js';
import { h, replace, bytes, mib, when } from '../dom.js';
import { app } from '../app.js';

function warning(text) {
  return h('p', { class: 'banner', role: 'note' }, text);
}

/** show renders the status page. */
export async function show(main) {
  const st = await get('/api/v1/status');
  app.status = st;
  const purge = st.purge || {};
  const last = purge.last || null;
  const keys = st.keys || {};
  const dump = st.debug_dump || {};
  const sk = st.signing_key || {};
  const storage = st.storage || {};
  const perKey = Object.entries(keys.items_per_key || {});
  const oldKeys = perKey.length > 1;
  const fact = (k, v) => [h('dt', {}, k), h('dd', {}, v)];

  replace(main,
    h('h1', {}, 'Status'),
    // The server's own key warnings when it gives them; else what the
    // fields say.
    ...(keys.warnings?.length ? keys.warnings.map((w) => warning(`Key warning: ${w.replace(/\.$/, '')}.`)) : [
      keys.beside_data ? warning('The newsroom key lies beside the data (files.key in the data directory): anyone who copies the directory can read everything. Give the key with --key-file or PROJECT_FILES_KEY and move files.key away; see the README.') : null,
      oldKeys ? warning('Some items are still wrapped by an older newsroom key. Run tyst rekey to move them to the current key, then retire the old one.') : null,
    ]),
    dump.enabled ? warning(`The debug audio dump is on: ${dump.files ?? 0} file${dump.files === 1 ? '' : 's'}, ${bytes(dump.bytes ?? 0)}. Turn it off (ECHOPANEL_DEBUG_AUDIO_DUMP) when the debugging is done.`) : null,
    h('section', { class: 'card', 'aria-labelledby': 'st-ret' }, h('h2', { id: 'st-ret' }, 'Retention and purge'),
      h('dl', { class: 'facts', id: 'status-retention' },
        fact('Retention', st.retention_days ? `${st.retention_days} days` : '—'),
        fact('Purge schedule', `${purge.schedule || '—'}${purge.dry_run ? ' (dry run: nothing is deleted)' : ''}`),
        fact('Next purge', when(purge.next_at)),
        fact('Last purge', last ? `${when(last.at || last.finished_at || last.started_at)}${last.dry_run ? ' (dry run)' : ''}` : 'not yet run'),
        last ? fact('Last result', `${last.purged_count ?? 0} records purged, ${last.files_deleted ?? 0} files, ${last.exports_deleted ?? 0} exports, ${last.orphans_deleted ?? 0} orphans, ${last.errors ?? 0} errors`) : null)),
    h('section', { class: 'card', 'aria-labelledby': 'st-keys' }, h('h2', { id: 'st-keys' }, 'Keys'),
      h('dl', { class: 'facts' },
        fact('Newsroom key from', keys.source || '—'),
        keys.primary_id ? fact('Current key id', h('span', { class: 'mono' }, keys.primary_id)) : null,
        fact('Key beside the data', keys.beside_data ? 'yes: move it away' : 'no'),
        perKey.length ? fact('Items per key', perKey.map(([k, n]) => `${k}: ${n}`).join(', ')) : null,
        fact('Signing key fingerprint', h('span', { class: 'mono', id: 'status-fingerprint' }, sk.fingerprint || '—'))),
      sk.allowed_signers ? [h('p', { class: 'small' }, 'Publish the fingerprint where receivers of export packages can find it. The allowed_signers line:'),
        h('pre', { class: 'doc', tabindex: 0 }, sk.allowed_signers)] : null),
    h('section', { class: 'card', 'aria-labelledby': 'st-store' }, h('h2', { id: 'st-store' }, 'Storage and debugging'),
      h('dl', { class: 'facts' },
        fact('Stored audio files', storage.blobs ?? '—'),
        fact('Their size', storage.bytes !== undefined ? bytes(storage.bytes) : '—'),
        fact('Export packages', storage.exports ?? '—'),
        fact('Free space', storage.free_bytes !== undefined ? bytes(storage.free_bytes) : '—'),
        fact('Largest upload', st.limits?.max_upload_bytes ? mib(st.limits.max_upload_bytes) : '—'),
        fact('Debug audio dump', dump.enabled ? `ON${dump.plaintext ? ', UNENCRYPTED' : ', encrypted'}` : 'off'),
        fact('Version', st.version || '—'))));
}
