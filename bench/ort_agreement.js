#!/usr/bin/env node
// Top-1 agreement of a reduced-precision model (e.g. bench/quantize_onnx.py's QDQ model) with its FP32
// original, both run by ONNX Runtime (onnxruntime-node, CPU) on the same validation samples, and how
// close the FP32 model's two best classes are: for each row the gap between its top-1 and top-2
// logits divided by the row's logit standard deviation (p10 and p50 over the rows), next to the
// reduced model's logit error relative to that spread. It answers whether a missed agreement target
// is gpuhive's quantization or the model: when the FP32 gaps are a few hundredths of the spread,
// any 8-bit scheme flips a share of the rows.
//
//   NODE_PATH=bench/node_modules node bench/ort_agreement.js FP32.onnx REDUCED.onnx VALIDATION_DIR
//
// VALIDATION_DIR holds sub-folders of TensorProto samples (one .pb per model input, named by the
// input), as bench/precision_bench.py --keep writes them. Prints one JSON object.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { decode } = require('./tensorproto');

async function main() {
  const [fp32Path, reducedPath, valDir] = process.argv.slice(2);
  if (!valDir) throw new Error('usage: ort_agreement.js FP32.onnx REDUCED.onnx VALIDATION_DIR');
  const opts = { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
  const a = await ort.InferenceSession.create(fp32Path, opts);
  const b = await ort.InferenceSession.create(reducedPath, opts);
  let agree = 0, rows = 0, noise2 = 0, spread2 = 0;
  const gaps = [];
  for (const chunk of fs.readdirSync(valDir).sort()) {
    const dir = path.join(valDir, chunk);
    if (!fs.statSync(dir).isDirectory()) continue;
    const feeds = {};
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.pb'))) {
      const t = decode(fs.readFileSync(path.join(dir, f)));
      const name = t.name || path.basename(f, '.pb');
      const type = t.data instanceof BigInt64Array ? 'int64' : 'float32';
      feeds[name] = new ort.Tensor(type, t.data, t.dims);
    }
    const ya = (await a.run(feeds))[a.outputNames[0]];
    const yb = (await b.run(feeds))[b.outputNames[0]];
    const classes = ya.dims[ya.dims.length - 1], n = ya.data.length / classes;
    for (let r = 0; r < n; ++r) {
      const off = r * classes;
      let ia = 0, ib = 0, mean = 0;
      for (let c = 0; c < classes; ++c) {
        if (ya.data[off + c] > ya.data[off + ia]) ia = c;
        if (yb.data[off + c] > yb.data[off + ib]) ib = c;
        mean += ya.data[off + c];
        noise2 += (ya.data[off + c] - yb.data[off + c]) ** 2;
      }
      mean /= classes;
      let second = -Infinity, s2 = 0;
      for (let c = 0; c < classes; ++c) {
        s2 += (ya.data[off + c] - mean) ** 2;
        if (c !== ia && ya.data[off + c] > second) second = ya.data[off + c];
      }
      spread2 += s2;
      gaps.push((ya.data[off + ia] - second) / Math.sqrt(s2 / classes));
      agree += ia === ib ? 1 : 0;
      ++rows;
    }
  }
  gaps.sort((x, y) => x - y);
  const at = (q) => gaps[Math.min(gaps.length - 1, Math.floor(gaps.length * q))];
  console.log(JSON.stringify({ ort: ort.env.versions ? ort.env.versions.common : undefined, rows,
    top1_agreement: agree / rows, error_over_spread: Math.sqrt(noise2 / spread2),
    fp32_gap_over_spread_p10: at(0.1), fp32_gap_over_spread_p50: at(0.5) }));
}

main().catch((e) => { console.error(e.message); process.exit(1); });
