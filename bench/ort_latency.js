#!/usr/bin/env node
// ONNX Runtime (onnxruntime-node, CPU) latency of one or more models on one sample of TensorProto
// inputs, timed the way bench/compare_ort.js times ORT beside gpuhive: intra-op threads = --threads,
// one inter-op thread, sequential execution, all graph optimizations, untimed warm-up runs, then at
// least --iterations timed runs and at least --min-seconds; p50/p90 of the per-run wall times.
// bench/precision_bench.py runs it on an FP32 model and on its QDQ quantization
// (bench/quantize_onnx.py --format qdq), so both are measured by the same code on the same inputs.
//
//   node bench/ort_latency.js --inputs SAMPLE_DIR [--threads 2] [--iterations 50] [--warmup 5]
//                             [--min-seconds 3] MODEL.onnx...
//
// SAMPLE_DIR holds one <input name>.pb per model input (as bench/quant_inputs.py writes them).
// Prints one JSON object to stdout: {"ort": version, "threads": n, "models": [{model, p50_ms,
// p90_ms, mean_ms, min_ms, iterations, load_ms}]}. Exits non-zero if any model fails to load or run.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { decode } = require('./tensorproto');

const ORT_TYPES = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 11: 'float64' };

function parseArgs(argv) {
  const opts = { inputs: '', threads: 2, iterations: 50, warmup: 5, minSeconds: 3, models: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--inputs') opts.inputs = argv[++i];
    else if (a === '--threads') opts.threads = parseInt(argv[++i], 10);
    else if (a === '--iterations') opts.iterations = parseInt(argv[++i], 10);
    else if (a === '--warmup') opts.warmup = parseInt(argv[++i], 10);
    else if (a === '--min-seconds') opts.minSeconds = parseFloat(argv[++i]);
    else opts.models.push(a);
  }
  if (!opts.inputs || opts.models.length === 0 || !(opts.threads > 0)) {
    throw new Error('usage: ort_latency.js --inputs SAMPLE_DIR [--threads N] [--iterations N] [--warmup N] ' +
                    '[--min-seconds S] MODEL.onnx...');
  }
  return opts;
}

function readFeeds(dir) {
  const feeds = {};
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.pb')).sort()) {
    const t = decode(fs.readFileSync(path.join(dir, f)));
    if (!ORT_TYPES[t.dataType]) throw new Error(`${f}: TensorProto data type ${t.dataType} is not handled`);
    feeds[t.name || path.basename(f, '.pb')] = new ort.Tensor(ORT_TYPES[t.dataType], t.data, t.dims);
  }
  if (Object.keys(feeds).length === 0) throw new Error(`${dir} holds no .pb (TensorProto) files`);
  return feeds;
}

// Nearest-rank percentile of an ascending array, as compare_ort.js computes it.
function percentile(sorted, p) { return sorted[Math.min(sorted.length - 1, Math.round(p * (sorted.length - 1)))]; }

async function timeModel(modelPath, feeds, opts) {
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: opts.threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  // Feed only what the session declares: a QDQ model keeps the float model's inputs, but be exact.
  const mine = {};
  for (const name of session.inputNames) {
    if (!feeds[name]) throw new Error(`${modelPath}: no ${name}.pb among the inputs`);
    mine[name] = feeds[name];
  }
  for (let i = 0; i < opts.warmup; i++) await session.run(mine);
  const lat = [];
  const start = process.hrtime.bigint();
  for (let i = 0; i < opts.iterations || Number(process.hrtime.bigint() - start) / 1e9 < opts.minSeconds; i++) {
    const a = process.hrtime.bigint();
    await session.run(mine);
    lat.push(Number(process.hrtime.bigint() - a) / 1e6);
  }
  lat.sort((x, y) => x - y);
  const mean = lat.reduce((s, x) => s + x, 0) / lat.length;
  if (session.release) await session.release();
  return { model: modelPath, p50_ms: percentile(lat, 0.5), p90_ms: percentile(lat, 0.9), mean_ms: mean,
           min_ms: lat[0], iterations: lat.length, load_ms: loadMs };
}

(async () => {
  const opts = parseArgs(process.argv.slice(2));
  const feeds = readFeeds(opts.inputs);
  const models = [];
  for (const m of opts.models) models.push(await timeModel(m, feeds, opts));
  const version = require('onnxruntime-node/package.json').version;
  process.stdout.write(JSON.stringify({ ort: version, threads: opts.threads, models }) + '\n');
})().catch((e) => {
  process.stderr.write(`ort_latency: ${e.message || e}\n`);
  process.exit(1);
});
