#!/usr/bin/env bash
# Builds and runs the sanitizer test groups: ASan+UBSan over the unit tests, TSan over the tests
# labelled "tsan" (pool, scheduler, residency leases). Separate build trees, ccache shared.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

run_group() {  # dir sanitizer ctest-label-args...
  local dir=$1 san=$2; shift 2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGPUHIVE_SANITIZER="$san" \
    -DGPUHIVE_WITH_CUDA=OFF >/dev/null
  # Only the test binaries of the selected labels are built.
  local targets
  targets=$(cd "$dir" && ctest -N "$@" 2>/dev/null | sed -n 's/^ *Test *#[0-9]*: \([^.]*\)\..*/\1/p' | sort -u)
  if [[ -z "$targets" ]]; then
    cmake --build "$dir" -j "$jobs"
  else
    cmake --build "$dir" -j "$jobs" --target $targets
  fi
  (cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 900 "$@")
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
run_group build-asan address -L asan
run_group build-tsan thread -L tsan
