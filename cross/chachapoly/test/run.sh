#!/usr/bin/env bash
# Runs the tests or the benchmark of cross/chachapoly (built by chachapoly.mk)
# for the given architectures: x86_64 natively, ARM under qemu-user.
#
#   run.sh test ARCH...    every implementation's tests, then TLS interop
#                          against openssl s_server on 127.0.0.1
#   run.sh bench ARCH...   MB/s on x86_64; instructions per byte under qemu
set -euo pipefail
cd "$(dirname "$0")/../../.."
mode=$1
shift
declare -A run=([x86_64]="" [aarch64]="qemu-aarch64-static" [armv7]="qemu-arm-static")
dir() { echo ".build-cross/$1/chachapoly-test"; }
tmp=$(mktemp -d /tmp/agent-chachapoly.XXXXXX)
source cross/interop/s_server.sh
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

test_mode() {
  local pass=0 fail=0 a out p f quick
  for a in "$@"; do
    # under qemu, fewer random cases (--quick): it runs about 10x slower
    quick=""
    if [ -n "${run[$a]}" ]; then quick="--quick"; fi
    echo "$a:"
    if out=$(timeout 100 ${run[$a]} "$(dir "$a")/test_chachapoly" --impl all $quick 2>&1); then :; fi
    echo "$out" | sed -e 's/^/  /'
    if read -r p f < <(echo "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' | tail -1) && [ -n "$p" ]; then
      pass=$((pass + p)); fail=$((fail + f))
    else
      echo "  FAIL $a: the test program did not finish"; fail=$((fail + 1))
    fi
  done

  # Interop: our client (release mbedTLS + our ALT code) against OpenSSL.
  interop_cert "$tmp"
  local impls impl
  for a in "$@"; do
    case $a in
      x86_64) impls="avx2 sse2 portable" ;;
      *) impls="neon portable" ;;
    esac
    for impl in $impls; do
      interop_start "$tmp" -ciphersuites TLS_CHACHA20_POLY1305_SHA256
      if [ -z "$port" ]; then
        echo "  FAIL interop $a/$impl: openssl s_server did not start"; cat "$tmp/server.out"; fail=$((fail + 1))
      elif out=$(timeout 120 ${run[$a]} "$(dir "$a")/interop" "$port" "$tmp/cert.pem" 1048576 "$impl" 2>&1); then
        echo "  $a: $out"; pass=$((pass + 1))
      elif echo "$out" | grep -q "not available"; then
        echo "  $a: interop with $impl skipped (not available on this CPU)"
      else
        echo "  FAIL $a/$impl: $out"; fail=$((fail + 1))
      fi
      interop_stop
    done
  done
  echo "chachapoly: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}

# Instructions executed by the guest for N records of SIZE bytes: qemu logs
# every executed instruction (-singlestep, -d nochain,exec); the count for 0
# records (start-up, key setup) is subtracted.
insns() {  # arch impl size n
  ${run[$1]} -singlestep -d nochain,exec -D /dev/stdout "$(dir "$1")/bench_chachapoly" --ops "$2" "$3" "$4" | grep -c '^Trace'
}

bench_mode() {
  local a impl size n base c line
  for a in "$@"; do
    if [ -z "${run[$a]}" ]; then
      echo "$a (native):"
      "$(dir "$a")/bench_chachapoly" | sed -e 's/^/  /'
      continue
    fi
    echo "$a (under ${run[$a]}: guest instructions per byte, AEAD encrypt of one record; no timing)"
    printf '  %-22s %9s %9s %9s\n' "" "64 B" "1 KiB" "16 KiB"
    for impl in ref neon portable; do
      line=""
      for size in 64 1024 16384; do
        n=$((32768 / size)); if [ $n -lt 2 ]; then n=2; fi
        base=$(insns "$a" "$impl" "$size" 0)
        c=$(insns "$a" "$impl" "$size" "$n")
        line="$line $(awk -v c="$c" -v b="$base" -v n="$n" -v s="$size" 'BEGIN { printf "%9.2f", (c - b) / n / s }')"
        eval "ipb_${impl}_${size}=$(awk -v c="$c" -v b="$base" -v n="$n" -v s="$size" 'BEGIN { printf "%.4f", (c - b) / n / s }')"
      done
      case $impl in
        ref) printf '  %-22s%s\n' "mbedTLS portable" "$line" ;;
        *) printf '  %-22s%s\n' "ours: $impl" "$line"
           printf '  %-22s' "  fewer than mbedTLS"
           for size in 64 1024 16384; do
             eval "r=\$ipb_ref_$size; o=\$ipb_${impl}_$size"
             awk -v r="$r" -v o="$o" 'BEGIN { printf " %8.2fx", r / o }'
           done
           echo ;;
      esac
    done
  done
}

case $mode in
  test) test_mode "$@" ;;
  bench) bench_mode "$@" ;;
  *) echo "usage: $0 test|bench ARCH..." >&2; exit 2 ;;
esac
