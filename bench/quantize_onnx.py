#!/usr/bin/python3
"""Post-training quantization of FP32 ONNX models into ONNX Runtime's QDQ, QOperator and dynamic forms.

Users bring files made by ORT's quantizer; these are the same three kinds, made here so gpuhive
can be tested on them:

- qdq: QuantizeLinear/DequantizeLinear pairs around float ops (quantize_static, QuantFormat.QDQ,
  per_channel=True): int8 per-channel weights, int32 biases, Q/DQ on the activations of Conv,
  MatMul, Gemm, Add, Mul, pools and Concat;
- qoperator: QLinearConv, QLinearMatMul and the com.microsoft QLinearAdd / QLinearMul /
  QLinearGlobalAveragePool, with QuantizeLinear / DequantizeLinear only where float and quantized
  ops meet (quantize_static, QuantFormat.QOperator);
- dynamic: DynamicQuantizeLinear on the activation, ConvInteger / MatMulInteger, Cast, Mul by the
  scales, Add of the bias (quantize_dynamic).

Choices that follow ORT: with uint8 activations a Relu after a quantized Conv / MatMul / Gemm /
Add is dropped and its range given to the producer's output (the quantized value saturates at the
zero point); MaxPool (and Flatten in QOperator form) reuse their input's parameters; a bias whose
int32 scale x_scale * w_scale would overflow gets a larger weight scale. Own choices: Gemm becomes
MatMul + Add in the QOperator and dynamic forms (QLinearMatMul / MatMulInteger, float bias);
Add / Mul feeding a Softmax stay float (an attention mask's -10000 would take their whole range);
only tensors that shape inference calls float32 are quantized.

Static forms are calibrated by running the FP32 model on ONNX Runtime (onnxruntime-node, through
bench/ort_tensor_ranges.js) over structured inputs from bench/quant_inputs.py. Written from the
ONNX operator specifications and the published description of ORT's formats; debian's python3-onnx
and numpy only.

    /usr/bin/python3 bench/quantize_onnx.py models/generated/resnet50.onnx /tmp/resnet50_qdq.onnx \\
        --format qdq [--activation-type uint8|int8] [--weight-type int8|uint8] \\
        [--calibration-method minmax|percentile] [--calibration-count 16] [--per-channel]
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from quant_formats import Graph, attr  # noqa: E402  (beside this file)
import quant_formats  # noqa: E402
import quant_inputs  # noqa: E402

PERCENTILE = 99.999
HIST_BINS = 2048
NP_TYPES = {"uint8": np.uint8, "int8": np.int8}


def fold_identities(model):
    """torch.onnx writes Identity nodes over shared initializers (BatchNorm-folded biases):
    make their outputs initializers so every Conv weight and bias is a constant by name."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    outputs = {o.name for o in g.output}
    keep = []
    for n in g.node:
        if n.op_type == "Identity" and n.input[0] in inits and n.output[0] not in outputs:
            t = TensorProto()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
            g.initializer.append(t)
            inits[t.name] = t
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)


def split_gemms(model):
    """Gemm(A, B, C) with constant B and C, alpha = beta = 1 and no transA -> MatMul(A, B') + Add(C):
    QOperator and dynamic forms quantize MatMul (QLinearMatMul, MatMulInteger) and keep the bias Add
    in float. Runs before calibration, so the MatMul's own output gets a range."""
    g = Graph(model)
    nodes, new_inits = [], []
    for n in model.graph.node:
        b = g.const(n.input[1]) if n.op_type == "Gemm" and len(n.input) > 1 else None
        if (b is None or b.ndim != 2 or attr(n, "alpha", 1.0) != 1.0 or attr(n, "beta", 1.0) != 1.0
                or attr(n, "transA", 0)):
            nodes.append(n)
            continue
        weight = n.input[1] + "_matmul" if attr(n, "transB", 0) else n.input[1]
        if attr(n, "transB", 0):
            new_inits.append(numpy_helper.from_array(np.ascontiguousarray(b.T), weight))
        has_bias = len(n.input) > 2 and n.input[2]
        mm_out = n.output[0] + "_matmul" if has_bias else n.output[0]
        nodes.append(helper.make_node("MatMul", [n.input[0], weight], [mm_out], name=(n.name or mm_out) + "_MatMul"))
        if has_bias:
            nodes.append(helper.make_node("Add", [mm_out, n.input[2]], [n.output[0]], name=(n.name or mm_out) + "_Add"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(new_inits)


# ---- calibration -------------------------------------------------------------------------------

def _percentile_range(stats):
    hist = np.asarray(stats["hist"], np.float64)
    edges = np.linspace(-stats["range"], stats["range"], len(hist) + 1)
    cum = np.cumsum(hist)
    total = cum[-1]
    lo_i = int(np.searchsorted(cum, total * (1 - PERCENTILE / 100), side="left"))
    hi_i = int(np.searchsorted(cum, total * PERCENTILE / 100, side="left"))
    return max(edges[lo_i], stats["min"]), min(edges[hi_i + 1], stats["max"])


def calibrate(model, tensors, count, method, threads=1, seed=1000):
    """{tensor: (lo, hi)} for float tensors of `model`, from ONNX Runtime runs of the model with
    those tensors as extra graph outputs on `count` structured inputs (seed distinct from the
    checks' inputs). method: minmax or percentile (PERCENTILE of the values, each tail)."""
    g = Graph(model)
    feeds = quant_inputs.model_inputs(model, count, seed)
    ranges = {}
    for name in tensors:
        if name in feeds:
            a = feeds[name].astype(np.float64)
            ranges[name] = ((a.min(), a.max()) if method == "minmax"
                            else tuple(np.percentile(a, [100 - PERCENTILE, PERCENTILE])))
    observed = [t for t in tensors if t not in feeds and not g.is_const(t)]
    if not observed:
        return ranges
    aug = onnx.ModelProto()
    aug.CopyFrom(model)
    have = {o.name for o in aug.graph.output}
    aug.graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None)
                            for t in observed if t not in have)
    env = dict(os.environ)
    env["NODE_PATH"] = os.pathsep.join(p for p in (env.get("NODE_PATH"), os.path.join(HERE, "node_modules")) if p)
    with tempfile.TemporaryDirectory(prefix="quant_calib_") as tmp:
        path = os.path.join(tmp, "model.onnx")
        onnx.save(aug, path)
        dirs = []
        for i in range(count):
            d = os.path.join(tmp, f"sample_{i:03d}")
            os.makedirs(d)
            for name, a in feeds.items():
                with open(os.path.join(d, name + ".pb"), "wb") as f:
                    f.write(numpy_helper.from_array(a[i:i + 1], name).SerializeToString())
            dirs.append(d)
        out = os.path.join(tmp, "ranges.json")
        cmd = ["node", os.path.join(HERE, "ort_tensor_ranges.js"), path, out, "--threads", str(threads)]
        if method == "percentile":
            cmd += ["--bins", str(HIST_BINS)]
        r = subprocess.run(cmd + dirs, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("calibration run failed: " + r.stderr.strip()[-800:])
        with open(out) as f:
            stats = json.load(f)["tensors"]
    for t in observed:
        s = stats[t]
        ranges[t] = (s["min"], s["max"]) if method == "minmax" else _percentile_range(s)
    return ranges


# ---- driver ------------------------------------------------------------------------------------

def quantize(model, fmt, activation_type="uint8", weight_type="int8", method="minmax", count=16,
             per_channel=None, threads=1, log=lambda s: None):
    """Quantizes an FP32 onnx.ModelProto in place into `fmt` (qdq, qoperator, dynamic) and returns it."""
    act, wt = NP_TYPES[activation_type], NP_TYPES[weight_type]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < (11 if fmt == "dynamic" else 13):
        # Per-axis DequantizeLinear is opset 13, DynamicQuantizeLinear opset 11.
        raise ValueError(f"opset {opset} is too old for the {fmt} form; export with opset 13 or later")
    fold_identities(model)
    if fmt in ("qoperator", "dynamic"):
        split_gemms(model)
    if fmt == "dynamic":
        # DynamicQuantizeLinear produces uint8 only; ConvInteger wants a scalar weight zero point,
        # so uint8 weights are per tensor; int8 weights may be per channel (zero point 0).
        quant_formats.write_dynamic(Graph(model), wt, bool(per_channel) and wt == np.int8)
    else:
        plan = quant_formats.plan_static(Graph(model), fmt, act)
        t0 = time.time()
        ranges = calibrate(model, plan.calibrated, count, method, threads)
        log(f"calibrated {len(ranges)} tensors on {count} inputs ({method}) in {time.time() - t0:.1f} s")
        plan.apply_fusions(model)
        params = {t: quant_formats.activation_params(*ranges[t], act) for t in plan.calibrated}
        params.update({t: params[src] for t, src in plan.shared.items()})
        writer = quant_formats.write_qdq if fmt == "qdq" else quant_formats.write_qoperator
        writer(Graph(model), plan, params, wt, per_channel is not False)
    # Float weights replaced by quantized ones go, with any graph inputs that declared them;
    # value_info, which describes the float graph, is dropped (runtimes infer shapes anyway).
    del model.graph.value_info[:]
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    dropped = {t.name for t in model.graph.initializer if t.name not in used}
    keep = [t for t in model.graph.initializer if t.name not in dropped]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    graph_inputs = [vi for vi in model.graph.input if vi.name not in dropped]
    del model.graph.input[:]
    model.graph.input.extend(graph_inputs)
    if any(n.domain == "com.microsoft" for n in model.graph.node):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--format", choices=("qdq", "qoperator", "dynamic"), required=True)
    ap.add_argument("--activation-type", choices=("uint8", "int8"), default="uint8")
    ap.add_argument("--weight-type", choices=("int8", "uint8"), default="int8")
    ap.add_argument("--calibration-method", choices=("minmax", "percentile"), default="minmax")
    ap.add_argument("--calibration-count", type=int, default=16)
    ap.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=None,
                    help="per-channel weights (default: on for qdq/qoperator, off for dynamic)")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads for calibration")
    args = ap.parse_args()
    if args.format == "dynamic" and args.activation_type != "uint8":
        ap.error("dynamic quantization has uint8 activations (DynamicQuantizeLinear)")
    model = onnx.load(args.src)
    quantize(model, args.format, args.activation_type, args.weight_type, args.calibration_method,
             args.calibration_count, args.per_channel, args.threads, log=lambda s: print(s, file=sys.stderr))
    onnx.checker.check_model(model)
    onnx.save(model, args.dst)
    counts = collections.Counter(n.op_type for n in model.graph.node)
    print(f"{args.dst}: {args.format} model of {args.src}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
          file=sys.stderr)


if __name__ == "__main__":
    main()
