#!/usr/bin/env node
// Calibration statistics for bench/quantize_onnx.py: runs an FP32 model whose graph outputs are the
// tensors to observe (quantize_onnx.py adds them) on ONNX Runtime (onnxruntime-node) over sample
// directories of TensorProto inputs (one <input name>.pb each, as bench/quant_inputs.py writes) and
// writes, per observed output, its min and max over all samples and, with --bins, a histogram.
//
//   node bench/ort_tensor_ranges.js MODEL OUT.json [--bins 2048] [--threads 1] SAMPLE_DIR...
//
// The histogram has `bins` equal bins over [-range, range], symmetric about 0 so that both the
// percentile's lower and upper tails come from one pass: `range` starts at the first sample's
// largest magnitude and doubles whenever a later sample exceeds it, merging bins pairwise (the
// edges of the doubled range fall on old edges because bins is even), so no sample is run twice.
// Samples run one at a time: keeping every intermediate of a batch alive would cost gigabytes.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { decode } = require('./tensorproto');

const ORT_TYPES = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 11: 'float64' };

function parseArgs(argv) {
  const opts = { bins: 0, threads: 1, positional: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--bins') opts.bins = parseInt(argv[++i], 10);
    else if (argv[i] === '--threads') opts.threads = parseInt(argv[++i], 10);
    else opts.positional.push(argv[i]);
  }
  if (opts.positional.length < 3 || opts.bins % 2 !== 0) {
    throw new Error('usage: ort_tensor_ranges.js MODEL OUT.json [--bins EVEN] [--threads N] SAMPLE_DIR...');
  }
  return opts;
}

function readFeeds(dir) {
  const feeds = {};
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.pb')).sort()) {
    const t = decode(fs.readFileSync(path.join(dir, f)));
    feeds[t.name || path.basename(f, '.pb')] = new ort.Tensor(ORT_TYPES[t.dataType], t.data, t.dims);
  }
  return feeds;
}

class Stats {
  constructor(bins) {
    this.min = Infinity;
    this.max = -Infinity;
    this.bins = bins;
    this.range = 0;
    this.hist = bins ? new Float64Array(bins) : null;
  }

  add(data) {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (lo < this.min) this.min = lo;
    if (hi > this.max) this.max = hi;
    if (!this.hist || data.length === 0) return;
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new Error(`non-finite values (${lo}..${hi})`);
    const mag = Math.max(Math.abs(lo), Math.abs(hi));
    if (this.range === 0) this.range = mag > 0 ? mag : 1e-30;
    while (mag > this.range) this.double();
    const half = this.bins / 2, scale = half / this.range, last = this.bins - 1;
    for (let i = 0; i < data.length; i++) {
      const b = Math.floor(data[i] * scale) + half;
      this.hist[b < 0 ? 0 : b > last ? last : b] += 1;
    }
  }

  // Old bin i covers [-R + i w, -R + (i+1) w); in [-2R, 2R] with width 2w it is bin bins/4 + i/2.
  double() {
    const merged = new Float64Array(this.bins);
    for (let i = 0; i < this.bins; i++) merged[this.bins / 4 + (i >> 1)] += this.hist[i];
    this.hist = merged;
    this.range *= 2;
  }

  toJSON() {
    const out = { min: this.min, max: this.max };
    if (this.hist) Object.assign(out, { range: this.range, hist: Array.from(this.hist) });
    return out;
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [model, outFile, ...samples] = opts.positional;
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: opts.threads, interOpNumThreads: 1,
  });
  const stats = {};
  for (const name of session.outputNames) stats[name] = new Stats(opts.bins);
  for (const dir of samples) {
    const out = await session.run(readFeeds(dir));
    for (const name of session.outputNames) {
      try {
        if (out[name].type === 'float32') stats[name].add(out[name].data);
      } catch (e) {
        throw new Error(`${name} in ${dir}: ${e.message}`);
      }
      out[name].dispose?.();
    }
  }
  fs.writeFileSync(outFile, JSON.stringify({ samples: samples.length, tensors: stats }));
  console.log(`${outFile}: ranges of ${session.outputNames.length} tensors over ${samples.length} samples`);
}

main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
