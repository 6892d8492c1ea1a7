#!/usr/bin/env bash
# Runs on the GPU machine: unpacks the package made by bench/gpu/package.sh, finds the machine's
# own CUDA libraries, runs the GPU-labelled tests and the GPU benchmarks, and writes
# $OUT/results.json and $OUT/results.md (plus $OUT/run.log). Meant to finish in < 10 minutes.
#
#   bench/gpu/run_all.sh [TARBALL]        (default build-cuda-pkg/gpuhive-gpu.tar.gz)
# Environment: OUT (results folder, default ./gpu-results), GPUHIVE_MODELS_DIR (ONNX models; when
# absent the benchmark models are exported with PyTorch first), BATCHES (default 1,8,64),
# ITERS (default 20), SKIP_EXPORT=1 (benchmark only the models already there).
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
TARBALL=${1:-build-cuda-pkg/gpuhive-gpu.tar.gz}
OUT=${OUT:-$REPO/gpu-results}
BATCHES=${BATCHES:-1,8,64}
ITERS=${ITERS:-20}
mkdir -p "$OUT"
LOG=$OUT/run.log
: > "$LOG"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$LOG"; }
START=$(date +%s)

WORK=$(mktemp -d)
tar -C "$WORK" -xzf "$TARBALL" || { log "cannot unpack $TARBALL"; exit 1; }
PKG=$WORK/gpuhive-gpu
log "package commit $(cat "$PKG/commit.txt" 2>/dev/null)"

# The CUDA libraries come from this machine: the toolkit, the driver folder, or PyTorch's wheels.
PYSITE=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null || true)
CANDIDATES="/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu"
for s in $PYSITE; do CANDIDATES="$CANDIDATES $(ls -d "$s"/nvidia/*/lib 2>/dev/null | tr '\n' ' ')"; done
LIBPATH=$PKG/lib
while read -r lib; do
  [ -z "$lib" ] && continue
  found=""
  for d in $CANDIDATES; do
    if [ -e "$d/$lib" ]; then found=$d; break; fi
  done
  if [ -z "$found" ]; then
    hit=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l {print $NF; exit}')
    [ -n "$hit" ] && found=$(dirname "$hit")
  fi
  if [ -n "$found" ]; then
    case ":$LIBPATH:" in *":$found:"*) ;; *) LIBPATH=$LIBPATH:$found ;; esac
    log "$lib from $found"
  else
    log "WARNING: $lib not found on this machine"
  fi
done < "$PKG/needs-from-host.txt"
export LD_LIBRARY_PATH=$LIBPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version,memory.total,temperature.gpu,power.draw,clocks.sm --format=csv > "$WORK/nvidia-smi.csv" 2>&1
log "GPU: $(tail -n +2 "$WORK/nvidia-smi.csv" | head -1)"

# Models.
MODELS_DIR=${GPUHIVE_MODELS_DIR:-$REPO/models/generated}
MODELS=resnet50,mobilenet_v3_large,efficientnet_b0,bert_base
if [ "${SKIP_EXPORT:-0}" != 1 ]; then
  missing=""
  for m in ${MODELS//,/ }; do [ -f "$MODELS_DIR/$m.onnx" ] || missing="$missing,$m"; done
  if [ -n "$missing" ]; then
    [ -w "$(dirname "$MODELS_DIR")" ] || MODELS_DIR=$WORK/models
    log "exporting${missing//,/ } to $MODELS_DIR"
    PYTHONUNBUFFERED=1 timeout 240 python3 bench/export_models.py --out "$MODELS_DIR" --only "${missing#,}" >> "$LOG" 2>&1 ||
      log "WARNING: model export failed or timed out; benchmarking the models that exist"
  fi
fi
export GPUHIVE_MODELS_DIR=$MODELS_DIR

# Tests (gtest JSON per binary; merged below).
for t in "$PKG"/tests/*; do
  name=$(basename "$t")
  log "test $name"
  timeout 180 "$t" --gtest_output=json:"$WORK/test_$name.json" >> "$LOG" 2>&1
  echo $? > "$WORK/test_$name.rc"
done

# Benchmarks.
log "bench: models (FP32)"
timeout 240 "$PKG/bin/gpuhive_cuda_bench" --models-dir "$MODELS_DIR" --models "$MODELS" --batches "$BATCHES" \
  --iters "$ITERS" --cpu-iters 1 > "$WORK/bench_fp32.json" 2>> "$LOG" || log "WARNING: model bench failed (rc $?)"
log "bench: models (TF32, batch 64)"
timeout 90 "$PKG/bin/gpuhive_cuda_bench" --models-dir "$MODELS_DIR" --models "$MODELS" --batches 64 --iters "$ITERS" \
  --cpu-iters 0 --tf32 1 --copy-mb 1 > "$WORK/bench_tf32.json" 2>> "$LOG" || log "WARNING: TF32 bench failed (rc $?)"
log "bench: memory (pool vs cudaMalloc vs cudaMallocAsync)"
timeout 90 "$PKG/bin/gpuhive" bench memory --json --skip-replay > "$WORK/bench_memory.json" 2>> "$LOG" ||
  log "WARNING: bench memory failed (rc $?)"
log "bench: swap latency"
timeout 120 "$PKG/bin/gpuhive" bench residency --json --sections swap --swap-mb 1 16 256 1024 \
  > "$WORK/bench_swap.json" 2>> "$LOG" || log "WARNING: bench residency failed (rc $?)"

ELAPSED=$(( $(date +%s) - START ))
python3 - "$WORK" "$OUT" "$ELAPSED" <<'PY'
import glob, json, os, sys
work, out, elapsed = sys.argv[1], sys.argv[2], int(sys.argv[3])
def load(p):
    try:
        with open(p) as f:
            return json.load(f)
    except Exception as e:
        return {"error": f"{os.path.basename(p)}: {e}"}
def num(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else "-"
res = {"elapsed_s": elapsed, "tests": {}, "bench": {}}
try:
    res["nvidia_smi"] = open(os.path.join(work, "nvidia-smi.csv")).read()
except OSError:
    pass
for p in sorted(glob.glob(os.path.join(work, "test_*.json"))):
    name = os.path.basename(p)[5:-5]
    j = load(p)
    rc = open(os.path.join(work, f"test_{name}.rc")).read().strip() if os.path.exists(os.path.join(work, f"test_{name}.rc")) else "?"
    cases = []
    for suite in j.get("testsuites", []):
        for t in suite.get("testsuite", []):
            status = "skipped" if t.get("result") == "SKIPPED" else ("failed" if t.get("failures") else "passed")
            cases.append({"name": suite["name"] + "." + t["name"], "status": status,
                          "failures": [f.get("failure", "")[:2000] for f in t.get("failures", [])]})
    res["tests"][name] = {"rc": rc, "cases": cases}
for k in ("fp32", "tf32", "memory", "swap"):
    p = os.path.join(work, f"bench_{k}.json")
    if os.path.exists(p):
        res["bench"][k] = load(p)
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(res, f, indent=2)

md = [f"# gpuhive GPU run ({elapsed} s)", ""]
if "nvidia_smi" in res:
    md += ["```", res["nvidia_smi"].strip(), "```", ""]
md += ["## Tests", "", "| binary | rc | passed | failed | skipped |", "|---|---|---|---|---|"]
for name, t in res["tests"].items():
    c = t["cases"]
    md.append(f"| {name} | {t['rc']} | {sum(x['status']=='passed' for x in c)} | {sum(x['status']=='failed' for x in c)} | {sum(x['status']=='skipped' for x in c)} |")
for name, t in res["tests"].items():
    for x in t["cases"]:
        if x["status"] == "failed":
            md += ["", f"**{name} {x['name']}**", "```", "\n".join(x["failures"])[:1500], "```"]
for k in ("fp32", "tf32"):
    b = res["bench"].get(k, {})
    rows = b.get("models", []) if isinstance(b, dict) else []
    if rows:
        md += ["", f"## Models ({k}) on {b.get('device', '?')}", "",
               "| model | batch | CPU ms | CUDA ms | CUDA Graph ms | graph gain | items/s (graph) | error vs CPU |",
               "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if "error" in r:
                md.append(f"| {r.get('model')} | {r.get('batch', '-')} | error: {r['error'][:120]} | | | | | |")
                continue
            md.append(f"| {r['model']} | {r['batch']} | {num(r.get('cpu_ms'), '.2f')} | {num(r.get('cuda_ms'), '.3f')} | "
                      f"{num(r.get('cuda_graph_ms'), '.3f')} | {num(r.get('graph_gain'), '.2f')}x | "
                      f"{num(r.get('items_per_s_graph'), '.0f')} | {num(r.get('norm_error_vs_cpu'), '.1e')} |")
    cp = b.get("copies") if isinstance(b, dict) else None
    if k == "fp32" and isinstance(cp, dict):
        md += ["", f"## Host-to-device copies (pinned), bandwidth {cp.get('h2d_bandwidth_gbps', 0):.1f} GB/s", "",
               "| MiB | copy ms | bytes/bandwidth ms | ratio |", "|---|---|---|---|"]
        for r in cp.get("copies", []):
            md.append(f"| {r['mib']} | {num(r.get('copy_ms'), '.3f')} | {num(r.get('bytes_over_bandwidth_ms'), '.3f')} | "
                      f"{num(r.get('ratio'), '.2f')} |")
for k in ("memory", "swap"):
    if k in res["bench"]:
        md += ["", f"## {k}", "", "```json", json.dumps(res["bench"][k], indent=1)[:6000], "```"]
with open(os.path.join(out, "results.md"), "w") as f:
    f.write("\n".join(md) + "\n")
print("\n".join(md[:60]))
PY
log "done in $(( $(date +%s) - START )) s; results in $OUT"
rm -rf "$WORK"
