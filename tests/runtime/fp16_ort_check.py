#!/usr/bin/python3
"""FP16 ONNX models on gpuhive vs ONNX Runtime: converts benchmark FP32 models to FP16 with
bench/convert_fp16.py, runs each on the same float16 input in `gpuhive run` and in ONNX Runtime
(tests/runtime/ort_run.js, onnxruntime-node from bench/node_modules or NODE_PATH), and requires the
outputs to be float16 and to agree within FP16 tolerance: relative L2 <= 1e-2 and the same top-1
class. Exit 77 (skipped) when a model or ORT is missing. Both compute in float32 here: gpuhive
converts FP16 models to float32 at load, and ONNX Runtime's CPU provider has no float16 kernels for
most operators, so it inserts casts to float32 around them; the outputs differ only where the two
round differently (ResNet-50: ~1e-6; MobileNetV3 may agree exactly).

    fp16_ort_check.py --gpuhive build/bin/gpuhive [--models models/generated] [--only resnet50]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = ("mobilenet_v3_large", "resnet50")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpuhive", required=True)
    ap.add_argument("--models", default=os.path.join(ROOT, "models", "generated"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    env = dict(os.environ)
    node_path = [p for p in (env.get("NODE_PATH", ""), os.path.join(ROOT, "bench", "node_modules")) if p]
    env["NODE_PATH"] = os.pathsep.join(node_path)
    probe = subprocess.run(["node", "-e", "require('onnxruntime-node')"], env=env, capture_output=True)
    if probe.returncode != 0:
        print("skipped: onnxruntime-node not installed (scripts/install-deps.sh --with-bench)")
        return 77
    failures, ran = [], 0
    for name in MODELS:
        if args.only and name != args.only:
            continue
        src = os.path.join(args.models, name + ".onnx")
        if not os.path.exists(src):
            print(f"{name}: not exported (make models), skipped")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            fp16 = os.path.join(tmp, "model.onnx")
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "convert_fp16.py"), src, fp16], check=True,
                           capture_output=True)
            m = onnx.load(fp16, load_external_data=False)
            inp = m.graph.input[0]
            dims = [d.dim_value if d.dim_value > 0 else 1 for d in inp.type.tensor_type.shape.dim]
            x = np.random.default_rng(17).uniform(-1, 1, dims).astype(np.float16)
            pb = os.path.join(tmp, "x.pb")
            with open(pb, "wb") as f:
                f.write(numpy_helper.from_array(x, inp.name).SerializeToString())
            x.tofile(os.path.join(tmp, "x.raw"))
            subprocess.run([args.gpuhive, "run", fp16, "-i", f"{inp.name}={pb}", "-o", tmp, "-t", "1"], check=True,
                           capture_output=True)
            ort = subprocess.run(["node", os.path.join(HERE, "ort_run.js"), fp16, inp.name, "float16",
                                  "x".join(map(str, dims)), os.path.join(tmp, "x.raw"), os.path.join(tmp, "ort_")],
                                 env=env, capture_output=True, text=True)
            if ort.returncode != 0:
                failures.append(f"{name}: ORT failed: {ort.stderr.strip()[-400:]}")
                continue
            for i, out in enumerate(m.graph.output):
                ours_t = onnx.load_tensor(os.path.join(tmp, f"output_{i}.pb"))
                ours = numpy_helper.to_array(ours_t)
                ref = np.fromfile(os.path.join(tmp, f"ort_{i}.raw"), dtype=np.float16).reshape(ours.shape)
                if ours.dtype != np.float16:
                    failures.append(f"{name} output {i}: dtype {ours.dtype}, want float16")
                    continue
                a, b = ours.astype(np.float64), ref.astype(np.float64)
                rel = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12)
                top1 = np.argmax(a.reshape(a.shape[0], -1), 1).tolist() == np.argmax(b.reshape(b.shape[0], -1), 1).tolist()
                print(f"{name} output {i} {out.name}: relative L2 {rel:.2e}, max |diff| {np.abs(a - b).max():.3e}, "
                      f"top-1 {'same' if top1 else 'DIFFERENT'}")
                if rel > 1e-2 or not top1:
                    failures.append(f"{name} output {i}: relative L2 {rel:.2e}, top-1 same: {top1}")
            ran += 1
    for f in failures:
        print("FAIL", f)
    if ran == 0 and not failures:
        return 77
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
