#!/usr/bin/env bash
# Runs the ONNX node tests listed in LIST through `gpuhive conformance` and fails unless every one
# of them passes (a skip or a missing directory counts as a failure).
# Usage: check_must_pass.sh GPUHIVE_BINARY LIST
set -euo pipefail
bin=$1 list=$2
data=/usr/share/libonnx-testdata/data/node
if [[ ! -d $data ]]; then
  echo "libonnx-testdata is not installed ($data missing)" >&2
  exit 1
fi
dirs=()
while read -r name; do
  [[ -z $name || $name == \#* ]] && continue
  if [[ ! -d $data/$name ]]; then
    echo "MISSING $name" >&2
    exit 1
  fi
  dirs+=("$data/$name")
done <"$list"
if ((${#dirs[@]} == 0)); then
  echo "no test listed in $list" >&2
  exit 1
fi
if ! out=$("$bin" conformance --jobs "$(nproc)" --timeout 120 "${dirs[@]}"); then
  echo "$out"
  exit 1
fi
echo "$out"
summary=$(tail -n 1 <<<"$out")
passed=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$summary")
if [[ $passed != "${#dirs[@]}" ]]; then
  echo "expected all ${#dirs[@]} listed tests to pass, $passed did" >&2
  exit 1
fi
