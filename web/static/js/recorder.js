// Live recording from the microphone (DESIGN §8, §13): an AudioWorklet
// captures PCM at the audio context's own rate (never a context of another
// rate: Firefox refuses to connect a microphone to one), and a WebSocket
// sends it as 16-bit LE PCM. Audio the server has not acknowledged as
// durable stays in memory (bounded), so a dropped connection resumes from
// the server's offset and nothing is lost.

/** MAX_PENDING_BYTES bounds the unacknowledged audio kept in memory. */
export const MAX_PENDING_BYTES = 32 << 20; // about 5.8 minutes at 48 kHz mono
const MAX_RATE = 48000; // the server's largest sample_rate
const FRAME_BYTES = 32 << 10; // binary frames stay well under the 64 KiB limit
// DESTROYED is said when the record is destroyed while recording: final,
// nothing is retried or sent elsewhere.
const DESTROYED = 'The record was destroyed while recording: the server erased this recording and stored none of it.';

/** support says whether this browser can record, and if not, why. */
export function support() {
  if (!window.isSecureContext) return 'This page is not served over HTTPS, so the browser offers no microphone.';
  if (!navigator.mediaDevices?.getUserMedia) return 'This browser offers no microphone access.';
  if (!window.AudioContext || !window.AudioWorkletNode) return 'This browser has no WebAudio (Tor Browser turns it off).';
  if (!window.WebSocket) return 'This browser has no WebSocket.';
  return '';
}

/**
 * Recorder streams the microphone into record id. Callbacks:
 * onState(state, detail) with state one of connecting, recording,
 * reconnecting, stopping, stored, failed; onLevel(peak 0..1);
 * onTime(seconds recorded); onWarn(text).
 */
export class Recorder {
  constructor(recordID, cb) {
    this.id = recordID;
    this.cb = cb;
    this.chunks = []; // [{off, buf: Uint8Array}] unacknowledged audio, in order
    this.pendingBytes = 0;
    this.sent = 0; // bytes handed to the socket on this connection (absolute offset)
    this.total = 0; // bytes captured (absolute offset of the end)
    this.acked = 0;
    this.streamID = '';
    this.ws = null;
    this.stopping = false;
    this.finished = false;
    this.retries = 0;
    this.waiting = false; // refused for want of a stream slot, or signed out; asking again
    this.lost = 0;
  }

  /** start asks for the microphone and opens the stream. Throws with a message on refusal. */
  async start() {
    this.cb.onState('connecting');
    try {
      this.media = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
      });
    } catch (e) {
      const denied = e && (e.name === 'NotAllowedError' || e.name === 'SecurityError');
      throw new Error(denied
        ? 'The browser was not allowed to use the microphone.'
        : 'No microphone could be opened.');
    }
    try {
      await this.openGraph();
    } catch (e) {
      this.release();
      throw new Error(`The browser could not set up recording (${e?.name || 'error'}).`);
    }
    this.node.port.onmessage = (e) => this.capture(e.data);
    this.startedAt = performance.now();
    this.timer = setInterval(() => this.cb.onTime(this.total / 2 / this.rate), 250);
    // Test hook: the end-to-end tests drop the socket with this event to
    // show that a recording resumes. Only a script of this page can send it.
    this.testDrop = () => this.ws?.close(4000, 'test drop');
    document.addEventListener('tyst:test-drop', this.testDrop);
    this.connect();
  }

  /**
   * openGraph connects the microphone to the capture worklet in an audio
   * context that runs at the microphone's own rate when the browser tells
   * it (else the context's default rate): a context of another rate is
   * refused by Firefox. start declares the context's rate.
   */
  async openGraph() {
    const trackRate = this.media.getAudioTracks()[0]?.getSettings?.().sampleRate;
    try {
      this.ctx = trackRate ? new AudioContext({ sampleRate: trackRate }) : new AudioContext();
    } catch {
      this.ctx = new AudioContext(); // a rate the browser does not offer
    }
    await this.ctx.audioWorklet.addModule('/js/recorder-worklet.js');
    let decimate = 1;
    while (this.ctx.sampleRate / decimate > MAX_RATE) decimate += 1;
    this.rate = Math.round(this.ctx.sampleRate / decimate);
    const src = this.ctx.createMediaStreamSource(this.media);
    this.node = new AudioWorkletNode(this.ctx, 'tyst-pcm-capture', {
      numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: 'explicit',
      processorOptions: { decimate },
    });
    src.connect(this.node);
  }

  capture(msg) {
    if (msg.pcm.byteLength > 0) {
      const buf = new Uint8Array(msg.pcm);
      this.chunks.push({ off: this.total, buf });
      this.total += buf.byteLength;
      this.pendingBytes += buf.byteLength;
      while (this.pendingBytes > MAX_PENDING_BYTES && this.chunks.length > 1) {
        const old = this.chunks.shift();
        this.pendingBytes -= old.buf.byteLength;
        this.lost += old.buf.byteLength;
        this.cb.onWarn('The connection has been down too long: the oldest unsent audio no longer fits in memory and is being dropped.');
      }
      this.cb.onLevel(msg.peak);
      this.pump();
    }
    if (msg.flushed && this.flushWaiter) {
      // The worklet answered the flush: everything captured is queued.
      const w = this.flushWaiter;
      this.flushWaiter = null;
      w();
    }
  }

  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/api/v1/record/${this.id}/stream`;
  }

  connect() {
    const ws = new WebSocket(this.url());
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.ready = false;
    ws.onopen = () => {
      const msg = this.streamID
        ? { type: 'resume', stream_id: this.streamID }
        : { type: 'start', format: 'pcm_s16le', sample_rate: this.rate, channels: 1, source: 'mic' };
      ws.send(JSON.stringify(msg));
    };
    ws.onmessage = (e) => {
      if (typeof e.data !== 'string') return;
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      this.message(m);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      if (this.finished) return;
      this.retry();
    };
    ws.onerror = () => {}; // onclose follows
  }

  message(m) {
    switch (m.type) {
      case 'ready': {
        this.streamID = m.stream_id;
        this.retries = 0;
        if (this.waiting) {
          this.waiting = false;
          this.cb.onWarn('');
        }
        const off = Number(m.offset) || 0;
        if (off < this.acked || (this.chunks.length && off < this.chunks[0].off)) {
          this.fail('The server lost audio it had confirmed. Stop and check the record.');
          return;
        }
        this.ackTo(off);
        this.sent = off;
        this.ready = true;
        this.cb.onState(this.stopping ? 'stopping' : 'recording');
        this.pump();
        break;
      }
      case 'ack':
        this.ackTo(Number(m.offset) || 0);
        break;
      case 'stored':
        this.finished = true;
        this.cb.onState('stored', m);
        this.cleanup();
        this.ws?.close(1000);
        break;
      case 'error':
        if (['internal_error', 'timeout', 'unavailable'].includes(m.code) && this.streamID) {
          this.cb.onWarn(m.message || 'The server had a problem; resuming.');
          break; // the server closes; onclose resumes
        }
        if (!this.streamID && ['too_many_streams', 'unavailable'].includes(m.code)) {
          // No room for a new stream yet: the account's other recordings
          // (other tabs or devices, or dropped ones not yet stored), or a
          // full server. Keep capturing and ask again until there is.
          this.waiting = true;
          this.cb.onWarn(m.code === 'too_many_streams'
            ? 'This account already has as many live recordings as it may (in other tabs or on other devices, or dropped ones not yet stored). This one goes on here and is sent as soon as one of them ends.'
            : 'The server is busy. This recording goes on here and is sent as soon as the server has room.');
          break; // the server closes; onclose asks again
        }
        if (m.code === 'unauthorized') {
          // The login ended (a logout in another tab, its 12 hours, an
          // admin's reset): the server keeps what it confirmed and the
          // stream resumable by this account. Keep capturing, and ask again
          // until a new login in this browser lets the stream go on.
          this.waiting = true;
          this.cb.onWarn('Your login has ended (you logged out in another tab, it expired, or an admin changed your account). This recording goes on here: log in again in another tab and it continues where it stopped.');
          break; // the server closes; onclose asks again
        }
        if (m.code === 'record_destroyed') {
          this.fail(DESTROYED);
        } else if (m.code === 'unknown_stream') {
          // Finished after a long drop (what it held is stored), or its
          // record was destroyed meanwhile: the record tells which.
          this.finished = true; // no retry while asking
          const stored = 'The server no longer holds this recording\'s stream (it was finished after a long drop). What it held is stored in the record.';
          fetch(`/api/v1/record/${this.id}`, { credentials: 'same-origin' })
            .then((r) => this.fail(r.status === 404 ? DESTROYED : stored), () => this.fail(stored));
        } else {
          this.fail(m.message || 'The server refused the recording.');
        }
        break;
      default:
    }
  }

  ackTo(off) {
    if (off <= this.acked) return;
    this.acked = off;
    while (this.chunks.length && this.chunks[0].off + this.chunks[0].buf.byteLength <= off) {
      this.pendingBytes -= this.chunks.shift().buf.byteLength;
    }
  }

  /** pump sends every captured byte past this.sent. */
  pump() {
    const ws = this.ws;
    if (!ws || !this.ready || ws.readyState !== WebSocket.OPEN) return;
    for (const c of this.chunks) {
      const end = c.off + c.buf.byteLength;
      if (end <= this.sent) continue;
      let from = this.sent - c.off;
      while (from < c.buf.byteLength) {
        const n = Math.min(FRAME_BYTES, c.buf.byteLength - from);
        ws.send(c.buf.subarray(from, from + n));
        from += n;
      }
      this.sent = end;
    }
    if (this.stopping && this.sent === this.total && !this.stopSent) {
      this.stopSent = true;
      ws.send(JSON.stringify({ type: 'stop' }));
    }
  }

  retry() {
    this.retries += 1;
    this.stopSent = false;
    if (!this.streamID && !this.waiting) {
      if (this.retries > 5) { this.fail('The server cannot be reached.'); return; }
    }
    this.cb.onState(this.waiting ? 'waiting' : 'reconnecting', this.retries);
    const delay = this.waiting ? 2000 : Math.min(5000, 250 * 2 ** Math.min(this.retries, 5));
    setTimeout(() => { if (!this.finished) this.connect(); }, delay);
  }

  /** stop ends capture and asks the server to store the recording. */
  async stop() {
    if (this.stopping || this.finished) return;
    this.stopping = true;
    this.cb.onState('stopping');
    if (this.node) {
      await new Promise((resolve) => {
        this.flushWaiter = resolve;
        this.node.port.postMessage('flush');
        setTimeout(resolve, 1000);
      });
    }
    this.release();
    this.pump();
  }

  /** abandon ends everything without storing (the page goes away). */
  abandon() {
    this.finished = true;
    this.cleanup();
    this.ws?.close(1000);
  }

  fail(text) {
    this.finished = true;
    this.cleanup();
    this.ws?.close(1000);
    this.cb.onState('failed', text);
  }

  release() {
    clearInterval(this.timer);
    if (this.rate) this.cb.onTime(this.total / 2 / this.rate);
    this.cb.onLevel(0);
    this.media?.getTracks().forEach((t) => t.stop());
    this.node?.disconnect();
    this.node = null;
    this.ctx?.close();
    this.ctx = null;
  }

  cleanup() {
    this.release();
    document.removeEventListener('tyst:test-drop', this.testDrop);
    this.chunks = [];
    this.pendingBytes = 0;
  }
}
