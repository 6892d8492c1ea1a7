#!/usr/bin/env node
// Runs one ONNX model on ONNX Runtime (onnxruntime-node, the bench peer) for fp16_ort_check.py:
//   node ort_run.js MODEL IN_NAME IN_TYPE DIMS(1x3x224x224) IN.raw OUT_PREFIX
// writes OUT_PREFIX<i>.raw (the raw little-endian elements of output i) and prints their names.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, name, type, dims, inFile, outPrefix] = process.argv.slice(2);
  const raw = fs.readFileSync(inFile);
  const ab = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  const data = type === 'float16' ? new Uint16Array(ab) : new Float32Array(ab);
  const shape = dims.split('x').map(Number);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const out = await session.run({ [name]: new ort.Tensor(type, data, shape) });
  session.outputNames.forEach((n, i) => {
    const d = out[n].data;
    fs.writeFileSync(`${outPrefix}${i}.raw`, Buffer.from(d.buffer, d.byteOffset, d.byteLength));
    console.log(n, out[n].type, out[n].dims.join('x'));
  });
}
main().catch((e) => { console.error(e); process.exit(1); });
