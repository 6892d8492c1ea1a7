#!/usr/bin/python3
"""Trains the benchmark image classifiers on a small shapes task, so INT8 can be judged on weights
that were trained rather than drawn at random.

Why: bench/export_models.py's models have seeded random weights. Their two best logits are
typically a few percent of a logit standard deviation apart, so any 8-bit scheme (gpuhive's and ONNX
Runtime's alike) flips about a tenth of the top-1 answers (docs/benchmarks.md, "Top-1 agreement
near 90 %"). Trained classifiers separate their classes; pretrained ImageNet weights cannot be
downloaded here, so this trains the same architectures (same initialisation as the benchmark
models: torch.manual_seed(0)) on bench/quant_inputs.py's images, the inputs the precision benchmark
calibrates and validates on.

The task: 1-3 shapes of one kind (circle, rectangle, triangle or stripe patch, drawn as
quant_inputs draws them) over a gradient; the label is the kind (4 classes of the 1000-way head).
The precision benchmark then validates on quant_inputs.images (2-6 shapes of mixed kinds), which
the model has not seen. Training images use their own seeds, disjoint from the calibration (0),
timing (99) and validation (100 + k) samples. After training, BatchNorm's running statistics are
recomputed over fresh batches, and the script reports held-out accuracy and, on the validation
images, the classes answered and the top-1/top-2 logit gap; then it exports ONNX opset 17 with a
dynamic batch like export_models.py, to OUT/NAME.onnx (and NAME.train.json).

    /usr/bin/python3 bench/train_shapes.py --out models/trained [--models resnet50,mobilenet_v3_large]
        [--steps 200] [--batch 16] [--threads 2]

CPU only; on a 2-core machine ResNet-50 takes about 3-4 s per step of 16 images at 224x224.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_models  # noqa: E402  (beside this file)
import quant_inputs  # noqa: E402

TRAIN_SEED = 7_000_003  # quant_inputs draws image i of seed s from default_rng([s, i]); these are [TRAIN_SEED, step, i]
VALIDATION_SEED = 100  # bench/precision_bench.py's first validation chunk


def single_kind_image(rng, size, yy, xx):
    """A training image: 1-3 shapes of one kind (the label) over a gradient, drawn and normalised
    as quant_inputs draws its images."""
    kind = int(rng.integers(0, len(quant_inputs.KINDS)))
    img = quant_inputs._gradient(rng, size, size)
    for _ in range(rng.integers(1, 4)):
        mask = quant_inputs._shape_mask(rng, quant_inputs.KINDS[kind], size, size, yy, xx)
        img = np.where(mask[None], rng.uniform(0, 255, 3)[:, None, None], img)
    img = np.clip(img, 0, 255) / 255.0
    mean, std = quant_inputs.IMAGENET_MEAN[:, None, None], quant_inputs.IMAGENET_STD[:, None, None]
    return ((img - mean) / std).astype(np.float32), kind


def batch_of(seed_parts, count, size, yy, xx):
    x = np.empty((count, 3, size, size), np.float32)
    y = np.empty(count, np.int64)
    for i in range(count):
        x[i], y[i] = single_kind_image(np.random.default_rng(seed_parts + [i]), size, yy, xx)
    return torch.from_numpy(x), torch.from_numpy(y)


def recalibrate_batch_norm(module, size, yy, xx, batches=8, count=16):
    """Running BatchNorm statistics as a plain average over fresh training batches (short runs
    leave the exponential averages behind the weights), computed without gradients."""
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    module.train()
    with torch.no_grad():
        for b in range(batches):
            module(batch_of([TRAIN_SEED, 1_000_000, b], count, size, yy, xx)[0])


def evaluate(module, count, size, yy, xx, chunk=50):
    """Accuracy on `count` held-out single-kind images, and on `count` rows of the precision
    benchmark's validation images (chunk k: seed VALIDATION_SEED + k; mixed kinds, so no label):
    how many classes the model answers with, and the top-1/top-2 logit gap over the row's logit
    standard deviation (random weights: a few hundredths at the median)."""
    module.eval()
    correct, gaps, answers = 0, [], set()
    with torch.no_grad():
        for k in range(math.ceil(count / chunk)):
            rows = min(chunk, count - k * chunk)
            x, y = batch_of([TRAIN_SEED, 2_000_000, k], rows, size, yy, xx)
            correct += int((module(x).argmax(1) == y).sum())
            logits = module(torch.from_numpy(quant_inputs.images(rows, size, VALIDATION_SEED + k)))
            answers |= set(logits.argmax(1).tolist())
            top2 = logits.topk(2, dim=1).values
            gaps += ((top2[:, 0] - top2[:, 1]) / logits.std(dim=1)).tolist()
    gaps = np.array(gaps)
    return {"rows": count, "accuracy": correct / count, "validation_classes": sorted(answers),
            "gap_p10": float(np.percentile(gaps, 10)), "gap_p50": float(np.percentile(gaps, 50))}


def train(name, args):
    torch.manual_seed(0)  # the benchmark models' initialisation
    module, inputs, in_names, out_names, axes = export_models.spec(name)
    size = args.size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    before = evaluate(module, args.eval_count, size, yy, xx)
    print(f"{name}: before training {json.dumps(before)}", flush=True)
    opt = torch.optim.AdamW(module.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.15)
    t0 = time.time()
    running = None
    for step in range(args.steps):
        module.train()
        x, y = batch_of([TRAIN_SEED, step], args.batch, size, yy, xx)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(x), y)
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        if step % 10 == 0 or step == args.steps - 1:
            print(f"{name}: step {step + 1}/{args.steps} loss {running:.3f} ({time.time() - t0:.0f} s)", flush=True)
    recalibrate_batch_norm(module, size, yy, xx)
    after = evaluate(module, args.eval_count, size, yy, xx)
    print(f"{name}: after {args.steps} steps of {args.batch} {json.dumps(after)}", flush=True)
    path = os.path.join(args.out, name + ".onnx")
    export_models.export_module(module, inputs, in_names, out_names, axes, path)
    report = {"model": name, "steps": args.steps, "batch": args.batch, "lr": args.lr, "size": size,
              "train_seconds": round(time.time() - t0), "before": before, "after": after,
              "torch": torch.__version__}
    with open(os.path.join(args.out, name + ".train.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="models/trained")
    ap.add_argument("--models", default="resnet50,mobilenet_v3_large")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--eval-count", type=int, default=200, help="validation rows for the before/after report")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    for name in [n for n in args.models.split(",") if n]:
        if name not in ("resnet50", "mobilenet_v3_large", "efficientnet_b0"):
            sys.exit(f"{name}: not an image classifier of export_models.py")
        train(name, args)


if __name__ == "__main__":
    main()
