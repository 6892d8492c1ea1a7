#!/usr/bin/env node
// Runs ONNX models on ONNX Runtime (onnxruntime-node) the way `gpuhive run` does, for
// quant_ort_check.py: each CASE_DIR holds model.onnx and one TensorProto file per input
// (input_<name>.pb, the tensor's name inside); the outputs go to CASE_DIR/<prefix><i>.pb as
// TensorProto files in graph output order. One process for many cases saves ORT's start-up.
//
//   node ort_pb_run.js [--optimization all|disabled] [--prefix ort_output_] CASE_DIR...
//
// A case that fails writes CASE_DIR/<prefix>error.txt with ORT's message and the run goes on.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { encode, decode } = require(path.join(__dirname, '..', '..', 'bench', 'tensorproto'));

const ORT_TYPES = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 11: 'float64' };

async function runCase(dir, opts) {
  const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), {
    intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: opts.optimization,
  });
  const feeds = {};
  for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('input_') && n.endsWith('.pb')).sort()) {
    const t = decode(fs.readFileSync(path.join(dir, f)));
    feeds[t.name] = new ort.Tensor(ORT_TYPES[t.dataType], t.data, t.dims);
  }
  const out = await session.run(feeds);
  session.outputNames.forEach((name, i) => {
    const t = out[name];
    fs.writeFileSync(path.join(dir, `${opts.prefix}${i}.pb`), encode(name, t.type, t.dims, t.data));
  });
  await session.release();
}

async function main() {
  const opts = { optimization: 'all', prefix: 'ort_output_' };
  const dirs = [];
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--optimization') opts.optimization = argv[++i];
    else if (argv[i] === '--prefix') opts.prefix = argv[++i];
    else dirs.push(argv[i]);
  }
  for (const dir of dirs) {
    try {
      await runCase(dir, opts);
    } catch (e) {
      fs.writeFileSync(path.join(dir, `${opts.prefix}error.txt`), String(e && e.message || e));
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
