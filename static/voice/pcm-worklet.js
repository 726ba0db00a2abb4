// AudioWorklet processor for /voice-test: microphone → mono PCM16 little-endian at the rate the server
// asks for (16 kHz), in frames of `frameMs` posted to the page as ArrayBuffers (transferred, not copied).
//
// The AudioContext runs at the device's rate (often 48 kHz, sometimes 44.1 kHz). Going down, each output
// sample is the average of the input samples since the previous one (a box filter: a cheap low-pass that
// keeps most aliasing out of the speech band); going up (rare), linear interpolation. Each post also
// carries the frame's RMS level (0–1) for the page's microphone meter.
/* global sampleRate, registerProcessor, AudioWorkletProcessor */
"use strict";

class PcmCaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.outRate = opts.targetRate || 16000;
    this.frameSamples = Math.max(1, Math.round((this.outRate * (opts.frameMs || 20)) / 1000));
    this.ratio = sampleRate / this.outRate; // input samples per output sample
    this.t = 0; // input samples since the last output sample (downsampling) / fractional position (upsampling)
    this.acc = 0;
    this.count = 0;
    this.last = 0;
    this.muted = false;
    this.stopped = false;
    this.newFrame();
    this.port.onmessage = (event) => {
      const msg = event.data || {};
      if (msg.type === "mute") this.muted = !!msg.muted;
      if (msg.type === "stop") this.stopped = true;
    };
  }

  newFrame() {
    this.buffer = new ArrayBuffer(this.frameSamples * 2);
    this.view = new DataView(this.buffer);
    this.filled = 0;
    this.sumSquares = 0;
  }

  emit(value) {
    const v = value > 1 ? 1 : value < -1 ? -1 : value;
    this.view.setInt16(this.filled * 2, v < 0 ? v * 0x8000 : v * 0x7fff, true);
    this.sumSquares += v * v;
    this.filled += 1;
    if (this.filled === this.frameSamples) {
      const level = Math.sqrt(this.sumSquares / this.frameSamples);
      if (!this.muted) this.port.postMessage({ pcm: this.buffer, level: level }, [this.buffer]);
      else this.port.postMessage({ level: 0 });
      this.newFrame();
    }
  }

  push(sample) {
    if (this.ratio >= 1) {
      this.acc += sample;
      this.count += 1;
      this.t += 1;
      if (this.t >= this.ratio) {
        this.t -= this.ratio;
        this.emit(this.acc / this.count);
        this.acc = 0;
        this.count = 0;
      }
    } else {
      while (this.t < 1) {
        this.emit(this.last + (sample - this.last) * this.t);
        this.t += this.ratio;
      }
      this.t -= 1;
      this.last = sample;
    }
  }

  process(inputs) {
    if (this.stopped) return false;
    const input = inputs[0];
    if (input && input.length) {
      const channels = input.length;
      const n = input[0].length;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let c = 0; c < channels; c++) s += input[c][i];
        this.push(s / channels);
      }
    }
    return true; // keep running while the microphone is silent (an input with no channels)
  }
}

registerProcessor("pcm-capture", PcmCaptureProcessor);
