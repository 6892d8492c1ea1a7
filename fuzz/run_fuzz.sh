#!/usr/bin/env bash
# Builds the ONNX-import fuzzer with clang++ (libFuzzer + ASan + UBSan) and runs it.
#   fuzz/run_fuzz.sh [SECONDS]        default 20 seconds
# Environment: GPUHIVE_FUZZ_BUILD_DIR (default build-fuzz/ in the repository root), CXX_FUZZ
# (default clang++). Seeds: a few models from the ONNX node test suite when installed. Exits
# non-zero when the fuzzer finds a crash (the reproducer is left in the build directory).
set -euo pipefail
SECONDS_TO_RUN="${1:-20}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${GPUHIVE_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
CXX_FUZZ="${CXX_FUZZ:-clang++}"
mkdir -p "$OUT/obj" "$OUT/corpus"

SOURCES=(
  "$ROOT/fuzz/onnx_import_fuzzer.cc"
  "$ROOT"/src/graph/*.cc
  "$ROOT/src/common/status.cc" "$ROOT/src/common/logging.cc" "$ROOT/src/common/units.cc"
  "$ROOT/src/common/dtype.cc"
  "$ROOT/src/memory/host_resource.cc" "$ROOT/src/memory/tensor_storage.cc"
)
FLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -DONNX_NAMESPACE=onnx -DONNX_ML=1 -I"$ROOT/include" -I"$ROOT/src" -Wno-unused-command-line-argument)

# Compile each source when it or a header changed since its object (headers: any change in
# include/ or src/graph/ rebuilds everything; cheap enough at this size).
newest_header=$(find "$ROOT/include" "$ROOT/src/graph" -name '*.h' -printf '%T@\n' | sort -n | tail -1)
objects=()
pids=()
for src in "${SOURCES[@]}"; do
  obj="$OUT/obj/$(echo "${src#$ROOT/}" | tr '/' '_').o"
  objects+=("$obj")
  if [[ ! -f "$obj" || "$src" -nt "$obj" ]] || \
     awk -v h="$newest_header" -v o="$(stat -c %Y "$obj")" 'BEGIN{exit !(h > o)}'; then
    "$CXX_FUZZ" "${FLAGS[@]}" -c "$src" -o "$obj" &
    pids+=($!)
    if (( ${#pids[@]} >= 2 )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
"$CXX_FUZZ" "${FLAGS[@]}" "${objects[@]}" -o "$OUT/onnx_import_fuzzer" \
  -lonnx -lonnx_proto -lprotobuf -lfmt -lpthread

NODE_TESTS=/usr/share/libonnx-testdata/data/node
for t in test_relu test_conv_with_strides_padding test_batchnorm_example test_if test_loop11 \
         test_gemm_default_matrix_bias test_matmul_2d test_constant test_reshape_reordered_all_dims \
         test_scan9_sum; do
  [[ -f "$NODE_TESTS/$t/model.onnx" ]] && cp -f "$NODE_TESTS/$t/model.onnx" "$OUT/corpus/$t.onnx"
done

cd "$OUT"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
./onnx_import_fuzzer corpus -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 -close_fd_mask=1
