#!/usr/bin/env bash
# Adds up what every step of `make test` reported (build/test-logs/*.log) and
# prints one closing line: "test: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
total_pass=0; total_fail=0
row() { printf '  %-28s %8s passed %5s failed\n' "$1" "$2" "$3"; total_pass=$((total_pass + $2)); total_fail=$((total_fail + $3)); }
echo "summary of make test:"
f=build/test-logs/unit.log
if [ -f $f ]; then
  if l=$(grep -E "Test run with [0-9]+ tests? in [0-9]+ suites? passed" $f | tail -1) && [ -n "$l" ]; then
    row "unit tests (swift test)" "$(echo "$l" | sed -E 's/.*with ([0-9]+) tests?.*/\1/')" 0
  else
    n=$(grep -E "Test run with [0-9]+ tests?" $f | tail -1 | sed -E 's/.*with ([0-9]+) tests?.*/\1/'); row "unit tests (swift test)" 0 "${n:-1}"
  fi
fi
for pair in "modules:modules" "chachapoly:chachapoly" "p256:p256" "sha256:sha256" "release:release checks"; do
  f=build/test-logs/${pair%%:*}.log; label=${pair#*:}
  [ -f $f ] || continue
  l=$(grep -E "^$label: [0-9]+ passed, [0-9]+ failed" $f | tail -1)
  [ -n "$l" ] && row "$label" "$(echo "$l" | sed -E 's/.*: ([0-9]+) passed.*/\1/')" "$(echo "$l" | sed -E 's/.* ([0-9]+) failed.*/\1/')"
done
f=build/test-logs/integration.log
if [ -f $f ]; then
  l=$(grep -E "[0-9]+ (passed|failed)" $f | tail -1)
  p=$(echo "$l" | grep -oE "[0-9]+ passed" | grep -oE "[0-9]+"); x=$(echo "$l" | grep -oE "[0-9]+ failed" | grep -oE "[0-9]+")
  row "integration (pytest)" "${p:-0}" "${x:-0}"
fi
f=build/test-logs/packaging.log
if [ -f $f ]; then
  l=$(grep -E "[0-9]+ (passed|failed)" $f | tail -1)
  p=$(echo "$l" | grep -oE "[0-9]+ passed" | grep -oE "[0-9]+"); x=$(echo "$l" | grep -oE "[0-9]+ failed" | grep -oE "[0-9]+")
  [ -n "$l" ] || x=1
  row "packaging (pytest)" "${p:-0}" "${x:-0}"
fi
f=build/test-logs/fuzz.log
if [ -f $f ]; then
  ok=$(grep -cE " ok: [0-9]+ inputs" $f); bad=$(grep -cE "FAIL|crash" $f)
  row "fuzz corpora and fail cases" "$ok" "$bad"
fi
echo "test: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
