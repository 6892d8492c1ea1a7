#!/usr/bin/env bash
# Configures a sanitizer build tree: scripts/configure-sanitizer.sh DIR address|thread
# -O1 -g1 (SANITIZER_OPT_FLAGS overrides): instrumented template-heavy code (the math kernels)
# compiles several times faster than at -O2 -g, reports keep file:line. No CUDA code.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1 san=$2
opt_flags=${SANITIZER_OPT_FLAGS:--O1 -g1 -DNDEBUG}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$opt_flags" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$opt_flags" \
  -DGPUHIVE_SANITIZER="$san" -DGPUHIVE_WITH_CUDA=OFF >/dev/null
