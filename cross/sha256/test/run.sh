#!/usr/bin/env bash
# Runs cross/sha256's tests or benchmark (built by sha256.mk), x86_64 natively.
#
#   run.sh test    both implementations (the SHA extensions if this CPU has
#                  them, the portable C forced); ends with "sha256: N passed, M failed"
#   run.sh bench   ns per block and per short hash, before (mbedTLS's C) and after
set -uo pipefail
cd "$(dirname "$0")/../../.."
prog=.build-cross/x86_64/sha256-test/test_sha256
case ${1:-test} in
  test)
    pass=0; fail=0
    if out=$(timeout 120 "$prog" --impl all 2>&1); then :; fi
    echo "$out" | sed -e 's/^/  /'
    if read -r p f < <(echo "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' | tail -1) && [ -n "$p" ]; then
      pass=$p; fail=$f
    else
      echo "  FAIL: the test program did not finish"; fail=1
    fi
    echo "sha256: $pass passed, $fail failed"
    [ "$fail" = 0 ]
    ;;
  bench)
    "$prog" --bench
    ;;
esac
