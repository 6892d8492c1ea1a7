#!/usr/bin/env python3
"""Executor guard: deterministic checks that catch CPU performance cliffs without timing anything.

For every benchmark model (models/generated/*.onnx) and every built-in repository model
(models/repository/*/1/model.onnx), at batch 1 and 8, `gpuhive perf` prepares and runs the model
once with ONEDNN_VERBOSE=1, and the guard reads the implementation name of every oneDNN primitive
that executed (oneDNN prints the primitive descriptor's impl_info_str for each execution):
  1. no primitive may run a reference or otherwise unoptimized implementation ("ref:any",
     "simple:any", "gemm:ref", ...). Checked at the machine's own ISA and again with oneDNN capped at
     AVX2 (ONEDNN_MAX_CPU_ISA), the common floor of users' CPUs, where other kernels get picked;
  2. no kernel may take one of gpuhive's own slow paths (SLOW_KERNELS: the generic N-d Resize, the
     RNN per-step loops), read from the implementation each kernel reports (`gpuhive perf --json
     --profile`: "implementations");
  3. the planned activation arena, the naive sum of intermediates and the workspace of each model
     and batch equal the committed expectations (tests/executor_guard/expected.json, at the AVX2 cap
     so the figures do not depend on the CI machine's ISA). A change that moves them either updates
     the file (--update) in the same commit, saying why, or is a regression;
  4. gpuhive's INT8 precision (INT8_MODELS, batch 1, calibrated on two bench/quant_inputs.py
     images): checks 1 and 2 on the int8 plan (int8 weight packing with its compensation, run once
     at Prepare, is not a per-run primitive and is not counted), every quantized convolution on the
     int8 kernels (none on the "dequantized:" float path), and the int8 plan's step count, arena and
     workspace against expected.json (key "MODEL@b1:int8"): a QuantizeLinear or a layout reorder
     between the int8 convolutions coming back shows as more steps (MobileNetV3-Large ran 2.4x
     slower with them);
  5. FP32 3x3 convolutions on oneDNN's Winograd kernels (KernelOptions::conv_algorithm "auto"):
     natively on an AVX-512 CPU, WINOGRAD_STEPS models run exactly that many convolution steps on
     a Winograd implementation at every batch (ResNet-50: its three 56x56 layers, whose transformed
     copies add 0.11 MiB each; more of them means the rule spread to layers whose transformed
     weights cost more memory than they save time, as its 28x28 and 14x14 layers' 13.8 MiB did);
  6. no reorder runs on an activation whose bytes already are in the target's order (an [N,C,1,1]
     value between blocked, channels-last and plain layouts with one image or C a multiple of the
     block; SameBytesAsPlain in include/gpuhive/dtype.h): the plan reads such a value as a view.
     EfficientNet-B0 ran 34 of them per image, two per squeeze-excitation block. FP32 plans only:
     INT8 calibration copies every intermediate value out of its plan once per sample.
  7. natively on an AVX-512 CPU, the kernels gpuhive vectorizes itself take their AVX-512 paths
     (REQUIRED_KERNELS: "operator:implementation" pattern and step count per model and batch): the
     LSTM on gpuhive's own kernel, at batch 1 its hidden units split across the two threads, at batch
     8 its rows (the audio model ran 2x slower at batch 1 on oneDNN's primitive, which keeps batch 1
     on one thread, and 10-14 % slower at batch 8; src/kernels/cpu/loops/lstm_avx512.h), and
     BERT's attention softmax rows (3.5 of 93 ms at batch 1 compiled for baseline x86-64) and its
     LayerNormalization rows.
  8. resident memory (RESIDENT_LIMITS, batch 1, every ISA): `gpuhive perf`'s peak RSS at most that
     many times the weights and arena the model holds (ResNet-50 1.27x and BERT-base 1.26x on the
     benchmark machine, the ~26 MiB process base included; weights held twice, as before issue 17,
     read ~2x).

    python3 tests/executor_guard/executor_guard.py --gpuhive build/bin/gpuhive [--update] [--only resnet50]
Exit status 0 when every check passes; the report lists every finding.
"""
import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXPECTED = os.path.join(HERE, "expected.json")
BATCHES = (1, 8)
# Models whose other dynamic dims need a size: name -> per-input dims after the batch.
OTHER_DIMS = {"input_ids": "128", "attention_mask": "128", "token_type_ids": "128"}
UNOPTIMIZED = re.compile(r"(^|:)(ref|simple)(:|$)|^gemm:ref")
# At the AVX2 cap oneDNN 2.6 has no JIT LSTM: its "ref" RNN is gemm-based (the matrix work on
# its JIT sgemm) and beats gpuhive's per-step loops 2-2.6x (src/kernels/cpu/onednn/rnn_onednn.cc),
# so there it is the expected choice. Natively it is still a finding.
AVX2_ONLY_CHOICE = {("rnn", "ref")}
# Natively on AVX-512 (check 7): model -> batch -> {implementation pattern: steps that must match}.
REQUIRED_KERNELS = {
    "audio_lstm": {1: {r"^LSTM:gpuhive:lstm_avx512 \[hidden units split 2 ways\]$": 2},
                   8: {r"^LSTM:gpuhive:lstm_avx512 \[rows split 2 ways\]$": 2}},
    "bert_base": {1: {r"^gpuhive\.Attention:.* / softmax:avx512 / ": 12, r"^LayerNormalization:gpuhive:rows_avx512$": 25},
                  8: {r"^gpuhive\.Attention:.* / softmax:avx512 / ": 12, r"^LayerNormalization:gpuhive:rows_avx512$": 25}},
}
# gpuhive's own slow paths, by the "operator:implementation" that `gpuhive perf --json --profile`
# reports from Kernel::implementation(): the generic N-d Resize (LRASPP's upsampling took 65 % of its
# run on it) and the LSTM/GRU per-step loops (the audio model ran 4.5-9x behind ORT on them).
# oneDNN's own reference implementations are caught by check 1.
SLOW_KERNELS = re.compile(r"^Resize:generic$|:gpuhive:rnn_loops$")
INT8_MODELS = ("resnet50", "mobilenet_v3_large", "efficientnet_b0")
# Check 8: peak RSS / (weights + arena) of `gpuhive perf` at batch 1.
RESIDENT_LIMITS = {"resnet50": 1.35, "bert_base": 1.35}
# Check 5: Winograd convolution steps per plan, natively on AVX-512 (below it oneDNN has none).
WINOGRAD_STEPS = {"resnet50": 3, "repository/text_detector": 4}
# oneDNN marks int8 weights packed with their s8s8 / zero-point compensation (":f8", "zpm"); such a
# reorder runs once when a plan is made.
WEIGHT_PACKING = re.compile(r"dst_s8:[^ ,]*(:f8|zpm)")
# Check 6: activation formats (plain, channel-blocked, channels-last) of ranks 3-5 and their block.
ACTIVATION_TAGS = {"abc": 0, "abcd": 0, "abcde": 0, "acb": 0, "acdb": 0, "acdeb": 0,
                   "aBc8b": 8, "aBcd8b": 8, "aBcde8b": 8, "aBc16b": 16, "aBcd16b": 16, "aBcde16b": 16}
REORDER_TAGS = re.compile(r"(?:src|dst)_\w+:[^: ]*:blocked:(\w+):")


def idle_reorder(fields):
    """True for a verbose reorder line whose source and destination bytes are in the same order."""
    tags = REORDER_TAGS.findall(fields[6])
    if len(tags) != 2 or any(t not in ACTIVATION_TAGS for t in tags):
        return False
    try:
        dims = [int(d) for d in fields[-2].split("x")]
    except ValueError:
        return False
    if len(dims) < 3 or any(d != 1 for d in dims[2:]):
        return False
    block = max(ACTIVATION_TAGS[t] for t in tags)
    if block == 0 or dims[1] % block == 0:
        return True
    # Channels padded to the block: only one image's blocked bytes read as plain are in order (the
    # other way the destination has padding a consumer reads).
    return dims[0] == 1 and ACTIVATION_TAGS[tags[1]] == 0


def models(models_dir, repository):
    found = []
    for p in sorted(glob.glob(os.path.join(models_dir, "*.onnx"))):
        found.append((os.path.basename(p)[:-5], p))
    for p in sorted(glob.glob(os.path.join(repository, "*", "1", "model.onnx"))):
        name = "repository/" + p.split(os.sep)[-3]
        st = os.stat(p)
        if any(os.path.samestat(st, os.stat(q)) for _, q in found):
            continue  # a repository model hard-linked to a benchmark model, already listed
        found.append((name, p))
    return found


def input_names(path):
    """Graph input names without loading weights (protobuf wire format is not parsed here: ask onnx
    when available, else assume image models)."""
    try:
        import onnx  # Debian's python3-onnx
        m = onnx.load(path, load_external_data=False)
        init = {t.name for t in m.graph.initializer}
        return [i.name for i in m.graph.input if i.name not in init]
    except Exception:  # noqa: BLE001
        return []


def run(gpuhive, path, batch, isa, calibration=None):
    args = [gpuhive, "perf", path, "--threads", "2", "--iterations", "1", "--warmup", "0", "--batch", str(batch),
            "--json", "--profile"]
    if calibration:
        args += ["--precision", "int8", "--calibration", calibration]
    for name in input_names(path):
        if name in OTHER_DIMS:
            args += ["--shape", f"{name}={batch}x{OTHER_DIMS[name]}"]
    env = dict(os.environ, ONEDNN_VERBOSE="1", OMP_NUM_THREADS="2")
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if isa != "native":
        env["ONEDNN_MAX_CPU_ISA"] = isa
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    impls = collections.Counter()
    stats = None
    idle = collections.Counter()
    for line in p.stdout.splitlines():
        if line.startswith("onednn_verbose,exec,"):
            f = line.split(",")
            if f[3] == "reorder" and WEIGHT_PACKING.search(line):
                continue
            if f[3] == "reorder" and idle_reorder(f):
                idle[f"{f[6]} {f[-2]}"] += 1
            impls[(f[3], f[4])] += 1  # primitive kind, implementation
        elif line.startswith("{"):
            stats = json.loads(line)
    if p.returncode != 0 or stats is None:
        raise RuntimeError(f"gpuhive perf failed (rc {p.returncode}): {p.stderr.strip()[-800:]}")
    if calibration:
        stats = stats["int8"]
    stats["idle_reorders"] = dict(idle)
    return impls, stats


def calibration_for(path, folder):
    """Two structured calibration images for `path` in `folder` (bench/quant_inputs.py)."""
    tool = os.path.join(ROOT, "bench", "quant_inputs.py")
    subprocess.run([sys.executable, tool, path, folder, "--count", "2", "--seed", "0"], check=True,
                   capture_output=True, text=True, timeout=300)
    return folder


def check(name, key, impls, stats, isa, expected, plans, update, failures, extra=()):
    """Checks 1-3 (and 4's extra keys) on one run; `key` names the plan figures in expected.json."""
    bad = {f"{kind},{impl}": n for (kind, impl), n in impls.items()
           if UNOPTIMIZED.search(impl) and not (isa == "AVX2" and (kind, impl) in AVX2_ONLY_CHOICE)}
    total = sum(impls.values())
    print(f"{name:34s} {isa:7s} {total:5d} oneDNN executions, "
          f"{len(bad)} unoptimized kinds {json.dumps(bad) if bad else ''}")
    if bad:
        failures.append(f"{name} {isa}: unoptimized oneDNN implementations ran: {bad}")
    slow = {k: n for k, n in stats.get("implementations", {}).items() if SLOW_KERNELS.search(k)}
    if slow:
        failures.append(f"{name} {isa}: slow kernel paths ran: {slow}")
    if stats.get("idle_reorders") and not extra:  # int8: calibration copies every value out once
        failures.append(f"{name} {isa}: reorders of values already in the target's byte order: "
                        f"{stats['idle_reorders']}")
    if isa == "AVX2":
        got = {k: stats[k] for k in ("arena_bytes", "activation_bytes", "naive_activation_bytes", "workspace_bytes",
                                     "step_workspace_bytes") + tuple(extra)}
        plans[key] = got
        want = expected.get(key)
        if not update and want != got:
            failures.append(f"{key}: planned {got} differ from the committed {want} "
                            "(tests/executor_guard/expected.json; --update if intended)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpuhive", default=os.path.join(ROOT, "build", "bin", "gpuhive"))
    ap.add_argument("--models-dir", default=os.path.join(ROOT, "models", "generated"))
    ap.add_argument("--repository", default=os.path.join(ROOT, "models", "repository"))
    ap.add_argument("--isas", default="native,AVX2")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--update", action="store_true", help="rewrite expected.json from this run")
    a = ap.parse_args()

    todo = models(a.models_dir, a.repository)
    if a.only:
        keep = set(a.only.split(","))
        todo = [(n, p) for n, p in todo if n in keep]
    bench = [n for n, _ in todo if "/" not in n]
    if len(bench) < 6 and not a.only:
        print(f"executor_guard: expected the six benchmark models under {a.models_dir}, found {bench}; "
              "run `make models` (bench/export_models.py) first", file=sys.stderr)
        return 1
    expected = json.load(open(EXPECTED)) if os.path.exists(EXPECTED) else {}
    plans = dict(expected) if a.only else {}
    failures = []
    for name, path in todo:
        for batch in BATCHES:
            for isa in a.isas.split(","):
                try:
                    impls, stats = run(a.gpuhive, path, batch, isa)
                except Exception as e:  # noqa: BLE001
                    failures.append(f"{name} b{batch} {isa}: {e}")
                    continue
                check(f"{name} b{batch}", f"{name}@b{batch}", impls, stats, isa, expected, plans, a.update, failures)
                if batch == 1 and name in RESIDENT_LIMITS:
                    held = stats["weight_bytes"] + stats["arena_bytes"] + stats["workspace_bytes"]
                    ratio = stats["peak_rss_bytes"] / held
                    print(f"{name} b1 {isa}: peak RSS {stats['peak_rss_bytes'] / 2**20:.1f} MiB = {ratio:.2f}x "
                          f"the weights and arena ({held / 2**20:.1f} MiB)")
                    if ratio > RESIDENT_LIMITS[name]:
                        failures.append(f"{name} b1 {isa}: peak RSS {ratio:.2f}x the weights and arena it holds, "
                                        f"over {RESIDENT_LIMITS[name]} (RESIDENT_LIMITS)")
                avx512 = any("avx512" in impl for _, impl in impls)
                if isa == "native" and avx512:
                    wino = sum(n for k, n in stats.get("implementations", {}).items() if ":jit_" in k and "wino" in k)
                    if wino != WINOGRAD_STEPS.get(name, 0):
                        failures.append(f"{name} b{batch}: {wino} convolution steps on Winograd kernels, expected "
                                        f"{WINOGRAD_STEPS.get(name, 0)} (WINOGRAD_STEPS)")
                    for pattern, steps in REQUIRED_KERNELS.get(name, {}).get(batch, {}).items():
                        got = sum(n for k, n in stats.get("implementations", {}).items() if re.search(pattern, k))
                        if got != steps:
                            failures.append(f"{name} b{batch}: {got} steps match {pattern!r}, expected {steps} "
                                            f"(REQUIRED_KERNELS); implementations: {stats.get('implementations')}")
        if name not in INT8_MODELS:
            continue
        with tempfile.TemporaryDirectory(prefix="guard_cal_") as folder:
            for isa in a.isas.split(","):
                try:
                    impls, stats = run(a.gpuhive, path, 1, isa, calibration_for(path, folder))
                except Exception as e:  # noqa: BLE001
                    failures.append(f"{name} int8 {isa}: {e}")
                    continue
                check(f"{name} b1 int8", f"{name}@b1:int8", impls, stats, isa, expected, plans, a.update, failures,
                      extra=("steps",))
                floats = {k: n for k, n in stats.get("implementations", {}).items() if ":dequantized:" in k}
                if floats:
                    failures.append(f"{name} int8 {isa}: convolutions on the float path instead of int8: {floats}")
    if a.update:
        with open(EXPECTED, "w") as f:
            json.dump(dict(sorted(plans.items())), f, indent=1)
            f.write("\n")
        print(f"executor_guard: wrote {EXPECTED}")
    for f in failures:
        print("FAIL", f)
    print(f"executor_guard: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
