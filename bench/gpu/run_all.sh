#!/usr/bin/env bash
# The GPU check, run on the GPU machine: one prepared command that fits a short lease. It unpacks the
# package made by bench/gpu/package.sh, finds the machine's CUDA libraries, and runs, each step
# time-boxed inside TOTAL_S and each result written into $OUT the moment it exists:
#   1. facts (nvidia-smi read-only query, driver, libraries found)        -> run.log
#   2. correctness: GPU tests (cross-backend ops, kernel runners, models)  -> tests.jsonl
#   3. speed: gpuhive FP16/TF32/FP32 (plain and CUDA Graph) + H2D copies  -> gpuhive.jsonl
#      PyTorch eager fp32/tf32/fp16, torch.compile fp16 last               -> torch.jsonl
#   4. memory: pool vs cudaMalloc vs cudaMallocAsync                       -> memory.json
#   5. NVML: gpuhive's exported GPU metrics vs nvidia-smi at the same time -> nvml.txt
#   6. serving: scenario 1 at GPU rates through `gpuhive serve --device gpu`
#      (bench/scenarios/visual_analysis_gpu.json), gpuhive vs naive         -> scenario.json
#      with nvidia-smi sampled every 0.5 s meanwhile                        -> nvml.txt
#   7. a summary                                                           -> results.md
# Models are exported here with this machine's PyTorch (ResNet-50 and BERT alone exceed what may
# travel), with the same seeded weights bench/gpu/torch_peer.py builds.
#
#   OUT=$OUT bench/gpu/run_all.sh [TARBALL]      (default build-cuda-pkg/gpuhive-gpu.tar.gz)
# Environment: TOTAL_S (overall budget, default 330), BATCHES (1,8,64), ITERS (20), STEPS (which of
# tests,gpuhive,torch,memory,nvml,serve,compile to run; default all), GPUHIVE_MODELS_DIR (skip the
# export).
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
TARBALL=${1:-build-cuda-pkg/gpuhive-gpu.tar.gz}
OUT=${OUT:-$REPO/gpu-results}
TOTAL_S=${TOTAL_S:-330}
BATCHES=${BATCHES:-1,8,64}
ITERS=${ITERS:-20}
STEPS=${STEPS:-tests,gpuhive,torch,memory,nvml,serve,compile}
MODELS=resnet50,mobilenet_v3_large,efficientnet_b0,bert_base
ALL_MODELS=$MODELS,lraspp_mobilenet_v3,audio_lstm
mkdir -p "$OUT"
LOG=$OUT/run.log
START=$(date +%s)
log() { echo "[$(date +%H:%M:%S) +$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
left() { echo $(( TOTAL_S - ($(date +%s) - START) )); }
# Timeout for a step: its cap, or what is left of the budget (at least 5 s), whichever is smaller.
box() { local l; l=$(left); (( l < 5 )) && l=5; (( $1 < l )) && echo "$1" || echo "$l"; }
want() { [[ ",$STEPS," == *",$1,"* ]]; }

WORK=$(mktemp -d)
tar -C "$WORK" -xzf "$TARBALL" || { log "cannot unpack $TARBALL"; exit 1; }
PKG=$WORK/gpuhive-gpu
log "package commit $(cat "$PKG/commit.txt" 2>/dev/null); budget ${TOTAL_S}s; steps $STEPS"

# 1. Facts (read-only queries; the card's settings are never changed).
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,temperature.gpu,power.draw,clocks.sm,clocks.mem,pstate \
  --format=csv >> "$LOG" 2>&1
{ uname -r; ldd --version | head -1; python3 -c 'import torch,sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())'; } >> "$LOG" 2>&1

# CUDA libraries from this machine: toolkit, driver folder, or PyTorch's nvidia-* wheels. The
# package's own libraries (libstdc++, OpenSSL, ...) are put on the path of gpuhive's binaries only,
# never of python3.
PYSITE=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null || true)
CANDIDATES="/usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu"
for s in $PYSITE; do CANDIDATES="$CANDIDATES $(ls -d "$s"/nvidia/*/lib "$s"/nvidia/*/lib64 2>/dev/null | tr '\n' ' ')"; done
LIBPATH=$PKG/lib
while read -r lib; do
  [ -z "$lib" ] && continue
  found=""
  for d in $CANDIDATES; do [ -e "$d/$lib" ] && { found=$d; break; }; done
  if [ -z "$found" ]; then
    hit=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l {print $NF; exit}')
    [ -n "$hit" ] && found=$(dirname "$hit")
  fi
  if [ -z "$found" ] && [ -n "$PYSITE" ]; then
    hit=$(find $PYSITE -name "$lib" 2>/dev/null | head -1)
    [ -n "$hit" ] && found=$(dirname "$hit")
  fi
  if [ -n "$found" ]; then
    case ":$LIBPATH:" in *":$found:"*) ;; *) LIBPATH=$LIBPATH:$found ;; esac
    log "$lib from $found"
  else
    log "WARNING: $lib not found on this machine"
  fi
done < "$PKG/needs-from-host.txt"
gh() { LD_LIBRARY_PATH=$LIBPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$@"; }
for f in "$PKG"/bin/* "$PKG"/tests/*; do
  miss=$(gh ldd "$f" 2>&1 | grep 'not found')
  [ -n "$miss" ] && log "ldd $(basename "$f"): $miss"
done

# Models: exported in the background while the tests that need none run.
MODELS_DIR=${GPUHIVE_MODELS_DIR:-$WORK/models}
EXPORT_PID=""
if [ -z "${GPUHIVE_MODELS_DIR:-}" ]; then
  (PYTHONUNBUFFERED=1 timeout "$(box 150)" python3 bench/export_models.py --out "$MODELS_DIR" --only "$ALL_MODELS" \
     >> "$LOG" 2>&1 || echo "[export] failed or timed out (rc $?)" >> "$LOG") &
  EXPORT_PID=$!
fi
export GPUHIVE_MODELS_DIR=$MODELS_DIR
export GPUHIVE_REPOSITORY_DIR=$PKG/repository  # configs, text_detector, tiny_mlp (packed by package.sh)
# The built-in repository's other models are the exported ones (make-repository.py hard-links them).
link_repository() {
  local pair
  for pair in resnet50:resnet50 mobilenet_v3:mobilenet_v3_large bert_encoder:bert_base audio_lstm:audio_lstm; do
    local name=${pair%%:*} file=$MODELS_DIR/${pair#*:}.onnx
    [ -f "$file" ] && [ -d "$PKG/repository/$name" ] && ln -sfn "$file" "$PKG/repository/$name/1/model.onnx"
  done
}

# 2. Correctness. Each gtest JSON report becomes one line of tests.jsonl as soon as it exists.
run_test() {  # name timeout [gtest args]
  local name=$1 cap=$2; shift 2
  log "test $name $*"
  gh timeout "$(box "$cap")" "$PKG/tests/$name" --gtest_output=json:"$WORK/t.json" "$@" >> "$LOG" 2>&1
  local rc=$?
  python3 - "$WORK/t.json" "$name" "$rc" >> "$OUT/tests.jsonl" <<'PY'
import json, sys
p, name, rc = sys.argv[1:]
row = {"binary": name, "rc": int(rc), "cases": []}
try:
    for s in json.load(open(p)).get("testsuites", []):
        for t in s.get("testsuite", []):
            st = "skipped" if t.get("result") == "SKIPPED" else ("failed" if t.get("failures") else "passed")
            row["cases"].append({"name": s["name"] + "." + t["name"], "status": st,
                                 "failures": [f.get("failure", "")[:1500] for f in t.get("failures", [])]})
except Exception as e:
    row["error"] = repr(e)
print(json.dumps(row))
PY
  rm -f "$WORK/t.json"
  log "test $name rc $rc"
}
if want tests; then
  run_test cuda_kernel_contracts_test 30
  run_test memory_cuda_test 60
  run_test cuda_fallback_test 30
  run_test cuda_cross_backend_test 60 --gtest_filter=-CudaCrossBackend.ModelsMatchTheCpu
fi
[ -n "$EXPORT_PID" ] && { wait "$EXPORT_PID"; log "models: $(ls "$MODELS_DIR" 2>/dev/null | tr '\n' ' ')"; }
want tests && run_test cuda_cross_backend_test 150 --gtest_filter=CudaCrossBackend.ModelsMatchTheCpu  # FP32, TF32, FP16, BF16 per model

# 3. Speed: gpuhive, then the PyTorch peer on the same models and weights.
if want gpuhive; then
  log "gpuhive: copies, models FP16, TF32 and FP32"
  gh timeout "$(box 150)" "$PKG/bin/gpuhive_cuda_bench" --models-dir "$MODELS_DIR" --models "$MODELS" \
    --batches "$BATCHES" --iters "$ITERS" --cpu-iters 1 --math fp16,tf32,fp32 --copy-mb 64,256,1024 \
    --out "$OUT/gpuhive.jsonl" >> "$LOG" 2>&1 || log "WARNING: gpuhive bench rc $?"
fi
if want torch; then
  log "torch: eager fp32/tf32/fp16"
  PYTHONUNBUFFERED=1 timeout "$(box 120)" python3 bench/gpu/torch_peer.py --out "$OUT/torch.jsonl" --models "$MODELS" \
    --batches 64,8,1 --iters "$ITERS" --skip-compile > /dev/null 2>> "$LOG" || log "WARNING: torch eager rc $?"
fi

# 4. Memory: allocation speed of the pool against the CUDA allocators.
if want memory; then
  log "memory: pool vs cudaMalloc vs cudaMallocAsync"
  gh timeout "$(box 60)" "$PKG/bin/gpuhive" bench memory --json --skip-replay > "$OUT/memory.json" 2>> "$LOG" ||
    log "WARNING: bench memory rc $?"
fi

# 5. NVML: what gpuhive exports, next to nvidia-smi read at the same moment.
if want nvml; then
  log "nvml: serve the committed test repository, read /metrics and nvidia-smi"
  gh "$PKG/bin/gpuhive" serve --model-repository tests/data/repository --http-port 18000 --grpc-port 18001 \
    > "$WORK/serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 1 40); do
    python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:18000/v2/health/ready", timeout=1)' 2>/dev/null && break
    sleep 0.25
  done
  {
    echo "## nvidia-smi"
    nvidia-smi --query-gpu=utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,power.limit,clocks.sm,clocks.mem --format=csv
    echo "## gpuhive /metrics (gpu)"
    python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:18000/metrics", timeout=3).read().decode())' |
      grep -E '^(gpuhive_gpu|nv_)' | head -60
    echo "## /v2/gpuhive/devices"
    python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:18000/v2/gpuhive/devices", timeout=3).read().decode()[:3000])'
  } > "$OUT/nvml.txt" 2>&1
  kill -TERM "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null
  tail -20 "$WORK/serve.log" >> "$OUT/nvml.txt"
fi

# 6. Serving: scenario 1 at GPU rates, gpuhive vs naive, both on the GPU; nvidia-smi sampled meanwhile.
if want serve && (( $(left) > 100 )); then
  link_repository
  log "serve: scenario 1 on the GPU (visual_analysis_gpu.json), gpuhive vs naive"
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,power.draw,clocks.sm --format=csv -lms 500 \
    > "$WORK/scenario-smi.csv" 2>&1 &
  SMI_PID=$!
  gh timeout "$(box 150)" "$PKG/bin/gpuhive" bench scenario bench/scenarios/visual_analysis_gpu.json \
    --model-repository "$PKG/repository" --server-arg=--device --server-arg=gpu --quiet \
    --out "$WORK/scenario" --json "$OUT/scenario.json" >> "$LOG" 2>&1 || log "WARNING: scenario rc $?"
  kill "$SMI_PID" 2>/dev/null; wait "$SMI_PID" 2>/dev/null
  { echo "## nvidia-smi every 0.5 s during scenario 1 (serve step)"; cat "$WORK/scenario-smi.csv"
    echo "## server logs (last lines)"; tail -n 15 "$WORK"/scenario/server-*.log 2>/dev/null; } >> "$OUT/nvml.txt"
fi

# torch.compile last, with whatever time is left (compiles take tens of seconds each).
if want compile && (( $(left) > 40 )); then
  log "torch.compile fp16 ($(( $(left) - 25 )) s)"
  PYTHONUNBUFFERED=1 timeout "$(( $(left) - 10 ))" python3 bench/gpu/torch_peer.py --out "$OUT/torch.jsonl" \
    --models "$MODELS" --batches 64,1,8 --iters "$ITERS" --compile-deadline-s "$(( $(left) - 25 ))" --compile-only \
    > /dev/null 2>> "$LOG" || log "WARNING: torch.compile rc $?"
fi

# 7. Summary (also from partial files).
python3 bench/gpu/summarize.py "$OUT" > "$OUT/results.md" 2>> "$LOG"
tail -n 40 "$OUT/results.md"
log "done in $(( $(date +%s) - START )) s"
rm -rf "$WORK"
