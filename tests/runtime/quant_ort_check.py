#!/usr/bin/python3
"""Quantized ONNX models on gpuhive vs ONNX Runtime: runs the same inputs in `gpuhive run` and in
ONNX Runtime (onnxruntime-node through ort_pb_run.js, from bench/node_modules or NODE_PATH) and
compares the outputs, for

- every small model of make_quant_models.py (one quantized operator form each), and
- resnet50 and mobilenet_v3_large from --models, quantized by bench/quantize_onnx.py into the qdq,
  qoperator and dynamic forms (calibrated on 16 structured inputs from bench/quant_inputs.py, run
  on 8 others as one batch); a model that is not exported is skipped.

Tolerances, per output:
- uint8 / int8 outputs: max |difference| <= 1 (one quantization step);
- int32 outputs (ConvInteger, MatMulInteger): exact;
- float outputs of a DequantizeLinear with a constant scale s (or of a constant bias Add after
  one): max |difference| <= 2 s for the small models. For the real models 4 s and relative
  L2 <= 5e-2: ONNX Runtime's own two ways of running one QDQ file (its QDQ fusion into integer
  kernels, or DequantizeLinear -> float op -> QuantizeLinear with graph optimizations disabled)
  differ by up to 3 steps and 3% on these models, because a one-step rounding difference early
  in a 50-layer net propagates;
- other float outputs: relative L2 <= 1e-2;
- classifiers: on every input, the class gpuhive ranks first is one ORT ranks first up to ties at
  the output's resolution (within 2 steps of ORT's best; 1% of the logit range where no scale is
  known). Randomly initialised nets give near-tied logits, so exact argmax equality would fail on
  rounding alone; the line also shows how many argmaxes are identical.

One line per case and output with the measured error and PASS or FAIL; exit 1 on any failure, 77
(skipped) without node and onnxruntime-node.

    quant_ort_check.py --gpuhive build/bin/gpuhive [--models models/generated] [--only NAME[,NAME]]
                       [--keep DIR]
--only takes case names (qdq_conv_u8_bias, resnet50_qoperator) or model names (resnet50: its
three forms); --keep writes the cases (model.onnx, inputs, both outputs) under DIR instead of a
temporary directory, to rerun one by hand.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, HERE)
import make_quant_models  # noqa: E402
import quant_inputs  # noqa: E402
import quantize_onnx  # noqa: E402

MODELS = ("resnet50", "mobilenet_v3_large")
FORMATS = ("qdq", "qoperator", "dynamic")
CALIBRATION_COUNT = 16
CHECK_COUNT = 8
INPUT_SEED = 7  # calibration uses quantize_onnx's own seed: the checked inputs are unseen


class Tolerance:
    def __init__(self, steps, rel_l2, classifier):
        self.steps, self.rel_l2, self.classifier = steps, rel_l2, classifier


SYNTHETIC = Tolerance(steps=2, rel_l2=1e-2, classifier=False)
REAL_MODEL = Tolerance(steps=4, rel_l2=5e-2, classifier=True)
REAL_MODEL_NO_SCALE = Tolerance(steps=None, rel_l2=1e-2, classifier=True)


def output_scale(model, name):
    """The scalar scale of the DequantizeLinear that produces graph output `name`, looking through
    the float bias Add of a QOperator / dynamic Gemm and through reshapes (a constant offset does
    not change the step); None where there is none."""
    producer = {o: n for n in model.graph.node for o in n.output}
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    n = producer.get(name)
    while n is not None and n.op_type in ("Add", "Flatten", "Reshape", "Identity"):
        if n.op_type == "Add":
            act = [i for i in n.input if i not in consts]
            if len(act) != 1:
                return None
            n = producer.get(act[0])
        else:
            n = producer.get(n.input[0])
    if n is None or n.op_type != "DequantizeLinear" or n.input[1] not in consts:
        return None
    s = consts[n.input[1]]
    return float(s) if s.size == 1 else None


def compare(ours, ref, scale, tol):
    """(passed, description) for one output."""
    if ours.dtype != ref.dtype:
        return False, f"dtype {ours.dtype}, ORT {ref.dtype}"
    if ours.shape != ref.shape:
        return False, f"shape {list(ours.shape)}, ORT {list(ref.shape)}"
    a, b = ours.astype(np.float64), ref.astype(np.float64)
    diff = float(np.abs(a - b).max()) if a.size else 0.0
    if ref.dtype in (np.uint8, np.int8):
        return diff <= 1, f"max |diff| {diff:g} (limit 1)"
    if ref.dtype == np.int32:
        return diff == 0, f"max |diff| {diff:g} (exact)"
    if not np.all(np.isfinite(a)):
        return False, "non-finite values"
    rel = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
    ok = True
    if scale is not None and tol.steps is not None:
        text = f"max |diff| {diff:.3g} = {diff / scale:.2f} steps of {scale:.3g} (limit {tol.steps}), rel L2 {rel:.2e}"
        ok = diff <= tol.steps * scale * (1 + 1e-5)
        if tol.classifier:
            ok = ok and rel <= tol.rel_l2
            text += f" (limit {tol.rel_l2:g})"
    else:
        text = f"rel L2 {rel:.2e} (limit {tol.rel_l2:g}), max |diff| {diff:.3g}"
        ok = rel <= tol.rel_l2
    if tol.classifier and a.ndim == 2:
        rows_a, rows_b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
        slack = 2 * scale if scale is not None else 0.01 * (rows_b.max(1) - rows_b.min(1))
        mine = rows_a.argmax(1)
        near_best = rows_b[np.arange(len(mine)), mine] >= rows_b.max(1) - slack
        same = int((mine == rows_b.argmax(1)).sum())
        text += f", top-1 within ties {int(near_best.sum())}/{len(mine)} (identical {same}/{len(mine)})"
        ok = ok and bool(near_best.all())
    return ok, text


def write_inputs(case_dir, feeds):
    for name, a in feeds.items():
        with open(os.path.join(case_dir, f"input_{name}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, name).SerializeToString())


def selected(only, *names):
    return not only or any(n in only for n in names)


def build_cases(work, models_dir, only, log):
    """[(case name, case dir, tolerance)] written under `work`."""
    cases = []
    for c in make_quant_models.cases():
        if selected(only, c.name):
            make_quant_models.write_case(c, os.path.join(work, c.name))
            cases.append((c.name, os.path.join(work, c.name), SYNTHETIC))
    for name in MODELS:
        forms = [f for f in FORMATS if selected(only, name, f"{name}_{f}")]
        if not forms:
            continue
        src = os.path.join(models_dir, name + ".onnx")
        if not os.path.exists(src):
            log(f"{name}: not exported (make models), skipped")
            continue
        fp32 = onnx.load(src)
        feeds = quant_inputs.model_inputs(fp32, CHECK_COUNT, INPUT_SEED)
        for fmt in forms:
            case = f"{name}_{fmt}"
            d = os.path.join(work, case)
            os.makedirs(d, exist_ok=True)
            t0 = time.time()
            m = onnx.ModelProto()
            m.CopyFrom(fp32)
            quantize_onnx.quantize(m, fmt, count=CALIBRATION_COUNT)
            onnx.save(m, os.path.join(d, "model.onnx"))
            write_inputs(d, feeds)
            log(f"{case}: quantized in {time.time() - t0:.1f} s")
            tol = REAL_MODEL if fmt != "dynamic" else REAL_MODEL_NO_SCALE
            cases.append((case, d, tol))
    return cases


def run_gpuhive(binary, case_dir):
    """None, or the reason `gpuhive run` failed (its last error line)."""
    args = [binary, "run", os.path.join(case_dir, "model.onnx"), "-o", os.path.join(case_dir, "gpuhive"), "-t", "1"]
    for f in sorted(os.listdir(case_dir)):
        if f.startswith("input_") and f.endswith(".pb"):
            args += ["-i", f"{f[len('input_'):-3]}={os.path.join(case_dir, f)}"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode == 0:
        return None
    lines = [ln for ln in (r.stderr + r.stdout).strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else f"exit status {r.returncode}")[:400]


def check_case(binary, name, case_dir, tol):
    """[(passed, line)] for one case."""
    err = os.path.join(case_dir, "ort_output_error.txt")
    if os.path.exists(err):
        with open(err) as f:
            return [(False, f"FAIL {name}: ONNX Runtime: {f.read().strip()[:400]}")]
    failure = run_gpuhive(binary, case_dir)
    if failure is not None:
        return [(False, f"FAIL {name}: gpuhive: {failure}")]
    model = onnx.load(os.path.join(case_dir, "model.onnx"), load_external_data=False)
    results = []
    for i, out in enumerate(model.graph.output):
        ours_path = os.path.join(case_dir, "gpuhive", f"output_{i}.pb")
        if not os.path.exists(ours_path):
            results.append((False, f"FAIL {name} {out.name}: gpuhive wrote no output_{i}.pb"))
            continue
        ours = numpy_helper.to_array(onnx.load_tensor(ours_path))
        ref = numpy_helper.to_array(onnx.load_tensor(os.path.join(case_dir, f"ort_output_{i}.pb")))
        ok, text = compare(ours, ref, output_scale(model, out.name), tol)
        results.append((ok, f"{'PASS' if ok else 'FAIL'} {name} {out.name} ({ref.dtype}): {text}"))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpuhive", required=True)
    ap.add_argument("--models", default=os.path.join(ROOT, "models", "generated"))
    ap.add_argument("--only", default="")
    ap.add_argument("--keep", default="", help="write the cases here instead of a temporary directory")
    args = ap.parse_args()
    only = {s for s in args.only.split(",") if s}
    env = dict(os.environ)
    node_path = (env.get("NODE_PATH", ""), os.path.join(ROOT, "bench", "node_modules"))
    env["NODE_PATH"] = os.pathsep.join(p for p in node_path if p)
    os.environ["NODE_PATH"] = env["NODE_PATH"]  # for quantize_onnx's calibration runs
    probe = subprocess.run(["node", "-e", "require('onnxruntime-node')"], env=env, capture_output=True)
    if probe.returncode != 0:
        print("skipped: node or onnxruntime-node missing (scripts/install-deps.sh --with-bench)")
        return 77
    work = args.keep or tempfile.mkdtemp(prefix="quant_ort_check_")
    if args.keep:
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
    try:
        cases = build_cases(work, args.models, only, print)
        if not cases:
            print("no case selected")
            return 77
        subprocess.run(["node", os.path.join(HERE, "ort_pb_run.js")] + [d for _, d, _ in cases], env=env, check=True)
        failed = []
        for name, case_dir, tol in cases:
            for ok, line in check_case(args.gpuhive, name, case_dir, tol):
                print(line, flush=True)
                if not ok:
                    failed.append(name)
        cases_failed = sorted(set(failed))
        print(f"{len(cases) - len(cases_failed)}/{len(cases)} cases passed" +
              (f"; failed: {', '.join(cases_failed)}" if cases_failed else ""))
        return 1 if cases_failed else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
