#!/usr/bin/env bash
# Proves the README's two commands on a machine with nothing installed by hand: builds a clean
# Debian 12 root with mmdebstrap, copies this checkout in (tracked and untracked-but-not-ignored
# files only, as a fresh clone would have them), and runs inside it
#   1. `make run` until the server answers ready on /v2/health/ready (then stops it), and
#   2. `make test-fast`.
# Run it whenever dependencies or the build change. Needs root, mmdebstrap and Debian's mirror;
# takes a while on 2 cores (the whole build, CPU-only: the root has no CUDA toolkit).
#
#   scripts/fresh-machine-check.sh [ROOT_DIR]      (default /tmp/gpuhive-fresh-root; reused if present)
# Environment: KEEP_ROOT=1 keeps the root afterwards; SUITE (default bookworm); LOG (default
# $ROOT_DIR.log).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
ROOT=${1:-/tmp/gpuhive-fresh-root}
SUITE=${SUITE:-bookworm}
LOG=${LOG:-$ROOT.log}
: > "$LOG"
say() { echo "[fresh $(date +%H:%M:%S)] $*" | tee -a "$LOG"; }

command -v mmdebstrap >/dev/null || { echo "fresh-machine-check: needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "fresh-machine-check: run as root (chroot)" >&2; exit 2; }

if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  say "creating a clean $SUITE root in $ROOT"
  rm -rf "$ROOT"
  # Only what a stock Debian/Ubuntu install has (apt, ca-certificates, sudo-less root); make and
  # everything else must come from the project's own install step.
  mmdebstrap --variant=apt --include=ca-certificates,make "$SUITE" "$ROOT" >> "$LOG" 2>&1
fi

say "copying the checkout (git ls-files) into $ROOT/src/gpuhive"
rm -rf "$ROOT/src/gpuhive"
mkdir -p "$ROOT/src/gpuhive"
git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -C "$ROOT/src/gpuhive" -xf -
# The steering files beside a checkout (read-only in CI) travel too, as in CI's fresh clone.
[ -d ../shared ] && { mkdir -p "$ROOT/src/shared"; cp -r ../shared/. "$ROOT/src/shared/"; }

mounts=()
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
  [ "${KEEP_ROOT:-0}" = 1 ] || { say "removing $ROOT"; rm -rf "$ROOT"; }
}
trap cleanup EXIT
for m in proc sys dev dev/pts; do
  mkdir -p "$ROOT/$m"
  mount --bind "/$m" "$ROOT/$m"
  mounts+=("$ROOT/$m")
done
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The network path of this machine, not its software: certificate authorities it trusts locally
# (e.g. a TLS-inspecting egress proxy's) are trusted in the root too, as npm and apt need them on
# any machine behind that proxy. Nothing else is taken from the host.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  chroot "$ROOT" update-ca-certificates >> "$LOG" 2>&1 || true
fi
extra_ca=""
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  mkdir -p "$ROOT$(dirname "$NODE_EXTRA_CA_CERTS")"
  cp "$NODE_EXTRA_CA_CERTS" "$ROOT$NODE_EXTRA_CA_CERTS"
  extra_ca="NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS"
fi

inside() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive $extra_ca bash -c "cd /src/gpuhive && $1"; }

say "make run (the README's first command) until the server answers ready"
# In its own session, so that stopping it later signals its process group only (a pkill by name
# would also reach matching processes outside the root).
inside "setsid make run HTTP_PORT=18600 GRPC_PORT=18601 > /tmp/make-run.log 2>&1 < /dev/null & echo \$! > /tmp/make-run.pid" >> "$LOG" 2>&1
ready=0
for _ in $(seq 1 2400); do  # up to 2 h: the first build of everything on 2 cores
  if inside "test -f /tmp/make-run.log && grep -q 'gpuhive ready' /tmp/make-run.log" 2>/dev/null; then
    if inside "exec 3<>/dev/tcp/127.0.0.1/18600 && printf 'GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3 && head -1 <&3 | grep -q ' 200'"; then
      ready=1
      break
    fi
  fi
  inside "kill -0 \$(cat /tmp/make-run.pid) 2>/dev/null" || break
  sleep 3
done
inside "tail -n 25 /tmp/make-run.log" | tee -a "$LOG"
if [ "$ready" != 1 ]; then
  say "FAILED: make run did not reach a ready server"
  exit 1
fi
say "make run: the server answered 200 on /v2/health/ready"
inside "kill -TERM -- -\$(cat /tmp/make-run.pid) 2>/dev/null || true; sleep 2"

say "make test-fast (the README's second command, unit tests)"
if inside "make test-fast" >> "$LOG" 2>&1; then
  tail -n 5 "$LOG"
  say "PASSED: make run and make test-fast on a clean $SUITE root"
else
  tail -n 40 "$LOG"
  say "FAILED: make test-fast"
  exit 1
fi
