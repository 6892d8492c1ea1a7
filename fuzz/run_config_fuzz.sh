#!/bin/bash
# Builds the config.pbtxt fuzz target with clang++ (libFuzzer + ASan + UBSan) and runs it.
# Usage: fuzz/run_config_fuzz.sh SECONDS   (from anywhere; build dir: build-fuzz-config)
# Seeds: every config.pbtxt of the committed test repository. Exits non-zero on a finding (the
# reproducer is left in the build directory).
set -euo pipefail
SECONDS_TO_RUN="${1:-20}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${GPUHIVE_FUZZ_BUILD_DIR:-$ROOT/build-fuzz-config}"
mkdir -p "$OUT/corpus" "$OUT/proto"
CXX="${CXX_FUZZ:-clang++}"
FLAGS=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$ROOT/include" -I"$ROOT/src" -I"$OUT/proto" -Wno-unused-command-line-argument)
SRCS=("$ROOT/fuzz/config_fuzzer.cc" "$ROOT/src/residency/model_config.cc" "$OUT/proto/model_config.pb.cc"
      "$ROOT/src/common/status.cc" "$ROOT/src/common/units.cc" "$ROOT/src/common/logging.cc" "$ROOT/src/common/utf8.cc")
BIN="$OUT/config_fuzzer"
if [[ ! -f "$OUT/proto/model_config.pb.cc" || "$ROOT/proto/model_config.proto" -nt "$OUT/proto/model_config.pb.cc" ]]; then
  protoc --proto_path="$ROOT/proto" --cpp_out="$OUT/proto" "$ROOT/proto/model_config.proto"
fi
NEED=1
if [[ -x "$BIN" ]]; then
  NEED=0
  for f in "${SRCS[@]}" "$ROOT"/include/gpuhive/*.h "$ROOT"/include/gpuhive/residency/*.h; do
    [[ "$f" -nt "$BIN" ]] && NEED=1
  done
fi
if [[ $NEED == 1 ]]; then
  "$CXX" "${FLAGS[@]}" "${SRCS[@]}" -lprotobuf -lfmt -o "$BIN.tmp"
  mv "$BIN.tmp" "$BIN"
fi
i=0
for f in "$ROOT"/tests/data/repository/*/config.pbtxt "$ROOT"/tests/repository_data/*/*/config.pbtxt; do
  [[ -f "$f" ]] && cp "$f" "$OUT/corpus/seed_$((i++))"
done
cd "$OUT"
ASAN_OPTIONS=detect_leaks=1 "$BIN" -max_total_time="$SECONDS_TO_RUN" -max_len=8192 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 "$OUT/corpus"
