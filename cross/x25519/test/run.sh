#!/usr/bin/env bash
# Runs the tests or the benchmark of cross/x25519 (built by x25519.mk) for the
# given architectures: x86_64 natively, ARM under qemu-user.
#
#   run.sh test ARCH...    test_x25519, then TLS interop against openssl
#                          s_server on 127.0.0.1 (X25519 forced, then P-256);
#                          X25519_MILLION=1: also RFC 7748's 1,000,000
#                          iterations on x86_64
#   run.sh bench ARCH...   operations per second on x86_64; instructions per
#                          scalar multiplication under qemu
set -euo pipefail
cd "$(dirname "$0")/../../.."
mode=$1
shift
declare -A run=([x86_64]="" [aarch64]="qemu-aarch64-static" [armv7]="qemu-arm-static")
dir() { echo ".build-cross/$1/x25519-test"; }
tmp=$(mktemp -d /tmp/agent-x25519.XXXXXX)
source cross/interop/s_server.sh
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

test_mode() {
  local pass=0 fail=0 a out p f args
  for a in "$@"; do
    # under qemu, fewer random cases (--quick): it runs 10-20x slower
    args=""
    if [ -n "${run[$a]}" ]; then args="--quick"; fi
    if [ -z "${run[$a]}" ] && [ "${X25519_MILLION:-}" = 1 ]; then args="--million"; fi
    echo "$a:"
    if out=$(timeout 200 ${run[$a]} "$(dir "$a")/test_x25519" $args 2>&1); then :; fi
    echo "$out" | sed -e 's/^/  /'
    if read -r p f < <(echo "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' | tail -1) && [ -n "$p" ]; then
      pass=$((pass + p)); fail=$((fail + f))
    else
      echo "  FAIL $a: the test program did not finish"; fail=$((fail + 1))
    fi
  done

  # Constant time: memcheck sees the scalar and u as undefined and reports any
  # branch or address that depends on them (x86_64 natively).
  local ct=".build-cross/x86_64/x25519-test/ct_x25519"
  case " $* " in *" x86_64 "*)
    if ! command -v valgrind >/dev/null || [ ! -x "$ct" ]; then
      echo "constant time: skipped (no valgrind; cross/deps.sh installs it)"
    else
      echo "constant time (x86_64 under valgrind memcheck):"
      if out=$(timeout 120 valgrind -q --error-exitcode=3 "$ct" 2>&1); then :; fi
      echo "$out" | sed -e 's/^/  /'
      if echo "$out" | grep -q '^==' || ! read -r p f < <(echo "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' | tail -1) || [ -z "$p" ]; then
        echo "  FAIL constant time: memcheck reported secret-dependent branches or addresses"; fail=$((fail + 1))
      else
        pass=$((pass + p)); fail=$((fail + f))
      fi
    fi
  esac

  # Interop: our client (release mbedTLS + our ALT code) against OpenSSL.
  interop_cert "$tmp"
  local group ogroup bytes
  for a in "$@"; do
    bytes=262144
    if [ -n "${run[$a]}" ]; then bytes=65536; fi
    for group in x25519 p256; do
      case $group in x25519) ogroup=X25519 ;; p256) ogroup=P-256 ;; esac
      interop_start "$tmp" -groups "$ogroup"
      if [ -z "$port" ]; then
        echo "  FAIL interop $a/$group: openssl s_server did not start"; cat "$tmp/server.out"; fail=$((fail + 1))
      elif out=$(timeout 120 ${run[$a]} "$(dir "$a")/interop" "$port" "$tmp/cert.pem" "$group" "$bytes" 2>&1); then
        echo "  $a: $out"; pass=$((pass + 1))
      else
        echo "  FAIL $a/$group: $out"; fail=$((fail + 1))
      fi
      interop_stop
    done
  done
  echo "x25519: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}

# Instructions executed by the guest for N operations: qemu logs every
# executed instruction (-singlestep, -d nochain,exec); the count for 0
# operations (start-up, the peer's key) is subtracted.
insns() {  # arch what n
  ${run[$1]} -singlestep -d nochain,exec -D /dev/stdout "$(dir "$1")/bench_x25519" --ops "$2" "$3" | grep -c '^Trace'
}

bench_mode() {
  local a what n base c ref ours
  for a in "$@"; do
    if [ -z "${run[$a]}" ]; then
      echo "$a (native):"
      "$(dir "$a")/bench_x25519" | sed -e 's/^/  /'
      continue
    fi
    echo "$a (under ${run[$a]}: guest instructions per scalar multiplication; no timing)"
    printf '  %-24s %14s %14s %9s\n' "" "mbedTLS 2.28" "ours" "fewer"
    for what in "" -base; do
      base=$(insns "$a" "ref$what" 0)
      c=$(insns "$a" "ref$what" 1)
      ref=$((c - base))
      n=20
      base=$(insns "$a" "ours$what" 0)
      c=$(insns "$a" "ours$what" "$n")
      ours=$(( (c - base) / n ))
      case $what in "") label="X25519, variable point" ;; *) label="X25519, base point" ;; esac
      printf '  %-24s %14d %14d %8.1fx\n' "$label" "$ref" "$ours" "$(awk -v r="$ref" -v o="$ours" 'BEGIN { print r / o }')"
    done
  done
}

case $mode in
  test) test_mode "$@" ;;
  bench) bench_mode "$@" ;;
  *) echo "usage: $0 test|bench ARCH..." >&2; exit 2 ;;
esac
