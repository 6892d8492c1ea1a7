#!/bin/bash
# Runs every fuzz target for SECONDS each, one after another, and prints one summary line per
# target (runs, corpus growth, peak RSS, verdict). Usage: fuzz/run_all.sh [SECONDS]  (default 60)
# `make fuzz FUZZ_SECONDS=600` runs it; the logs are left in build-fuzz-logs/. Exits non-zero when
# any target found a crash, a leak or a timeout.
set -uo pipefail
SECONDS_EACH="${1:-60}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOGS="$ROOT/build-fuzz-logs"
mkdir -p "$LOGS"
failed=0
for target in onnx_import:run_fuzz.sh config:run_config_fuzz.sh kserve_request:run_server_fuzz.sh \
              grpc_request:run_grpc_fuzz.sh; do
  name="${target%%:*}"
  script="${target#*:}"
  log="$LOGS/$name.log"
  start=$(date +%s)
  bash "$ROOT/fuzz/$script" "$SECONDS_EACH" > "$log" 2>&1
  rc=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  added=$(grep -oE 'stat::new_units_added: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  rss=$(grep -oE 'stat::peak_rss_mb: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  verdict="clean"
  if (( rc != 0 )); then verdict="FOUND (rc $rc; see $log)"; failed=1; fi
  echo "$name: ${SECONDS_EACH}s fuzzing ($(( $(date +%s) - start ))s with the build), $runs runs, $added new units, peak RSS ${rss} MiB: $verdict"
done
exit $failed
