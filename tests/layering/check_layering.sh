#!/usr/bin/env bash
# The layering rules (DESIGN.md, issue 12) that a grep can prove:
#  1. CUDA, cuDNN, cuBLAS and NVML headers are included only under src/device/cuda and
#     src/kernels/cuda (everything else reaches the GPU through gpuhive's own interfaces);
#  2. the public headers (include/gpuhive) include none of them.
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
echo "layering: CUDA headers only under src/device/cuda and src/kernels/cuda"
