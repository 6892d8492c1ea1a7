#!/bin/bash
# Builds the KServe request-parser fuzz target with clang++ (libFuzzer + ASan + UBSan) and runs it.
# Usage: fuzz/run_server_fuzz.sh SECONDS   (from the repository root; build dir: build-fuzz-server)
set -euo pipefail
SECONDS_TO_RUN="${1:-20}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${GPUHIVE_FUZZ_BUILD_DIR:-$ROOT/build-fuzz-server}"
mkdir -p "$OUT/corpus"
CXX="${CXX_FUZZ:-clang++}"
FLAGS=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$ROOT/include" -I"$ROOT/src")
SRCS=("$ROOT/fuzz/server_fuzz_request.cc" "$ROOT/src/server/kserve_json.cc"
      "$ROOT/src/server/binary_tensor.cc" "$ROOT/src/server/request_validation.cc"
      "$ROOT/src/common/status.cc" "$ROOT/src/common/dtype.cc" "$ROOT/src/common/units.cc"
      "$ROOT/src/common/logging.cc" "$ROOT/src/common/utf8.cc" "$ROOT/src/memory/tensor_storage.cc"
      "$ROOT/src/memory/host_resource.cc" "$ROOT/src/server/classification.cc" "$ROOT/src/server/shared_memory.cc")
BIN="$OUT/server_fuzz_request"
# Rebuild only when a source is newer than the binary.
NEED=1
if [[ -x "$BIN" ]]; then
  NEED=0
  for f in "${SRCS[@]}" "$ROOT"/src/server/*.h "$ROOT"/include/gpuhive/*.h; do
    [[ "$f" -nt "$BIN" ]] && NEED=1
  done
fi
if [[ $NEED == 1 ]]; then
  "$CXX" "${FLAGS[@]}" "${SRCS[@]}" -lsimdjson -lfmt -o "$BIN.tmp"
  mv "$BIN.tmp" "$BIN"
fi
# Seed corpus: valid JSON and binary requests (selector byte, 2 header-length bytes, body).
seed() { printf '%b' "$2" > "$OUT/corpus/$1"; }
seed json '\x00\x00\x00{"id":"a","parameters":{"priority":1,"timeout":1000},"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,3,4]},{"name":"INPUT1","datatype":"INT32","shape":[1,2],"data":[[5],[6]]}],"outputs":[{"name":"OUTPUT0","parameters":{"binary_data":true}}]}'
HDR='{"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"parameters":{"binary_data_size":16}},{"name":"INPUT1","datatype":"INT32","shape":[1,1],"data":[1]}]}'
LEN=${#HDR}
seed binary "\\x80\\x$(printf '%02x' $((LEN & 255)))\\x$(printf '%02x' $((LEN >> 8)))${HDR}AAAABBBBCCCCDDDD"
seed fp16 '\x03\x00\x00{"inputs":[{"name":"INPUT0","datatype":"FP16","shape":[1,4],"data":[1.5,-2,65504,1e9]},{"name":"INPUT1","datatype":"FP16","shape":[0,3],"data":[]}]}'
ASAN_OPTIONS=detect_leaks=1 "$BIN" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 "$OUT/corpus"
