#!/usr/bin/env bash
# Runs the ONNX backend test suite shipped by Debian's libonnx-testdata through
# `gpuhive conformance` and fails unless at least MIN_PCT% of the tests whose operators are all
# supported (passed + failed; skips are unsupported operators or string tensors) pass.
# Usage: check_conformance.sh GPUHIVE_BINARY MIN_PCT [REPORT_JSON]
set -euo pipefail
bin=$1 min_pct=$2 report=${3:-}
data=/usr/share/libonnx-testdata/data
dirs=()
for d in node pytorch-converted pytorch-operator simple; do
  [[ -d $data/$d ]] && dirs+=("$data/$d")
done
if ((${#dirs[@]} == 0)); then
  echo "libonnx-testdata is not installed ($data missing)" >&2
  exit 1
fi
out=$(mktemp)
"$bin" conformance --jobs "$(nproc)" --timeout 300 "${dirs[@]}" >"$out"
grep -E '^(FAIL|SKIP) ' "$out" || true
summary=$(tail -n 1 "$out")
echo "$summary"
[[ -n $report ]] && cp "$out" "$report"
passed=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$summary")
failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$summary")
supported=$((passed + failed))
if ((supported == 0)); then
  echo "no supported test ran" >&2
  exit 1
fi
pct=$((100 * passed / supported))
echo "pass rate over supported tests: $passed/$supported = $pct% (required >= $min_pct%)"
((pct >= min_pct))
