#!/usr/bin/env bash
# Runs the tests or the benchmark of cross/p256 (built by p256.mk) for the
# given architectures: x86_64 natively, ARM under qemu-user.
#
#   run.sh test ARCH...    OpenSSL makes vectors (test/vectors.py gen); each
#                          architecture's test_p256 checks them, its known
#                          answers and edge cases, and writes its own
#                          signatures, keys and ECDH secrets, which OpenSSL
#                          checks (vectors.py check); then the constant-time
#                          check under valgrind (x86_64). Ends with
#                          "p256: N passed, M failed"; non-zero exit on failure.
#   run.sh bench ARCH...   microseconds per operation on x86_64, with
#                          `openssl speed` in the same run; under qemu, guest
#                          instructions per operation (p256-m's too with
#                          P256_BENCH_REF=1: slow) and wall time; each with
#                          the "before" build (P256_BASE) when there is one
set -euo pipefail
cd "$(dirname "$0")/../../.."
mode=$1
shift
declare -A run=([x86_64]="" [aarch64]="qemu-aarch64-static" [armv7]="qemu-arm-static")
dir() { echo ".build-cross/$1/p256-test"; }
tmp=$(mktemp -d /tmp/agent-p256.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# "N passed, M failed" (the last such line, with an optional prefix) -> "N M"
counts() { sed -n 's/^\([a-z]*: \)\{0,1\}\([0-9]*\) passed, \([0-9]*\) failed$/\2 \3/p' | tail -1; }

test_mode() {
  local pass=0 fail=0 a out p f args
  if ! python3 -c 'import cryptography' 2>/dev/null; then
    echo "FAIL: python3 cryptography (OpenSSL) is missing: no differential tests"; fail=$((fail + 1))
    : > "$tmp/vectors"
  else
    python3 cross/p256/test/vectors.py gen 100 > "$tmp/vectors"
  fi
  for a in "$@"; do
    # under qemu, fewer random cases (--quick): it runs 10-20x slower
    args=""
    if [ -n "${run[$a]}" ]; then args="--quick"; fi
    echo "$a:"
    if out=$(timeout 300 ${run[$a]} "$(dir "$a")/test_p256" $args "$tmp/vectors" "$tmp/ours-$a" 2>&1); then :; fi
    echo "$out" | sed -e 's/^/  /'
    if read -r p f < <(echo "$out" | counts) && [ -n "$p" ]; then
      pass=$((pass + p)); fail=$((fail + f))
    else
      echo "  FAIL $a: the test program did not finish"; fail=$((fail + 1))
    fi
    if [ "$a" != armv7 ]; then
      # white-box: inversions, recoding (64-bit targets)
      if out=$(timeout 300 ${run[$a]} "$(dir "$a")/internal_p256" 2>&1); then :; fi
      echo "$out" | sed -e 's/^/  /'
      if read -r p f < <(echo "$out" | counts) && [ -n "$p" ] && [ "$p" -gt 0 ]; then
        pass=$((pass + p)); fail=$((fail + f))
      else
        echo "  FAIL $a: internal_p256 did not finish"; fail=$((fail + 1))
      fi
    fi
    if [ -s "$tmp/vectors" ]; then
      # our signatures, key pairs and secrets, checked by OpenSSL
      if out=$(python3 cross/p256/test/vectors.py check "$tmp/ours-$a" 2>&1); then :; fi
      echo "$out" | sed -e 's/^/  /'
      if read -r p f < <(echo "$out" | counts) && [ -n "$p" ] && [ "$p" -gt 0 ]; then
        pass=$((pass + p)); fail=$((fail + f))
      else
        echo "  FAIL $a: OpenSSL's check did not run"; fail=$((fail + 1))
      fi
    fi
  done

  # Constant time: memcheck sees private keys and random bytes as undefined and
  # reports any branch or address that depends on them (x86_64 natively).
  local ct=".build-cross/x86_64/p256-test/ct_p256"
  case " $* " in *" x86_64 "*)
    if ! command -v valgrind >/dev/null || [ ! -x "$ct" ]; then
      echo "constant time: skipped (no valgrind; cross/deps.sh installs it)"
    else
      echo "constant time (x86_64 under valgrind memcheck):"
      if out=$(timeout 300 valgrind -q --error-exitcode=3 "$ct" 2>&1); then :; fi
      echo "$out" | sed -e 's/^/  /'
      if echo "$out" | grep -q '^==' || ! read -r p f < <(echo "$out" | counts) || [ -z "$p" ]; then
        echo "  FAIL constant time: memcheck reported secret-dependent branches or addresses"; fail=$((fail + 1))
      else
        pass=$((pass + p)); fail=$((fail + f))
      fi
    fi
  esac
  echo "p256: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}

# Instructions executed by the guest for N operations: qemu logs every
# executed instruction (-singlestep, -d nochain,exec); the count for 0
# operations (start-up: two key pairs and a signature) is subtracted.
insns() {  # arch what n
  ${run[$1]} -singlestep -d nochain,exec -D /dev/stdout "$(dir "$1")/bench_p256" --ops "$2" "$3" | grep -c '^Trace'
}

bench_mode() {
  local a what start c n ours before ref has_base has_ref
  for a in "$@"; do
    if [ -z "${run[$a]}" ]; then
      echo "$a (native, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)):"
      "$(dir "$a")/bench_p256" | sed -e 's/^/  /'
      echo "  OpenSSL ($(openssl version | cut -d' ' -f1-2)), same run:"
      openssl speed -seconds 1 ecdsap256 ecdhp256 2>/dev/null | grep -E 'sign/s|op/s|nistp256|P-256' | sed -e 's/^/  /'
      continue
    fi
    # p256-m's counts take about 10 minutes per architecture (tens of
    # millions of logged instructions): only with P256_BENCH_REF=1; the
    # wall-time table below compares with it anyway.
    has_ref=0 has_base=0
    if [ "${P256_BENCH_REF:-}" = 1 ] && "${run[$a]}" "$(dir "$a")/bench_p256" --ops ref-sign 0 2>/dev/null; then has_ref=1; fi
    if "${run[$a]}" "$(dir "$a")/bench_p256" --ops base-sign 0 2>/dev/null; then has_base=1; fi
    echo "$a (under ${run[$a]}): guest instructions per operation"
    printf '  %-8s %12s %12s %8s %12s\n' "" "ours" "before" "fewer" "p256-m"
    n=2
    for what in sign verify keygen keyshare ecdh; do
      start=$(insns "$a" "ours-$what" 0)
      c=$(insns "$a" "ours-$what" $n)
      ours=$(( (c - start) / n ))
      before=- ref=-
      if [ "$has_base" = 1 ]; then
        c=$(insns "$a" "base-$what" $n)
        before=$(( (c - start) / n ))
      fi
      if [ "$has_ref" = 1 ]; then
        c=$(insns "$a" "ref-$what" 1)
        ref=$((c - start))
      fi
      printf '  %-8s %12s %12s %8s %12s\n' "$what" "$ours" "$before" \
        "$(if [ "$has_base" = 1 ]; then awk -v b="$before" -v o="$ours" 'BEGIN { printf "%.2fx", b / o }'; else echo -; fi)" "$ref"
    done
    echo "$a (under ${run[$a]}): wall time, same run"
    "${run[$a]}" "$(dir "$a")/bench_p256" | sed -e 's/^/  /'
  done
}

case $mode in
  test) test_mode "$@" ;;
  bench) bench_mode "$@" ;;
  *) echo "usage: $0 test|bench ARCH..." >&2; exit 2 ;;
esac
