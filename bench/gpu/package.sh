#!/usr/bin/env bash
# Builds gpuhive with CUDA on this (GPU-less) build machine and packs what bench/gpu/run_all.sh
# needs on the GPU machine: the gpuhive binary and its run-time modules (libgpuhive_cuda.so,
# libgpuhive_grpc.so), the GPU test binaries, the benchmark driver, and
# the shared libraries they need that the GPU machine lacks (oneDNN, protobuf, gRPC, ...). The
# CUDA libraries (libcuda, libcudart, libcublas*, libcudnn*, libnvidia-*) and glibc are left out:
# the GPU machine's own are used. The tarball must stay under 64 MiB (the device tool's limit).
#
#   bench/gpu/package.sh [BUILD_DIR] [OUT_TARBALL]
#   defaults: build-cuda, build-cuda-pkg/gpuhive-gpu.tar.gz (both git-ignored, so `run` can carry it)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-cuda}
OUT=${2:-build-cuda-pkg/gpuhive-gpu.tar.gz}
JOBS=${JOBS:-2}
LIMIT=$((64 * 1024 * 1024))

TESTS=(cuda_cross_backend_test cuda_fallback_test cuda_kernel_contracts_test memory_cuda_test)
BINS=(gpuhive gpuhive_cuda_bench)
# The modules gpuhive loads at run time from its own folder (built with it): the CUDA execution
# plugin, and gRPC (serve's --grpc-port, bench scenario over gRPC).
MODULES=(libgpuhive_cuda.so libgpuhive_grpc.so)

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGPUHIVE_WITH_CUDA=ON
fi
grep -q 'GPUHIVE_WITH_CUDA:BOOL=ON' "$BUILD/CMakeCache.txt" || { echo "package.sh: $BUILD is not a CUDA build" >&2; exit 1; }
cmake --build "$BUILD" -j"$JOBS" --target "${BINS[@]}" "${TESTS[@]}"

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/gpuhive-gpu
mkdir -p "$PKG/bin" "$PKG/tests" "$PKG/lib"
for b in "${BINS[@]}" "${MODULES[@]}"; do cp "$BUILD/bin/$b" "$PKG/bin/"; done
for t in "${TESTS[@]}"; do cp "$BUILD/tests/$t" "$PKG/tests/"; done
# The built-in repository: every config.pbtxt, and the models bench/export_models.py does not make
# (text_detector, tiny_mlp); run_all.sh links the exported ones in (resnet50, mobilenet_v3, ...).
for cfg in models/repository/*/config.pbtxt; do
  [ -f "$cfg" ] || continue
  m=$(basename "$(dirname "$cfg")")
  mkdir -p "$PKG/repository/$m/1"
  cp "$cfg" "$PKG/repository/$m/"
done
for m in text_detector tiny_mlp; do
  if [ -f "models/repository/$m/1/model.onnx" ]; then
    cp models/repository/$m/1/model.onnx "$PKG/repository/$m/1/"
  else
    echo "package.sh: models/repository/$m is missing (make models); the GPU check will skip it" >&2
  fi
done

# Shared libraries: everything ldd resolves except glibc's own and the CUDA/driver stack.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so|libcuda\.so|libcudart|libcublas|libcudnn|libnvidia|libnvrtc|libnvJitLink)'
for f in "$PKG"/bin/* "$PKG"/tests/*; do
  ldd "$f" | awk '/=> \//{print $1, $3}'
done | sort -u | while read -r name path; do
  if [[ "$name" =~ $skip ]]; then continue; fi
  cp -L "$path" "$PKG/lib/$name"
done
strip --strip-unneeded "$PKG"/bin/* "$PKG"/tests/* 2>/dev/null || true
strip --strip-unneeded "$PKG"/lib/* 2>/dev/null || true

# What the binaries expect from the GPU machine (for run_all.sh's library search).
for f in "$PKG"/bin/* "$PKG"/tests/*; do ldd "$f" | awk '{print $1}'; done | grep -E "$skip" | grep -vE '^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl|librt|libresolv)' | sort -u > "$PKG/needs-from-host.txt" || true
git rev-parse HEAD > "$PKG/commit.txt" 2>/dev/null || true

mkdir -p "$(dirname "$OUT")"
tar -C "$STAGE" -czf "$OUT" gpuhive-gpu
size=$(stat -c %s "$OUT")
# The limit covers everything that travels: the working tree (tracked files and untracked ones git
# does not ignore) plus the carried package.
tree=$(git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
total=$((size + tree))
echo "package.sh: $OUT is $((size / 1024 / 1024)) MiB; working tree $((tree / 1024 / 1024)) MiB; together $((total / 1024 / 1024)) MiB of 64; libraries: $(ls "$PKG/lib" | wc -l); needs from the GPU machine: $(tr '\n' ' ' < "$PKG/needs-from-host.txt")"
if [ "$total" -ge "$LIMIT" ]; then
  echo "package.sh: the package and the working tree together are over the 64 MiB that may travel" >&2
  exit 1
fi
