// One record: details (rename, move, hold), audio (player, upload, live
// recording, removal), transcript, notes, export and destroy.
import { get, post, patch, put, del, upload } from '../api.js';
import { h, replace, field, checkbox, bytes, mib, duration, when, day, clock, retention } from '../dom.js';
import { app, canEdit, isAdmin, flash, go } from '../app.js';
import { loadProjects, projectSelect } from './records.js';
import { Recorder, support } from '../recorder.js';
import { exportDialog, destroyDialog, removeAudioDialog } from './dialogs.js';

/** active is the live recorder of the page. Leaving the page stops and saves it. */
let active = null;
window.addEventListener('hashchange', () => {
  if (active && !active.finished && location.hash !== `#/record/${active.id}`) {
    active.stop();
    flash('You left the recording page: the recording was stopped and is being saved.');
  }
});
window.addEventListener('beforeunload', (e) => {
  if (active && !active.finished) e.preventDefault();
});

/** show renders record id. */
export async function show(main, id) {
  const seq = app.routeSeq;
  let rec;
  try {
    rec = await get(`/api/v1/record/${id}`);
  } catch (err) {
    if (err.status === 404) {
      replace(main, h('h1', {}, 'Record not found'),
        h('p', {}, 'It does not exist, was destroyed, or is not yours to see. ', h('a', { href: '#/records' }, 'Back to the records')));
      return;
    }
    throw err;
  }
  const [projects, segs, notes] = await Promise.all([
    loadProjects(), get(`/api/v1/record/${id}/segments`), get(`/api/v1/record/${id}/notes`)]);
  if (seq !== app.routeSeq) return;
  const ctx = { id, rec, projects, main };
  replace(main,
    h('p', { class: 'small' }, h('a', { href: '#/records' }, '← All records')),
    h('h1', { id: 'record-title' }, rec.title),
    facts(ctx),
    canEdit() ? details(ctx) : null,
    audioSection(ctx),
    transcriptSection(ctx, segs.segments),
    notesSection(ctx, notes.notes),
    actionsSection(ctx));
}

function facts({ rec, projects }) {
  const p = projects.find((x) => x.project_id === rec.project_id);
  return h('dl', { class: 'facts' },
    h('dt', {}, 'Project'), h('dd', {}, h('a', { href: `#/records?project=${rec.project_id}` }, p && !p.unreadable ? p.name : `Project ${rec.project_id}`)),
    h('dt', {}, 'Created'), h('dd', {}, when(rec.created_at)),
    h('dt', {}, 'Retention'), h('dd', {}, retention(rec),
      rec.retain_until ? h('span', { class: 'muted' }, ` kept at least until ${day(rec.retain_until)}`) : null),
    h('dt', {}, 'Sensitivity'), h('dd', {}, rec.sensitivity === 'sensitive'
      ? h('span', { class: 'badge sensitive' }, 'Sensitive: only its creator and admins') : 'Standard'),
    h('dt', {}, 'Language'), h('dd', {}, rec.language || 'und'));
}

function details(ctx) {
  const { rec, projects, id } = ctx;
  const title = h('input', { type: 'text', value: rec.title, required: true, maxLength: 500, autocomplete: 'off' });
  const sel = projectSelect(projects, rec.project_id);
  const err = h('p', { class: 'error', role: 'alert' });
  const parts = [field('Title', title), field('Project', sel)];
  let hold = null;
  let until = null;
  if (isAdmin()) {
    hold = checkbox('Legal hold: never purge this record', { checked: rec.hold });
    until = h('input', { type: 'date', value: rec.retain_until ? rec.retain_until.slice(0, 10) : '' });
    parts.push(h('fieldset', {}, h('legend', {}, 'Retention (admins)'), hold.el,
      field('Keep at least until', until, 'Empty: the normal retention time applies.')));
  }
  const form = h('form', { 'aria-labelledby': 'details-h' }, ...parts, err,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save changes')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    const body = {};
    if (title.value.trim() !== rec.title) body.title = title.value.trim();
    if (Number(sel.value) !== rec.project_id) body.project_id = Number(sel.value);
    if (hold && hold.input.checked !== rec.hold) body.hold = hold.input.checked;
    if (until) {
      const cur = rec.retain_until ? rec.retain_until.slice(0, 10) : '';
      if (until.value !== cur) body.retain_until = until.value ? `${until.value}T23:59:59Z` : null;
    }
    if (!Object.keys(body).length) { err.textContent = 'Nothing changed.'; return; }
    try {
      await patch(`/api/v1/record/${id}`, body);
      flash('Changes saved.');
      show(ctx.main, id);
    } catch (ex) {
      err.textContent = ex.message;
    }
  });
  const box = h('details', { class: 'card' }, h('summary', { id: 'details-h' }, 'Rename, move to another project', isAdmin() ? ', hold' : ''), form);
  return box;
}

function audioSection(ctx) {
  const { rec, id } = ctx;
  const sec = h('section', { class: 'card', 'aria-labelledby': 'audio-h' }, h('h2', { id: 'audio-h' }, 'Audio'));
  const a = rec.audio;
  if (a) {
    const audio = h('audio', { controls: true, preload: 'metadata', src: `/api/v1/record/${id}/audio`, id: 'player' });
    audio.setAttribute('aria-label', 'Recording');
    ctx.audio = audio;
    sec.append(audio,
      h('p', { class: 'muted small' }, `${a.mime_type}, ${bytes(a.size_bytes)}, ${duration(a.duration_ms)}`),
      h('p', { class: 'muted small mono' }, `SHA-256 ${a.sha256}`));
    if (canEdit()) {
      const rm = h('button', { type: 'button', class: 'secondary' }, 'Remove audio…');
      rm.addEventListener('click', () => removeAudioDialog(ctx, () => show(ctx.main, id)));
      sec.append(h('div', { class: 'actions' }, rm));
    }
    return sec;
  }
  if (!canEdit()) {
    sec.append(h('p', { class: 'muted' }, 'No audio yet.'));
    return sec;
  }
  sec.append(h('p', {}, 'No audio yet. Upload a recording, or record from the microphone.'));
  const up = uploadBox(ctx);
  sec.append(h('h3', {}, 'Upload a file'), up, h('h3', {}, 'Record live'), liveBox(ctx, up));
  return sec;
}

// Accepted audio (DESIGN §5): by extension, for browsers that give no type.
const ACCEPT = '.wav,.mp3,.m4a,.mp4,.aac,.ogg,.oga,.opus,.webm,audio/*';
const EXTS = ['wav', 'mp3', 'm4a', 'mp4', 'aac', 'ogg', 'oga', 'opus', 'webm'];

/** checkFile says why file cannot be uploaded, before a byte is sent; '' when it can. */
export function checkFile(file) {
  const ext = (file.name.split('.').pop() || '').toLowerCase();
  const typeOK = file.type.startsWith('audio/') || file.type === 'video/webm' || file.type === 'video/mp4';
  if (!typeOK && !EXTS.includes(ext)) {
    return 'This file type is not accepted. Upload WAV, MP3, M4A/MP4, AAC, OGG or WebM audio.';
  }
  if (file.size === 0) return 'This file is empty.';
  if (app.maxUpload > 0 && file.size > app.maxUpload) {
    return `This file is ${mib(file.size)}; the server takes at most ${mib(app.maxUpload)}.`;
  }
  return '';
}

function uploadBox(ctx) {
  const input = h('input', { type: 'file', accept: ACCEPT, id: 'upload-file' });
  const progress = h('progress', { max: 100, value: 0, id: 'upload-progress', hidden: true });
  progress.setAttribute('aria-label', 'Upload progress');
  const status = h('p', { class: 'muted small', role: 'status', 'aria-live': 'polite' });
  const err = h('p', { class: 'error', role: 'alert', id: 'upload-error' });
  const cancel = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Cancel upload');
  const limit = app.maxUpload > 0 ? ` Up to ${mib(app.maxUpload)}.` : '';
  const zone = h('div', { class: 'drop', id: 'drop' },
    h('p', {}, 'Drop an audio file here, or choose one:'),
    field('Audio file', input, `WAV, MP3, M4A/MP4, AAC, OGG or WebM.${limit}`));
  let current = null;
  const send = (file) => {
    err.textContent = '';
    const why = checkFile(file);
    if (why) { err.textContent = why; return; }
    if (current) return;
    progress.hidden = false;
    progress.value = 0;
    cancel.hidden = false;
    status.textContent = `Uploading ${bytes(file.size)}…`;
    const t0 = performance.now();
    current = upload(`/api/v1/record/${ctx.id}/audio`, file, (sent, total) => {
      progress.value = Math.round((sent / total) * 100);
      const secs = (performance.now() - t0) / 1000;
      status.textContent = `Uploading: ${bytes(sent)} of ${bytes(total)} (${progress.value} %)${secs > 1 ? `, ${bytes(sent / secs)}/s` : ''}`;
    });
    current.promise.then(() => {
      flash('Audio uploaded and stored encrypted.');
      show(ctx.main, ctx.id);
    }, (ex) => {
      progress.hidden = true;
      cancel.hidden = true;
      status.textContent = '';
      err.textContent = uploadError(ex);
    }).finally(() => { current = null; input.value = ''; });
  };
  cancel.addEventListener('click', () => current?.abort());
  input.addEventListener('change', () => { if (input.files[0]) send(input.files[0]); });
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const f = e.dataTransfer?.files?.[0];
    if (f) send(f);
  });
  return h('div', { id: 'upload' }, zone, progress, status, err, h('div', { class: 'actions' }, cancel));
}

function uploadError(ex) {
  switch (ex.code) {
    case 'payload_too_large': return `The server refused the file: it is larger than its limit. ${ex.message}`;
    case 'unsupported_media_type': return `The server refused the file: it is not audio of an accepted type. ${ex.message}`;
    case 'conflict': return 'This record already has audio. Remove it first to upload another.';
    default: return ex.message;
  }
}

function liveBox(ctx, uploadEl) {
  const box = h('div', { id: 'live' });
  const why = support();
  if (why) {
    box.append(h('p', { class: 'error', id: 'live-unsupported' }, `${why} Live recording is not possible here: upload a recording instead.`));
    return box;
  }
  const startBtn = h('button', { type: 'button', id: 'rec-start' }, 'Start recording');
  const stopBtn = h('button', { type: 'button', class: 'danger', id: 'rec-stop', hidden: true }, 'Stop and save');
  const time = h('p', { class: 'rec-time', id: 'rec-time', role: 'timer', 'aria-label': 'Recorded time' }, '0:00');
  const meter = h('meter', { min: 0, max: 1, low: 0.6, high: 0.9, optimum: 0.3, value: 0, id: 'rec-level' });
  meter.setAttribute('aria-label', 'Input level');
  const state = h('p', { role: 'status', 'aria-live': 'polite', id: 'rec-state' }, 'The audio goes straight to the server, encrypted there; nothing is saved in this browser.');
  const warn = h('p', { class: 'error', role: 'alert', id: 'rec-error' });
  const panel = h('div', { class: 'rec-panel', hidden: true }, time, meter);
  box.append(panel, state, warn, h('div', { class: 'actions' }, startBtn, stopBtn));

  const states = {
    connecting: 'Connecting…',
    recording: 'Recording. Each second is confirmed by the server once it is safely stored.',
    reconnecting: 'Connection lost: reconnecting. Recording goes on; nothing is lost while this page stays open.',
    waiting: 'Waiting for the server to take this recording. Recording goes on; nothing is lost while this page stays open.',
    stopping: 'Saving the recording…',
  };
  startBtn.addEventListener('click', async () => {
    warn.textContent = '';
    startBtn.disabled = true;
    const rec = new Recorder(ctx.id, {
      onState: (s, detail) => {
        if (s === 'stored') {
          active = null;
          flash(`Recording stored: ${duration(detail.duration_ms)}.`);
          if (location.hash === `#/record/${ctx.id}`) show(ctx.main, ctx.id);
          return;
        }
        if (s === 'failed') {
          active = null;
          if (location.hash !== `#/record/${ctx.id}`) flash(detail, true);
          warn.textContent = detail;
          stopBtn.hidden = true;
          state.textContent = '';
          return;
        }
        box.dataset.state = s;
        state.textContent = states[s] || '';
      },
      onLevel: (v) => { meter.value = v; },
      onTime: (sec) => { time.textContent = duration(sec * 1000); },
      onWarn: (text) => { warn.textContent = text; },
    });
    try {
      await rec.start();
    } catch (ex) {
      startBtn.disabled = false;
      state.textContent = '';
      warn.textContent = `${ex.message} Live recording is not possible: upload a recording instead.`;
      uploadEl.querySelector('input[type=file]')?.focus();
      return;
    }
    active = rec;
    panel.hidden = false;
    startBtn.hidden = true;
    stopBtn.hidden = false;
    stopBtn.focus();
  });
  stopBtn.addEventListener('click', () => {
    stopBtn.disabled = true;
    active?.stop();
  });
  return box;
}

const TRANSCRIPT_TYPES = { json: 'application/json', vtt: 'text/vtt', srt: 'application/x-subrip' };

function transcriptSection(ctx, segments) {
  const sec = h('section', { class: 'card', 'aria-labelledby': 'tr-h' }, h('h2', { id: 'tr-h' }, 'Transcript'));
  const ol = h('ol', { class: 'segments', id: 'segments' });
  for (const s of segments) {
    const at = h('button', { type: 'button', class: 'link mono', 'aria-label': `Play from ${clock(s.start_ms)}` }, clock(s.start_ms));
    at.addEventListener('click', () => {
      if (!ctx.audio) return;
      ctx.audio.currentTime = s.start_ms / 1000;
      ctx.audio.play().catch(() => {});
    });
    ol.append(h('li', {}, at, h('span', {}, s.speaker ? h('span', { class: 'speaker' }, `${s.speaker}:`) : null, s.text || '')));
  }
  sec.append(segments.length ? ol : h('p', { class: 'muted' }, 'No transcript yet.'));
  // The segment being played is marked as the player moves.
  ctx.audio?.addEventListener('timeupdate', () => {
    const ms = ctx.audio.currentTime * 1000;
    segments.forEach((s, i) => {
      const li = ol.children[i];
      if (ms >= s.start_ms && ms < s.end_ms) li.setAttribute('aria-current', 'true');
      else li.removeAttribute('aria-current');
    });
  });
  if (canEdit()) {
    const input = h('input', { type: 'file', accept: '.json,.vtt,.srt,application/json,text/vtt,application/x-subrip', id: 'transcript-file' });
    const err = h('p', { class: 'error', role: 'alert', id: 'transcript-error' });
    input.addEventListener('change', async () => {
      err.textContent = '';
      const f = input.files[0];
      if (!f) return;
      const ext = (f.name.split('.').pop() || '').toLowerCase();
      const type = TRANSCRIPT_TYPES[ext];
      if (!type) { err.textContent = 'Import a JSON, WebVTT (.vtt) or SubRip (.srt) file.'; return; }
      if (f.size > 1 << 20) { err.textContent = 'A transcript file may be at most 1 MiB.'; return; }
      try {
        await put(`/api/v1/record/${ctx.id}/segments`, { raw: await f.text(), type });
        flash(segments.length ? 'Transcript replaced.' : 'Transcript imported.');
        show(ctx.main, ctx.id);
      } catch (ex) {
        err.textContent = ex.message;
      } finally {
        input.value = '';
      }
    });
    sec.append(field(segments.length ? 'Replace the transcript with a file' : 'Import a transcript file', input,
      'JSON ({"segments": [...]}), WebVTT (.vtt) or SubRip (.srt).'), err);
  }
  return sec;
}

function notesSection(ctx, notes) {
  const sec = h('section', { class: 'card', 'aria-labelledby': 'notes-h' }, h('h2', { id: 'notes-h' }, 'Notes'));
  const ul = h('ul', { class: 'plain', id: 'notes' });
  for (const n of notes) {
    const li = h('li', {}, h('p', { class: 'note-text' }, n.text));
    const meta = h('div', { class: 'row' }, h('span', { class: 'muted small' }, when(n.created_at)));
    if (canEdit()) {
      const rm = h('button', { type: 'button', class: 'link', 'aria-label': `Delete the note of ${when(n.created_at)}` }, 'Delete');
      rm.addEventListener('click', async () => {
        if (!window.confirm('Delete this note?')) return;
        try {
          await del(`/api/v1/record/${ctx.id}/notes/${n.note_id}`);
          flash('Note deleted.');
          show(ctx.main, ctx.id);
        } catch (ex) {
          flash(ex.message, true);
        }
      });
      meta.append(rm);
    }
    li.append(meta);
    ul.append(li);
  }
  sec.append(notes.length ? ul : h('p', { class: 'muted' }, 'No notes yet.'));
  if (canEdit()) {
    const text = h('textarea', { id: 'note-text', required: true, autocomplete: 'off', maxLength: 10000 });
    const err = h('p', { class: 'error', role: 'alert' });
    const form = h('form', {}, field('New note', text), err,
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add note')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      err.textContent = '';
      try {
        await post(`/api/v1/record/${ctx.id}/notes`, { text: text.value });
        flash('Note added.');
        show(ctx.main, ctx.id);
      } catch (ex) {
        err.textContent = ex.message;
      }
    });
    sec.append(form);
  }
  return sec;
}

function actionsSection(ctx) {
  if (!canEdit()) return null;
  const exp = h('button', { type: 'button', id: 'export-open' }, 'Export…');
  exp.addEventListener('click', () => exportDialog(ctx));
  const destroy = h('button', { type: 'button', class: 'danger', id: 'destroy-open' }, 'Destroy…');
  destroy.addEventListener('click', () => destroyDialog(ctx, () => go('#/records')));
  return h('section', { class: 'card', 'aria-labelledby': 'act-h' }, h('h2', { id: 'act-h' }, 'Export or destroy'),
    h('p', {}, 'Export makes a signed package for an editor or lawyer. Destroy erases the record for good and gives a signed receipt.'),
    h('div', { class: 'actions' }, exp, destroy),
    isAdmin() ? h('p', { class: 'small' }, h('a', { href: `#/admin/audit?record=${ctx.id}`, id: 'record-audit' }, 'Audit trail of this record')) : null);
}

