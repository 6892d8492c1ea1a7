#!/usr/bin/env python3
"""PyTorch peer for the GPU run: the same architectures and the same seeded weights that
bench/export_models.py exports for gpuhive, timed on the same GPU in the same call.

Writes one JSON object per line to --out as each figure exists (a run stopped at its limit keeps
what it measured). Per model, batch and mode:
  eager fp32 (TF32 off), eager tf32, eager fp16 (weights and float inputs in half), with the inputs
  already on the device ("device_ms"); fp32 also end to end ("e2e_ms": pageable host input copied
  in, output copied back, as gpuhive's executor is timed); then torch.compile (fp16, default mode)
  until --compile-deadline-s is spent, batch 64 first.
Timing: CUDA events, 5 warm-ups, median of --iters; cudnn.benchmark on (PyTorch's best setting).

    python3 bench/gpu/torch_peer.py --out peer.jsonl [--models resnet50,...] [--batches 64,8,1]
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import export_models  # noqa: E402  (same architectures, same seed)


def write(f, row):
    f.write(json.dumps(row) + "\n")
    f.flush()
    print(json.dumps(row), flush=True)


def time_ms(fn, iters):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def make_inputs(example, names, batch):
    out = []
    for x, name in zip(example, names):
        shape = list(x.shape)
        shape[0] = batch
        if x.dtype.is_floating_point:
            out.append(torch.randn(shape))
        elif "token_type" in name:
            out.append(torch.randint(0, 2, shape))
        elif "mask" in name:
            out.append(torch.ones(shape, dtype=torch.long))
        else:
            out.append(torch.randint(0, 1000, shape))
    return out


def build(name):
    torch.manual_seed(0)
    module, example, in_names, _, _ = export_models.spec(name)
    return module.eval(), example, in_names


def first_tensor(y):
    return y[0] if isinstance(y, (tuple, list)) else y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default="resnet50,mobilenet_v3_large,efficientnet_b0,bert_base")
    ap.add_argument("--batches", default="64,8,1")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--compile-deadline-s", type=float, default=150)
    ap.add_argument("--skip-compile", action="store_true")
    ap.add_argument("--compile-only", action="store_true")
    a = ap.parse_args()
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    models = [m for m in a.models.split(",") if m]
    batches = [int(b) for b in a.batches.split(",") if b]
    with open(a.out, "a") as f:
        write(f, {"kind": "torch", "version": torch.__version__, "cuda": torch.version.cuda,
                  "cudnn": torch.backends.cudnn.version(), "device": torch.cuda.get_device_name(0)})
        for name in ([] if a.compile_only else models):
            module, example, in_names = build(name)
            module = module.to(dev)
            with torch.inference_mode():
                for batch in batches:
                    host = make_inputs(example, in_names, batch)
                    for mode in ("fp32", "tf32", "fp16"):
                        torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
                        torch.backends.cudnn.allow_tf32 = mode == "tf32"
                        m = module.half() if mode == "fp16" else module.float()
                        xs = [x.to(dev) for x in host]
                        if mode == "fp16":
                            xs = [x.half() if x.is_floating_point() else x for x in xs]
                        row = {"kind": "eager", "model": name, "batch": batch, "mode": mode}
                        try:
                            row["device_ms"] = time_ms(lambda: m(*xs), a.iters)
                            if mode == "fp32":
                                row["e2e_ms"] = time_ms(lambda: first_tensor(m(*[x.to(dev) for x in host])).cpu(), a.iters)
                            row["items_per_s"] = batch * 1000.0 / row["device_ms"]
                        except Exception as e:  # noqa: BLE001  (report and go on)
                            row["error"] = repr(e)[:500]
                        write(f, row)
            module.float()
            del module
            torch.cuda.empty_cache()
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        if a.skip_compile:
            return
        deadline = time.time() + a.compile_deadline_s
        torch.backends.cudnn.benchmark = True
        for batch in batches:  # batch 64 first: the throughput figure matters most
            for name in models:
                if time.time() > deadline:
                    write(f, {"kind": "compile", "model": name, "batch": batch, "error": "deadline"})
                    continue
                module, example, in_names = build(name)
                m = module.to(dev).half()
                xs = [x.to(dev) for x in make_inputs(example, in_names, batch)]
                xs = [x.half() if x.is_floating_point() else x for x in xs]
                row = {"kind": "compile", "model": name, "batch": batch, "mode": "fp16"}
                try:
                    t0 = time.time()
                    cm = torch.compile(m, dynamic=False)
                    with torch.inference_mode():
                        cm(*xs)
                        torch.cuda.synchronize()
                        row["compile_s"] = time.time() - t0
                        row["device_ms"] = time_ms(lambda: cm(*xs), a.iters)
                    row["items_per_s"] = batch * 1000.0 / row["device_ms"]
                except Exception as e:  # noqa: BLE001
                    row["error"] = repr(e)[:500]
                write(f, row)
                del m, module
                torch._dynamo.reset()


if __name__ == "__main__":
    main()
