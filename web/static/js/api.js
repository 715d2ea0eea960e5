// The HTTP API client: JSON in and out, errors as ApiError with the
// server's code and message. The session is the HttpOnly cookie the server
// set; nothing is kept in browser storage.

/** ApiError is a failed request: status, code (DESIGN §5) and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `request failed (${status})`);
    this.status = status;
    this.code = code || 'error';
  }
}

/** unauthorizedHandler is called on a 401 to a request that needs a session. */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

async function errorFrom(resp) {
  let code = '';
  let message = '';
  try {
    const body = await resp.json();
    code = body?.error?.code || '';
    message = body?.error?.message || '';
  } catch {
    // not JSON: a proxy's page, or nothing
  }
  if (!message) {
    message = resp.status === 404 ? 'not found' : `the server answered ${resp.status}`;
  }
  return new ApiError(resp.status, code, message);
}

/**
 * request sends method path with an optional JSON body (or {raw, type}) and
 * returns the decoded JSON answer, or null for 204.
 */
export async function request(method, path, body, opts = {}) {
  const init = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    if (body && body.raw !== undefined) {
      init.headers['Content-Type'] = body.type;
      init.body = body.raw;
    } else {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'the server cannot be reached: check the connection and try again');
  }
  if (!resp.ok) {
    const err = await errorFrom(resp);
    if (resp.status === 401 && !opts.noRedirect) onUnauthorized(err);
    throw err;
  }
  if (resp.status === 204) return null;
  const ct = resp.headers.get('Content-Type') || '';
  return ct.includes('application/json') ? resp.json() : resp.text();
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body ?? {}, opts);
export const patch = (path, body) => request('PATCH', path, body);
export const put = (path, body) => request('PUT', path, body);
export const del = (path, body) => request('DELETE', path, body);

/**
 * upload posts file as the multipart field "file" with XMLHttpRequest, whose
 * upload events give real progress: onProgress(sentBytes, totalBytes).
 * It returns {promise, abort}.
 */
export function upload(path, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', path);
    xhr.responseType = 'json';
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(xhr.response);
        return;
      }
      const e = xhr.response?.error;
      if (xhr.status === 401) onUnauthorized();
      reject(new ApiError(xhr.status, e?.code, e?.message || `the server answered ${xhr.status}`));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', 'the upload was cut off: check the connection and try again')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'upload cancelled')));
    const fd = new FormData();
    // A neutral name: the reporter's file name never leaves the browser.
    fd.append('file', file, 'audio');
    xhr.send(fd);
  });
  return { promise, abort: () => xhr.abort() };
}
