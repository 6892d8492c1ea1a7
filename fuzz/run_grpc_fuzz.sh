#!/bin/bash
# Builds the gRPC request-conversion fuzz target with clang++ (libFuzzer + ASan + UBSan) and runs it.
# Usage: fuzz/run_grpc_fuzz.sh SECONDS   (from anywhere; build dir: build-fuzz-grpc)
# Seeds: valid and near-valid ModelInferRequests (raw and typed contents, Triton's parameters,
# shared memory windows, classification) written with python3-protobuf. Exits non-zero on a
# finding (the reproducer is left in the build directory).
set -euo pipefail
SECONDS_TO_RUN="${1:-20}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${GPUHIVE_FUZZ_BUILD_DIR:-$ROOT/build-fuzz-grpc}"
mkdir -p "$OUT/corpus" "$OUT/proto" "$OUT/py"
CXX="${CXX_FUZZ:-clang++}"
FLAGS=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$ROOT/include" -I"$ROOT/src" -I"$OUT/proto" -Wno-unused-command-line-argument)
SRCS=("$ROOT/fuzz/grpc_request_fuzzer.cc" "$ROOT/src/server/grpc_convert.cc"
      "$ROOT/src/server/binary_tensor.cc" "$ROOT/src/server/request_validation.cc"
      "$ROOT/src/server/classification.cc" "$ROOT/src/server/shared_memory.cc"
      "$OUT/proto/grpc_service.pb.cc" "$OUT/proto/model_config.pb.cc"
      "$ROOT/src/common/status.cc" "$ROOT/src/common/dtype.cc" "$ROOT/src/common/units.cc"
      "$ROOT/src/common/logging.cc" "$ROOT/src/common/utf8.cc" "$ROOT/src/memory/tensor_storage.cc"
      "$ROOT/src/memory/host_resource.cc")
BIN="$OUT/grpc_request_fuzzer"
for p in grpc_service model_config; do
  if [[ ! -f "$OUT/proto/$p.pb.cc" || "$ROOT/proto/$p.proto" -nt "$OUT/proto/$p.pb.cc" ]]; then
    protoc --proto_path="$ROOT/proto" --cpp_out="$OUT/proto" --python_out="$OUT/py" "$ROOT/proto/$p.proto"
  fi
done
NEED=1
if [[ -x "$BIN" ]]; then
  NEED=0
  for f in "${SRCS[@]}" "$ROOT"/src/server/*.h "$ROOT"/include/gpuhive/*.h "$ROOT"/include/gpuhive/server/*.h; do
    [[ "$f" -nt "$BIN" ]] && NEED=1
  done
fi
if [[ $NEED == 1 ]]; then
  "$CXX" "${FLAGS[@]}" "${SRCS[@]}" -lprotobuf -lfmt -lrt -o "$BIN.tmp"
  mv "$BIN.tmp" "$BIN"
fi
PYTHONPATH="$OUT/py" /usr/bin/python3 "$ROOT/fuzz/grpc_seeds.py" "$OUT/corpus"
cd "$OUT"
ASAN_OPTIONS=detect_leaks=1 "$BIN" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 "$OUT/corpus"
