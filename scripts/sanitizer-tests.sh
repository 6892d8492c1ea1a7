#!/usr/bin/env bash
# Builds and runs the sanitizer test groups: ASan+UBSan over the unit tests, TSan over the tests
# labelled "tsan" (pool, scheduler, residency leases). Separate build trees, ccache shared.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

run_group() {  # dir sanitizer label
  local dir=$1 san=$2 label=$3
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGPUHIVE_SANITIZER="$san" \
    -DGPUHIVE_WITH_CUDA=OFF >/dev/null
  # Only the test binaries carrying this label are built (tests/CMakeLists.txt writes the list).
  local targets
  targets=$(grep -v '^$' "$dir/test-targets-$label.txt" || true)
  if [[ -z "$targets" ]]; then
    echo "sanitizer-tests: no test carries label $label" >&2
    return 1
  fi
  cmake --build "$dir" -j "$jobs" --target $targets
  (cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 900 -L "$label")
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
run_group build-tsan thread tsan
run_group build-asan address asan
