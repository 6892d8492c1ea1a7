#!/usr/bin/env bash
# The layering rules (DESIGN.md, issue 12) that a grep can prove:
#  1. CUDA, cuDNN, cuBLAS and NVML headers are included only under src/device/cuda and
#     src/kernels/cuda (everything else reaches the GPU through gpuhive's own interfaces);
#  2. the public headers (include/gpuhive) include none of them;
#  3. common (src/common) reaches neither the memory layer nor the device layer: no header it
#     includes, directly or through other gpuhive headers, is memory_resource.h, tensor.h,
#     device.h or compute_device.h;
#  4. the engine (src/engine) includes no frontend code: of the server's headers only the service
#     interface it implements (gpuhive/server/service.h); and no module outside src/engine includes
#     the engine's private headers.
# Exits 1 listing every offending line.
set -euo pipefail
ROOT="${1:-$(cd "$(dirname "$0")/../.." && pwd)}"
cd "$ROOT"
bad=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](cuda|cudnn|cublas|cublasLt|nvml|cub/|thrust/|curand|nvrtc)[^>"]*[>"]' \
        src include tests bench fuzz 2>/dev/null | grep -vE '^src/(device|kernels)/cuda/' || true)
if [[ -n "$bad" ]]; then
  echo "CUDA headers outside src/device/cuda and src/kernels/cuda:"
  echo "$bad"
  exit 1
fi
# Rule 3: the gpuhive headers common reaches, followed transitively.
declare -A seen=()
queue=()
add_includes() {  # file
  local h
  for h in $(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"(gpuhive\/[^"]+)".*/\1/p' "$1"); do
    if [[ -z "${seen[$h]:-}" ]]; then
      seen[$h]="$1"
      queue+=("$h")
    fi
  done
}
for f in src/common/*.cc src/common/*.h; do [[ -f "$f" ]] && add_includes "$f"; done
while ((${#queue[@]})); do
  h=${queue[0]}
  queue=("${queue[@]:1}")
  [[ -f "include/$h" ]] && add_includes "include/$h"
done
bad=""
for h in gpuhive/memory_resource.h gpuhive/tensor.h gpuhive/device.h gpuhive/compute_device.h; do
  [[ -n "${seen[$h]:-}" ]] && bad+="  $h (included by ${seen[$h]})"$'\n'
done
if [[ -n "$bad" ]]; then
  echo "src/common reaches the memory or device layer:"
  printf '%s' "$bad"
  exit 1
fi
# Rule 4.
bad=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"(server/|gpuhive/server/)' src/engine include/gpuhive/engine \
        2>/dev/null | grep -v '"gpuhive/server/service.h"' || true)
bad+=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"engine/' src include tests 2>/dev/null | grep -vE '^src/engine/' || true)
if [[ -n "$bad" ]]; then
  echo "the engine reaches frontend code, or its private headers are used outside it:"
  echo "$bad"
  exit 1
fi
echo "layering: CUDA headers only under src/device/cuda and src/kernels/cuda; common reaches no memory or device header; the engine holds no frontend code"
