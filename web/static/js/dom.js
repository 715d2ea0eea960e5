// Small DOM helpers. Text always goes in as text nodes, never as HTML, so a
// title or a transcript line can never become markup.

/** h builds an element: h('a', {href: '#/x', class: 'y'}, 'text', child). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k in el && typeof v !== 'string') {
      el[k] = v;
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** clear empties el and appends children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let seq = 0;
/** uid returns a fresh id for label/input pairs. */
export function uid(prefix = 'f') {
  seq += 1;
  return `${prefix}-${seq}`;
}

/** field returns a label and a control bound to it, with an optional hint. */
export function field(labelText, control, hint) {
  if (!control.id) control.id = uid();
  const parts = [h('label', { for: control.id }, labelText)];
  if (hint) {
    const hid = uid('hint');
    control.setAttribute('aria-describedby', hid);
    parts.push(h('p', { class: 'hint', id: hid }, hint));
  }
  parts.push(control);
  return h('div', { class: 'field' }, parts);
}

/** checkbox returns a labelled checkbox. */
export function checkbox(labelText, attrs = {}) {
  const input = h('input', { type: 'checkbox', id: uid(), ...attrs });
  return { input, el: h('label', { class: 'inline', for: input.id }, input, labelText) };
}

const units = ['B', 'KB', 'MB', 'GB', 'TB'];
/** bytes formats a byte count in decimal units, as file managers do. */
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i += 1; }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** mib formats a limit given in bytes in MiB, as the server's settings are. */
export function mib(n) {
  const v = n / (1 << 20);
  return `${Number.isInteger(v) ? v : v.toFixed(1)} MiB`;
}

/** duration formats milliseconds as m:ss or h:mm:ss. */
export function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  const s = Math.floor(ms / 1000);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** clock formats milliseconds as a transcript time stamp, m:ss.t */
export function clock(ms) {
  const t = Math.floor((ms % 1000) / 100);
  return `${duration(ms)}.${t}`;
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dayFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

/** when formats an RFC 3339 time for people. */
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : dateFmt.format(d);
}

/** day formats an RFC 3339 time as a date only. */
export function day(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : dayFmt.format(d);
}

/** countdown says how long until iso: "12 days left", "5 hours left", "expired". */
export function countdown(iso, now = Date.now()) {
  const ms = new Date(iso).getTime() - now;
  if (Number.isNaN(ms)) return { text: '—', soon: false };
  if (ms <= 0) return { text: 'expired, purged at the next run', soon: true };
  const hours = ms / 3600000;
  if (hours < 48) {
    const n = Math.max(1, Math.floor(hours));
    return { text: `${n} hour${n === 1 ? '' : 's'} left`, soon: true };
  }
  const days = Math.floor(hours / 24);
  return { text: `${days} days left`, soon: days <= 3 };
}

/** retention returns the element that shows a record's retention. */
export function retention(rec) {
  if (rec.hold) return h('span', { class: 'badge hold' }, 'On hold');
  if (!rec.expires_at) return h('span', { class: 'muted' }, '—');
  const c = countdown(rec.expires_at);
  return h('span', { class: c.soon ? 'badge soon' : '', title: `Deleted after ${when(rec.expires_at)}` }, c.text);
}
