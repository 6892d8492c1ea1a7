#!/usr/bin/env bash
# Builds and runs the sanitizer test groups: ASan+UBSan over the unit tests labelled "asan", TSan
# over the tests labelled "tsan" (pool, scheduler, residency leases). Separate build trees, ccache
# shared. Only the test binaries of a group are built (tests/CMakeLists.txt writes their list), never
# the CLI, the fuzzers or the server, and no CUDA code.
#
# The trees are configured by scripts/configure-sanitizer.sh (-O1 -g1, see there).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

run_group() {  # dir sanitizer label
  local dir=$1 san=$2 label=$3 t0=$SECONDS
  scripts/configure-sanitizer.sh "$dir" "$san"
  local targets
  targets=$(grep -v '^$' "$dir/test-targets-$label.txt" || true)
  if [[ -z "$targets" ]]; then
    echo "sanitizer-tests: no test carries label $label" >&2
    return 1
  fi
  # shellcheck disable=SC2086  # one target per word
  cmake --build "$dir" -j "$jobs" --target $targets
  local t1=$SECONDS
  (cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 900 -L "$label")
  echo "sanitizer-tests: $label: build $((t1 - t0)) s, tests $((SECONDS - t1)) s"
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
run_group build-tsan thread tsan
run_group build-asan address asan
