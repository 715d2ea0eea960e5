// AudioWorklet processor for live recording: turns the microphone's float
// samples (first channel) into 16-bit little-endian PCM at the context's own
// rate, divided by `decimate` when that rate is above what the server takes,
// and posts ~100 ms blocks with their peak level to the page.
class PCMCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions || {};
    this.decimate = o.decimate || 1;
    this.block = Math.max(128, Math.round(sampleRate / this.decimate / 10));
    this.buf = new Int16Array(this.block);
    this.n = 0;
    this.peak = 0;
    this.acc = 0;
    this.accN = 0;
    this.port.onmessage = (e) => {
      if (e.data === 'flush') this.flush();
    };
  }

  flush() {
    const out = this.buf.slice(0, this.n);
    this.port.postMessage({ pcm: out.buffer, peak: this.peak, flushed: true }, [out.buffer]);
    this.n = 0;
    this.peak = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const ch = input[0];
    for (let i = 0; i < ch.length; i += 1) {
      this.acc += ch[i];
      this.accN += 1;
      if (this.accN < this.decimate) continue;
      let v = this.acc / this.accN;
      this.acc = 0;
      this.accN = 0;
      if (v > 1) v = 1;
      else if (v < -1) v = -1;
      const a = v < 0 ? -v : v;
      if (a > this.peak) this.peak = a;
      this.buf[this.n] = v < 0 ? v * 0x8000 : v * 0x7fff;
      this.n += 1;
      if (this.n === this.block) {
        this.port.postMessage({ pcm: this.buf.buffer, peak: this.peak }, [this.buf.buffer]);
        this.buf = new Int16Array(this.block);
        this.n = 0;
        this.peak = 0;
      }
    }
    return true;
  }
}

registerProcessor('tyst-pcm-capture', PCMCapture);
