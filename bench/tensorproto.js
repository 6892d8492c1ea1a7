// Minimal ONNX TensorProto encode/decode (dims, data_type, name, raw_data) for the benchmarks.
'use strict';
const DTYPES = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float64: 11 };
const ARRAYS = { 1: Float32Array, 2: Uint8Array, 3: Int8Array, 6: Int32Array, 7: BigInt64Array, 9: Uint8Array, 11: Float64Array };

function varint(n) {
  const out = [];
  let v = BigInt.asUintN(64, BigInt(n));
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}

function encode(name, type, dims, typed) {
  const parts = [];
  for (const d of dims) parts.push(Buffer.from([0x08, ...varint(d)]));
  parts.push(Buffer.from([0x10, ...varint(DTYPES[type])]));
  const nameBuf = Buffer.from(name, 'utf8');
  parts.push(Buffer.from([0x42, ...varint(nameBuf.length)]), nameBuf);
  const raw = Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);
  parts.push(Buffer.from([0x4a, ...varint(raw.length)]), raw);
  return Buffer.concat(parts);
}

function decode(buf) {
  let pos = 0;
  const readVarint = () => {
    let result = 0n, shift = 0n;
    for (;;) {
      const b = buf[pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
    }
  };
  const t = { dims: [], dataType: 0, name: '', raw: null, floats: [] };
  while (pos < buf.length) {
    const key = Number(readVarint());
    const field = key >> 3, wire = key & 7;
    if (wire === 0) {
      const v = readVarint();
      if (field === 1) t.dims.push(Number(v));
      else if (field === 2) t.dataType = Number(v);
    } else if (wire === 2) {
      const len = Number(readVarint());
      const slice = buf.subarray(pos, pos + len);
      pos += len;
      if (field === 8) t.name = slice.toString('utf8');
      else if (field === 9) t.raw = slice;
      else if (field === 4) for (let i = 0; i + 4 <= slice.length; i += 4) t.floats.push(slice.readFloatLE(i));
      else if (field === 1) {  // packed dims
        let p = 0;
        while (p < slice.length) {
          let r = 0n, s = 0n;
          for (;;) { const b = slice[p++]; r |= BigInt(b & 0x7f) << s; if (!(b & 0x80)) break; s += 7n; }
          t.dims.push(Number(r));
        }
      }
    } else if (wire === 5) pos += 4;
    else if (wire === 1) pos += 8;
    else throw new Error('unsupported wire type ' + wire);
  }
  const Arr = ARRAYS[t.dataType];
  if (t.raw) {
    const copy = Buffer.from(t.raw);
    t.data = new Arr(copy.buffer, copy.byteOffset, copy.byteLength / Arr.BYTES_PER_ELEMENT);
  } else {
    t.data = Float32Array.from(t.floats);
  }
  return t;
}

module.exports = { encode, decode };
