#!/usr/bin/env bash
# Installs what a fresh Debian bookworm machine with the Swift toolchain lacks
# for building and testing agent. Idempotent: installs only missing packages.
#
#   cross/deps.sh            build and unit/integration test packages
set -euo pipefail

want=(
  gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf   # cross C compilers, crt files, libgcc
  musl-dev musl-dev:arm64 musl-dev:armhf          # static libc for the release binaries
  qemu-user-static                   # run the ARM release binaries in tests
  python3                            # integration tests
  openssl                            # test certificates and s_client checks
  openssh-server openssh-client      # ssh through the tunnel (tests), OpenSSH baseline (bench)
  gdb                                # gcore for the relay canary test
  binutils file                      # readelf, strip, file
  curl chromium                      # SNI routing tests: a real HTTPS client and a headless browser
  nginx-light tinyproxy              # a TLS-terminating front that passes the Upgrade; an HTTP CONNECT proxy
  valgrind                           # constant-time check of cross/x25519 (memcheck), bench instruction counts
  systemd groff-base lintian busybox # packaging checks: systemd-analyze verify, man page rendering, lintian, ash -n
)

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

need_arch=()
for a in arm64 armhf; do
  if ! dpkg --print-foreign-architectures | grep -qx "$a"; then need_arch+=("$a"); fi
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The integration tests run under pytest with whichever python3 is first on PATH.
if ! python3 -c 'import pytest' 2>/dev/null; then
  echo "deps: installing pytest" >&2
  python3 -m pip install -q pytest 2>/dev/null || missing+=(python3-pytest)
fi
# cross/p256's tests (OpenSSL's side of the differential tests) and the benchmarks' simulated
# devices use the `cryptography` package.
if ! python3 -c 'import cryptography' 2>/dev/null; then
  echo "deps: installing cryptography" >&2
  python3 -m pip install -q cryptography 2>/dev/null || missing+=(python3-cryptography)
fi

if [ ${#missing[@]} -eq 0 ] && [ ${#need_arch[@]} -eq 0 ]; then
  exit 0
fi

for a in "${need_arch[@]}"; do $sudo dpkg --add-architecture "$a"; done
echo "deps: installing ${missing[*]}" >&2
# A mirror in mid-sync can fail one index file; apt then keeps the older one.
# Retry a few times, and go on if the install itself succeeds.
for i in 1 2 3; do
  if $sudo apt-get update -q >/tmp/agent-apt-update.log 2>&1; then break; fi
  echo "deps: apt-get update attempt $i had errors (see /tmp/agent-apt-update.log); retrying" >&2
  sleep 2
done
export DEBIAN_FRONTEND=noninteractive
for i in 1 2 3; do
  if $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/agent-apt-install.log 2>&1; then
    exit 0
  fi
  echo "deps: apt-get install attempt $i failed; retrying" >&2
  $sudo apt-get update -q >/dev/null 2>&1 || true
  sleep 3
done
tail -20 /tmp/agent-apt-install.log >&2
echo "deps: could not install: ${missing[*]}" >&2
exit 1
