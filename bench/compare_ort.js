#!/usr/bin/env node
// Side-by-side: gpuhive vs ONNX Runtime 1.30 (CPU) on the same ONNX files, same inputs, same
// thread count. For each model and batch it prints our latency / ORT latency and the relative L2
// difference of the outputs (||ours - ort|| / ||ort||, over all outputs).
//
// The header names the machine, its load average, the git commit and the date, so a figure can be
// quoted with its conditions. Models: every .onnx under --models, plus the built-in repository's
// models under --repository that are not hard links to those (text_detector, tiny_mlp).
//
//   node bench/compare_ort.js --models models/generated [--repository models/repository] --threads 2
//                             --batches 1,8 [--json out.json]
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const ort = require('onnxruntime-node');
const { encode, decode } = require('./tensorproto');

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf('--' + name); return i >= 0 ? args[i + 1] : def; };
const modelsDir = opt('models', 'models/generated');
const threads = parseInt(opt('threads', String(os.cpus().length)), 10);
const batches = opt('batches', '1,8').split(',').map(Number);
const only = opt('only', '');
const iterations = parseInt(opt('iterations', '20'), 10);
const minSeconds = parseFloat(opt('min-seconds', '3'));
const gpuhive = opt('gpuhive', 'build/bin/gpuhive');
const jsonOut = opt('json', '');
const repository = opt('repository', '');

// Inputs per model: name -> {type, dims(batch)} ; values deterministic.
function inputSpecs(model, batch) {
  if (model.startsWith('bert')) {
    const seq = 128;
    return [
      { name: 'input_ids', type: 'int64', dims: [batch, seq], range: 30522 },
      { name: 'attention_mask', type: 'int64', dims: [batch, seq], fill: 1n },
      { name: 'token_type_ids', type: 'int64', dims: [batch, seq], fill: 0n },
    ];
  }
  if (model.startsWith('audio')) return [{ name: 'features', type: 'float32', dims: [batch, 49, 40] }];
  if (model === 'text_detector') return [{ name: 'image', type: 'float32', dims: [batch, 3, 320, 320] }];
  if (model === 'tiny_mlp') return [{ name: 'INPUT0', type: 'float32', dims: [batch, 16] }];
  return [{ name: 'input', type: 'float32', dims: [batch, 3, 224, 224] }];
}

function makeData(spec, seed) {
  const n = spec.dims.reduce((a, b) => a * b, 1);
  let s = seed >>> 0;
  const rnd = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296; };
  if (spec.type === 'int64') {
    const a = new BigInt64Array(n);
    for (let i = 0; i < n; i++) a[i] = spec.fill !== undefined ? spec.fill : BigInt(Math.floor(rnd() * spec.range));
    return a;
  }
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rnd() * 2 - 1;
  return a;
}

function percentile(sorted, p) { return sorted[Math.min(sorted.length - 1, Math.round(p * (sorted.length - 1)))]; }

async function ortRun(modelPath, specs, datas) {
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const feeds = {};
  specs.forEach((s, i) => { feeds[s.name] = new ort.Tensor(s.type, datas[i], s.dims); });
  let out;
  for (let i = 0; i < 3; i++) out = await session.run(feeds);
  const lat = [];
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations || Number(process.hrtime.bigint() - start) / 1e9 < minSeconds; i++) {
    const a = process.hrtime.bigint();
    await session.run(feeds);
    lat.push(Number(process.hrtime.bigint() - a) / 1e6);
  }
  lat.sort((a, b) => a - b);
  const outputs = session.outputNames.map((n) => out[n].data);
  return { p50: percentile(lat, 0.5), p90: percentile(lat, 0.9), outputs, names: session.outputNames };
}

function gpuhiveRun(modelPath, specs, datas, tmp) {
  const inArgs = [];
  specs.forEach((s, i) => {
    const f = path.join(tmp, `in_${i}.pb`);
    fs.writeFileSync(f, encode(s.name, s.type, s.dims, datas[i]));
    inArgs.push('--input', `${s.name}=${f}`);
  });
  const outDir = path.join(tmp, 'out');
  execFileSync(gpuhive, ['run', modelPath, ...inArgs, '--output-dir', outDir, '--threads', String(threads)],
               { stdio: ['ignore', 'ignore', 'inherit'] });
  const outputs = [];
  for (let i = 0; fs.existsSync(path.join(outDir, `output_${i}.pb`)); i++) {
    outputs.push(decode(fs.readFileSync(path.join(outDir, `output_${i}.pb`))).data);
  }
  const shapeArgs = specs.map((s) => ['--shape', `${s.name}=${s.dims.join('x')}`]).flat();
  const perf = JSON.parse(execFileSync(gpuhive, ['perf', modelPath, '--json', '--threads', String(threads),
    '--batch', String(specs[0].dims[0]), '--iterations', String(iterations), '--min-seconds', String(minSeconds),
    ...shapeArgs], { encoding: 'utf8' }));
  return { p50: perf.p50_ms, p90: perf.p90_ms, outputs, perf };
}

function relL2(ours, theirs) {
  let num = 0, den = 0;
  for (let k = 0; k < theirs.length; k++) {
    const a = ours[k], b = theirs[k];
    if (!a || a.length !== b.length) return Infinity;
    for (let i = 0; i < b.length; i++) {
      const x = Number(a[i]), y = Number(b[i]);
      num += (x - y) * (x - y);
      den += y * y;
    }
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

(async () => {
  const models = fs.readdirSync(modelsDir).filter((f) => f.endsWith('.onnx')).sort()
    .map((f) => ({ model: path.basename(f, '.onnx'), modelPath: path.join(modelsDir, f) }));
  if (repository && fs.existsSync(repository)) {
    const inodes = new Set(models.map((m) => fs.statSync(m.modelPath).ino));
    for (const d of fs.readdirSync(repository).sort()) {
      const p = path.join(repository, d, '1', 'model.onnx');
      if (fs.existsSync(p) && !inodes.has(fs.statSync(p).ino)) models.push({ model: d, modelPath: p });
    }
  }
  const files = models.filter((m) => !only || only.split(',').includes(m.model));
  const rows = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpuhive-bench-'));
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    if (execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim()) commit += '+dirty';
  } catch (e) { /* not a checkout */ }
  const machine = { cpu: os.cpus()[0].model, cpus: os.cpus().length, mem_gib: Math.round(os.totalmem() / 2 ** 30),
                    loadavg: os.loadavg().map((x) => x.toFixed(2)), commit, date: new Date().toISOString(),
                    ort: require('onnxruntime-node/package.json').version };
  console.log(`date=${machine.date} commit=${commit} cpu="${machine.cpu}" cpus=${machine.cpus} mem=${machine.mem_gib}GiB ` +
              `loadavg=${machine.loadavg.join(',')} onnxruntime-node=${machine.ort}`);
  console.log(`threads=${threads} iterations>=${iterations} min-seconds=${minSeconds}`);
  console.log('model                  batch   gpuhive p50   ORT p50   ratio   rel L2     planned/naive activations');
  for (const { model, modelPath } of files) {
    for (const batch of batches) {
      const specs = inputSpecs(model, batch);
      const datas = specs.map((s, i) => makeData(s, 42 + i));
      let row;
      try {
        const ours = gpuhiveRun(modelPath, specs, datas, tmp);
        const theirs = await ortRun(modelPath, specs, datas);
        row = { model, batch, threads, gpuhive_p50_ms: ours.p50, ort_p50_ms: theirs.p50, ratio: ours.p50 / theirs.p50,
                rel_l2: relL2(ours.outputs, theirs.outputs), arena_bytes: ours.perf.arena_bytes,
                naive_activation_bytes: ours.perf.naive_activation_bytes };
        console.log(`${model.padEnd(22)} ${String(batch).padStart(5)} ${row.gpuhive_p50_ms.toFixed(2).padStart(11)} ms` +
          `${row.ort_p50_ms.toFixed(2).padStart(8)} ms ${row.ratio.toFixed(2).padStart(6)}   ${row.rel_l2.toExponential(1).padStart(8)}` +
          `   ${(row.arena_bytes / 1048576).toFixed(1)} / ${(row.naive_activation_bytes / 1048576).toFixed(1)} MiB`);
      } catch (e) {
        row = { model, batch, error: String(e.message || e).split('\n')[0] };
        console.log(`${model.padEnd(22)} ${String(batch).padStart(5)}   error: ${row.error}`);
      }
      rows.push(row);
    }
  }
  machine.loadavg_end = os.loadavg().map((x) => x.toFixed(2));
  console.log(`loadavg at the end=${machine.loadavg_end.join(',')}`);
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ ...machine, threads, rows }, null, 1));
})();
