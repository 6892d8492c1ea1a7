#!/usr/bin/env bash
# Installs the Debian packages gpuhive builds, tests and benchmarks with.
# Idempotent: when everything is present it only runs dpkg-query (well under a second).
# Usage: scripts/install-deps.sh [--with-bench]   (bench adds python3-torch & co, onnxruntime-node)
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build ccache pkg-config git
  libdnnl-dev ocl-icd-opencl-dev libonnx-dev libonnx-testdata python3-onnx
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libboost-dev libsimdjson-dev nlohmann-json3-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
  prometheus wrk
  python3-grpcio python3-grpc-tools python3-yaml python3-protobuf
)
# kubectl checks the deploy/ manifests (tests/deploy): Debian's unless one is installed already.
command -v kubectl >/dev/null 2>&1 || pkgs+=(kubernetes-client)
if [[ "${1:-}" == "--with-bench" ]]; then
  pkgs+=(python3-torch python3-torchvision python3-numpy gnuplot-nox)
  # Node.js may come from elsewhere (a newer build); Debian's is only the fallback.
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#pkgs[@]} packages present"
fi

if [[ "${1:-}" == "--with-bench" ]]; then
  here="$(cd "$(dirname "$0")/.." && pwd)"
  if [[ ! -f "$here/bench/node_modules/onnxruntime-node/package.json" ]]; then
    echo "install-deps: npm install onnxruntime-node (bench peer)"
    (cd "$here/bench" && npm install --ignore-scripts --no-audit --no-fund >/dev/null)
  fi
fi
