#!/usr/bin/python3
"""gpuhive's INT8 precision against FP32 and against ONNX Runtime's QDQ, one table per run.

For each model (default resnet50, mobilenet_v3_large, bert_base from models/generated):

1. inputs from bench/quant_inputs.py (structured, not noise): --calibration-count samples (seed 0),
   one sub-folder each; --validation-count samples in sub-folders of --validation-batch rows each
   (chunk k drawn with seed --validation-seed + k, so no validation row repeats a calibration row),
   which gpuhive's CompareOutputs runs a batch at a time; one --batch sample for ORT's timing;
2. `gpuhive perf MODEL -t THREADS -b BATCH --precision int8 --calibration CAL --validation VAL
   --calibration-method M --json`, once per --methods entry: FP32 and INT8 weight bytes, p50
   latencies, quantized convolutions, worst relative L2 and top-1 agreement with FP32;
3. ONNX Runtime (bench/ort_latency.js, timed as bench/compare_ort.js times it) on the FP32 model and
   on a QDQ model of it from `bench/quantize_onnx.py --format qdq` (its defaults: 16 calibration
   inputs of its own seed, min-max; it has no option to take ours), same threads and batch;
4. a markdown table, the targets (INT8 weights <= 0.3x FP32, top-1 agreement >= 99%) met or not per
   model and method, and with --json every number in a file. The header gives the command line,
   `uptime`, the commit and the date, which the project records with every figure.

Exits 1 when a step fails to run (the table still shows what did run); a missed target is a result,
not a failure. Timings are only worth quoting from a quiet machine: the header's load average says
whether it was one. gpuhive perf times its own generated inputs, ORT the structured timing sample;
for these dense models the values do not change the work done.

    NODE_PATH=bench/node_modules /usr/bin/python3 bench/precision_bench.py \\
        [--models resnet50,mobilenet_v3_large,bert_base] [--methods minmax,percentile,entropy] \\
        [--validation-count 1000] [--threads 2] [--batch 1] [--keep DIR] [--json out.json]
"""
import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import quant_inputs  # noqa: E402  (beside this file)

DEFAULT_MODELS = "resnet50,mobilenet_v3_large,bert_base"
METHODS = ("minmax", "percentile", "entropy")
CALIBRATION_SEED = 0
TIMING_SEED = 99  # below the validation chunks' seeds (100 + k by default)
WEIGHT_RATIO_TARGET = 0.30  # INT8 weight bytes / FP32 weight bytes, at most
TOP1_TARGET = 0.99  # top-1 agreement of INT8 with FP32, at least
MIB = 1 << 20


class StepFailed(Exception):
    """A command the benchmark depends on did not run to completion; the message says which and why."""


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated names in --models-dir")
    ap.add_argument("--models-dir", default=os.path.join(REPO, "models", "generated"))
    ap.add_argument("--methods", default="minmax", help="comma-separated: " + ", ".join(METHODS))
    ap.add_argument("--calibration-count", type=int, default=16)
    ap.add_argument("--validation-count", type=int, default=1000)
    ap.add_argument("--validation-batch", type=int, default=50,
                    help="rows per validation sub-folder (CompareOutputs runs one at a time)")
    ap.add_argument("--validation-seed", type=int, default=100,
                    help="seed of the first validation chunk; chunk k uses this + k")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1, help="batch of the timed runs")
    ap.add_argument("--iterations", type=int, default=50, help="timed runs, at least (gpuhive and ORT)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs first (gpuhive and ORT)")
    ap.add_argument("--min-seconds", type=float, default=3.0, help="time each model at least this long")
    ap.add_argument("--gpuhive", default=os.path.join(REPO, "build", "bin", "gpuhive"))
    ap.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime (no quantize_onnx, no node)")
    ap.add_argument("--keep", metavar="DIR", help="write inputs and QDQ models here and keep them")
    ap.add_argument("--json", metavar="FILE", help="write every number here")
    ap.add_argument("--timeout-s", type=float, default=7200, help="limit for each command run")
    args = ap.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.methods = [m for m in args.methods.split(",") if m]
    for m in args.methods:
        if m not in METHODS:
            ap.error(f"--methods: '{m}' is not one of {', '.join(METHODS)}")
    for name in ("calibration_count", "validation_count", "validation_batch", "threads", "batch", "iterations"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.validation_seed <= CALIBRATION_SEED or args.validation_seed == TIMING_SEED:
        ap.error(f"--validation-seed must be above {CALIBRATION_SEED} and not {TIMING_SEED}, "
                 "so validation rows differ from the calibration and timing ones")
    return args


# ---- conditions recorded with every figure ---------------------------------------------------------

def _quiet(cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def conditions(argv, args):
    commit = _quiet(["git", "rev-parse", "--short", "HEAD"], REPO) or "unknown"
    if _quiet(["git", "status", "--porcelain", "--untracked-files=no"], REPO):
        commit += "+dirty"
    cpu, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu == "unknown":
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    binary = {"path": os.path.abspath(args.gpuhive)}
    if os.path.exists(args.gpuhive):
        binary["mtime"] = datetime.datetime.fromtimestamp(os.path.getmtime(args.gpuhive)).isoformat(timespec="seconds")
    return {
        "command": shlex.join([sys.executable, sys.argv[0]] + argv),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "commit": commit,
        "uptime_start": _quiet(["uptime"]),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "vnni": bool(flags & {"avx512_vnni", "avx_vnni"}),
        "gpuhive": binary,
    }


# ---- inputs ------------------------------------------------------------------------------------

def write_sample(directory, feeds):
    """One sample folder: <input name>.pb per input (TensorProto), any batch."""
    os.makedirs(directory, exist_ok=True)
    for name, array in feeds.items():
        with open(os.path.join(directory, name + ".pb"), "wb") as f:
            f.write(numpy_helper.from_array(array, name).SerializeToString())


def make_inputs(model_path, work, args):
    """Writes calibration/, validation/ and timing/ under `work`; returns their paths and the
    timing sample's shapes ({input: [dims]}) for gpuhive perf's --shape."""
    model = onnx.load(model_path, load_external_data=False)
    cal, val, timing = (os.path.join(work, d) for d in ("calibration", "validation", "timing"))
    for d in (cal, val, timing):  # under --keep, a larger earlier run's samples would join this one's
        shutil.rmtree(d, ignore_errors=True)
    feeds = quant_inputs.model_inputs(model, args.calibration_count, CALIBRATION_SEED)
    for i in range(args.calibration_count):
        write_sample(os.path.join(cal, f"sample_{i:04d}"), {n: a[i:i + 1] for n, a in feeds.items()})
    done, chunk = 0, 0
    while done < args.validation_count:
        rows = min(args.validation_batch, args.validation_count - done)
        write_sample(os.path.join(val, f"batch_{chunk:04d}"),
                     quant_inputs.model_inputs(model, rows, args.validation_seed + chunk))
        done, chunk = done + rows, chunk + 1
    feeds = quant_inputs.model_inputs(model, args.batch, TIMING_SEED)
    write_sample(timing, feeds)
    return cal, val, timing, {n: list(a.shape) for n, a in feeds.items()}


# ---- runs --------------------------------------------------------------------------------------

def run(cmd, what, args, env=None):
    """stdout of `cmd`; StepFailed with the exit status and the end of stderr if it fails."""
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout_s)
    except subprocess.TimeoutExpired:
        raise StepFailed(f"{what}: no result after {args.timeout_s:.0f} s: {shlex.join(cmd)}") from None
    except OSError as e:
        raise StepFailed(f"{what}: cannot start {cmd[0]}: {e}") from None
    if r.returncode != 0:
        tail = "\n".join(r.stderr.strip().splitlines()[-8:]) or "(no stderr)"
        raise StepFailed(f"{what}: exit status {r.returncode}: {shlex.join(cmd)}\n{tail}")
    print(f"  {what}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return r.stdout


def last_json(text, what):
    """The last line of `text` that parses as a JSON object (tools may log before it)."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                break
    raise StepFailed(f"{what}: no JSON object in its output: {text.strip()[-300:]!r}")


def node_env():
    env = dict(os.environ)
    env["NODE_PATH"] = os.pathsep.join(p for p in (env.get("NODE_PATH"), os.path.join(HERE, "node_modules")) if p)
    return env


def gpuhive_int8(model_path, method, cal, val, shapes, args):
    cmd = [args.gpuhive, "perf", model_path, "-t", str(args.threads), "-b", str(args.batch),
           "-n", str(args.iterations), "--warmup", str(args.warmup), "--min-seconds", str(args.min_seconds),
           "--precision", "int8", "--calibration", cal, "--validation", val,
           "--calibration-method", method, "--json"]
    for name, dims in shapes.items():
        cmd += ["--shape", f"{name}={'x'.join(map(str, dims))}"]
    result = last_json(run(cmd, f"gpuhive perf --precision int8 ({method})", args), "gpuhive perf")
    for side in ("fp32", "int8"):
        if side not in result or "p50_ms" not in result[side]:
            raise StepFailed(f"gpuhive perf ({method}): its JSON has no {side}.p50_ms")
        result[side].pop("implementations", None)  # per-kernel detail, bulky and not compared here
    return result


def ort_side(model_path, work, timing, args):
    """ORT p50 of the FP32 model and of quantize_onnx's QDQ model of it, and the QDQ file's size."""
    qdq = os.path.join(work, os.path.basename(model_path).replace(".onnx", "_qdq.onnx"))
    run([sys.executable, os.path.join(HERE, "quantize_onnx.py"), model_path, qdq, "--format", "qdq",
         "--threads", str(args.threads)], "quantize_onnx.py --format qdq", args, env=node_env())
    out = run(["node", os.path.join(HERE, "ort_latency.js"), "--inputs", timing, "--threads", str(args.threads),
               "--iterations", str(args.iterations), "--warmup", str(args.warmup),
               "--min-seconds", str(args.min_seconds), model_path, qdq], "ORT fp32 and QDQ latency", args,
              env=node_env())
    res = last_json(out, "ort_latency.js")
    fp32, q = res["models"]
    return {"version": res["ort"], "fp32": fp32, "qdq": q, "qdq_file_bytes": os.path.getsize(qdq),
            "qdq_calibration": "quantize_onnx.py defaults (16 inputs of its own seed, minmax)"}


# ---- one row per model and method --------------------------------------------------------------

def row_of(model, method, g, ort):
    """Flattens one gpuhive perf result (or None) and the model's ORT result (or None)."""
    row = {"model": model, "method": method}
    if g:
        fw, iw = g["fp32"]["weight_bytes"], g["int8"]["weight_bytes"]
        classifier = [o for o in g["accuracy"]["outputs"] if o.get("rows", 0) > 0]
        worst = min(classifier, key=lambda o: o["top1_agreement"]) if classifier else None
        row.update({
            "fp32_weight_bytes": fw, "int8_weight_bytes": iw, "weight_ratio": iw / fw if fw else None,
            "quantized_ops": g["quantized_ops"], "calibration_samples": g["calibration_samples"],
            "validation_samples": g["validation_samples"],
            "worst_rel_l2": g["accuracy"]["worst_rel_l2"],
            "top1_agreement": worst["top1_agreement"] if worst else None,
            "top1_output": worst["name"] if worst else None,
            "top1_rows": worst["rows"] if worst else 0,
            "gpuhive_fp32_p50_ms": g["fp32"]["p50_ms"], "gpuhive_int8_p50_ms": g["int8"]["p50_ms"],
            "gpuhive": g,
        })
        row["targets"] = {
            "weights_met": row["weight_ratio"] is not None and row["weight_ratio"] <= WEIGHT_RATIO_TARGET,
            "top1_met": None if worst is None else worst["top1_agreement"] >= TOP1_TARGET,
        }
    if ort:
        row.update({"ort_fp32_p50_ms": ort["fp32"]["p50_ms"], "ort_qdq_p50_ms": ort["qdq"]["p50_ms"], "ort": ort})
    if g and ort:
        row["int8_over_ort_qdq"] = g["int8"]["p50_ms"] / ort["qdq"]["p50_ms"]
    return row


def _ms(v):
    return f"{v:.2f} ms" if v is not None else "-"


def markdown(rows):
    head = ("model", "method", "fp32 weights", "int8 weights (ratio)", "top-1 agreement (n)", "rel L2",
            "gpuhive fp32 p50", "gpuhive int8 p50", "ORT fp32 p50", "ORT QDQ p50", "int8/ORT-QDQ ratio")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "fp32_weight_bytes" in r:
            fw = f"{r['fp32_weight_bytes'] / MIB:.1f} MiB"
            iw = f"{r['int8_weight_bytes'] / MIB:.1f} MiB ({r['weight_ratio']:.2f}x)"
            top1 = (f"{100 * r['top1_agreement']:.1f}% ({r['top1_rows']})" if r["top1_agreement"] is not None
                    else "n/a (no [rows, classes] output)")
            l2 = f"{r['worst_rel_l2']:.4f}"
        else:
            fw = iw = top1 = l2 = "error"
        ratio = f"{r['int8_over_ort_qdq']:.2f}x" if "int8_over_ort_qdq" in r else "-"
        cells = (r["model"], r["method"], fw, iw, top1, l2, _ms(r.get("gpuhive_fp32_p50_ms")),
                 _ms(r.get("gpuhive_int8_p50_ms")), _ms(r.get("ort_fp32_p50_ms")), _ms(r.get("ort_qdq_p50_ms")), ratio)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows):
    """One line per row with gpuhive numbers: each target met / not met (n/a without a classifier)."""
    lines = []
    for r in rows:
        if "targets" not in r:
            continue
        met = lambda ok: "met" if ok else "not met"  # noqa: E731
        weights = (f"INT8 weights {r['weight_ratio']:.2f}x of FP32 (target <= {WEIGHT_RATIO_TARGET:.2f}x): "
                   f"{met(r['targets']['weights_met'])}")
        if r["targets"]["top1_met"] is None:
            top1 = "top-1 agreement: n/a (no [rows, classes] output)"
        else:
            top1 = (f"top-1 agreement {100 * r['top1_agreement']:.1f}% over {r['top1_rows']} rows of "
                    f"{r['top1_output']} (target >= {100 * TOP1_TARGET:.0f}%): {met(r['targets']['top1_met'])}")
        lines.append(f"- {r['model']} ({r['method']}, quantized_ops {r['quantized_ops']}): {weights}; {top1}")
    return "\n".join(lines)


def bench_model(name, args, keep_root, errors):
    """Rows for one model; appends what failed to `errors` and goes on with the rest."""
    model_path = os.path.join(args.models_dir, name + ".onnx")
    work = os.path.join(keep_root, name)
    os.makedirs(work, exist_ok=True)
    print(f"{name}:", file=sys.stderr, flush=True)
    try:
        t0 = time.time()
        if not os.path.isfile(model_path):
            raise StepFailed(f"{model_path} does not exist")
        cal, val, timing, shapes = make_inputs(model_path, work, args)
        print(f"  inputs: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    except (StepFailed, ValueError, OSError) as e:
        errors.append({"model": name, "step": "inputs", "error": str(e)})
        return [{"model": name, "method": m} for m in args.methods]
    results = {}
    for method in args.methods:
        try:
            results[method] = gpuhive_int8(model_path, method, cal, val, shapes, args)
        except StepFailed as e:
            errors.append({"model": name, "step": f"gpuhive ({method})", "error": str(e)})
    ort = None
    if not args.no_ort:
        try:
            ort = ort_side(model_path, work, timing, args)
        except (StepFailed, KeyError, ValueError) as e:
            errors.append({"model": name, "step": "ORT", "error": str(e)})
    return [row_of(name, m, results.get(m), ort) for m in args.methods]


def main(argv):
    args = parse_args(argv)
    cond = conditions(argv, args)
    print(f"command: {cond['command']}")
    print(f"date: {cond['date']}   commit: {cond['commit']}   cpu: {cond['cpu']} x{cond['cpus']}"
          f" (vnni: {'yes' if cond['vnni'] else 'no'})")
    print(f"uptime: {cond['uptime_start']}")
    print(f"gpuhive: {cond['gpuhive']['path']} (modified {cond['gpuhive'].get('mtime', '?')})")
    print(f"threads {args.threads}, batch {args.batch}, >= {args.iterations} timed runs and >= {args.min_seconds:g} s "
          f"after {args.warmup} warm-up; calibration {args.calibration_count} samples (seed {CALIBRATION_SEED}), "
          f"validation {args.validation_count} rows in batches of {args.validation_batch}", flush=True)
    if not os.path.isfile(args.gpuhive):
        print(f"error: no gpuhive binary at {args.gpuhive} (--gpuhive)", file=sys.stderr)
        return 1
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        tmp, keep_root = None, args.keep
    else:
        tmp = tempfile.mkdtemp(prefix="precision_bench_")
        keep_root = tmp
    rows, errors = [], []
    try:
        for name in args.models:
            rows += bench_model(name, args, keep_root, errors)
            if tmp:  # validation inputs run to hundreds of MiB per model
                shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    cond["uptime_end"] = _quiet(["uptime"])
    print()
    print(markdown(rows))
    ort_version = next((r["ort"]["version"] for r in rows if "ort" in r), None)
    if ort_version:
        print(f"\nORT: onnxruntime-node {ort_version}; its QDQ models from bench/quantize_onnx.py --format qdq with "
              "its default calibration (16 inputs of its own seed, minmax), whatever the method column says.")
    print("\nTargets:")
    print(targets(rows) or "- none measured")
    print(f"\nuptime at the end: {cond['uptime_end']}")
    if errors:
        print("\nFailed to run:")
        for e in errors:
            print(f"- {e['model']}: {e['error']}")
    if args.json:
        settings = {k: getattr(args, k) for k in ("models", "methods", "calibration_count", "validation_count",
                                                   "validation_batch", "validation_seed", "threads", "batch",
                                                   "iterations", "warmup", "min_seconds")}
        settings.update(calibration_seed=CALIBRATION_SEED, timing_seed=TIMING_SEED,
                        targets={"weight_ratio_max": WEIGHT_RATIO_TARGET, "top1_min": TOP1_TARGET})
        with open(args.json, "w") as f:
            json.dump({**cond, "settings": settings, "rows": rows, "errors": errors}, f, indent=1)
        print(f"numbers written to {args.json}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
