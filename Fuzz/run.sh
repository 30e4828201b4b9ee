#!/usr/bin/env bash
# Runs the fuzz targets built by Fuzz/fuzz.mk (`make fuzz`, `make fuzz-regress`).
#
#   Fuzz/run.sh fuzz    BUILD_DIR SECONDS TARGET...   fuzz each target for SECONDS
#   Fuzz/run.sh regress BUILD_DIR 0       TARGET...   run each once over its corpus and FailCases
#
# fuzz: the committed seeds (Fuzz/corpus/<t>) and crashers (Fuzz/FailCases/<t>)
# are read-only inputs; new corpus entries go to BUILD_DIR/corpus/<t> (kept
# between runs, not committed); a crash, leak, timeout or out-of-memory input is
# written to Fuzz/artifacts/<t>/ (ignored by git: reduce it, then commit it
# under Fuzz/FailCases/<t>/ with a regression test). Prints one line per target
# and exits 1 if any target found something.
set -uo pipefail

mode=$1 build=$2 seconds=$3
shift 3
cd "$(dirname "$0")/.."

# Swift seeds its hashing per process: Dictionary order (which the mux iterates)
# would differ between runs and a crasher might not replay. Fix it.
export SWIFT_DETERMINISTIC_HASHING=1
# Swift's own crash backtracer fights ASan (and can hang): libFuzzer reports the crash.
export SWIFT_BACKTRACE=enable=no
# Leaks are findings too; keep ASan's reports short and symbolized.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:symbolize=1:print_summary=1}

failed=0
printf '%-10s %12s %10s %8s %8s %7s  %s\n' target executions exec/s cov ft corpus findings
for t in "$@"; do
  bin=$build/fuzz-$t
  dirs=()
  for d in Fuzz/corpus/$t Fuzz/FailCases/$t; do [ -d "$d" ] && dirs+=("$d"); done
  log=$build/log-$t.txt
  common=(-timeout=10 -rss_limit_mb=4096 -print_final_stats=1)
  [ -f "Fuzz/dict/$t.dict" ] && common+=("-dict=Fuzz/dict/$t.dict")
  start=$(date +%s%N)
  if [ "$mode" = regress ]; then
    # -runs=0: execute every input of the given directories once, no mutation.
    mkdir -p "$build/regress-artifacts"
    "$bin" "${common[@]}" -runs=0 -artifact_prefix="$build/regress-artifacts/$t-" "${dirs[@]}" >"$log" 2>&1
    rc=$?
  else
    mkdir -p "$build/corpus/$t" "Fuzz/artifacts/$t"
    before=$(ls "Fuzz/artifacts/$t" | wc -l)
    "$bin" "${common[@]}" -max_total_time="$seconds" -artifact_prefix="Fuzz/artifacts/$t/" \
      "$build/corpus/$t" "${dirs[@]}" >"$log" 2>&1
    rc=$?
  fi
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | awk '{print $2}')
  last=$(grep -E '(INITED|DONE|pulse|NEW|REDUCE) +cov:' "$log" | tail -1)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.*corp: \([0-9]*\).*/\1/p' <<<"$last")
  if [ "$mode" = regress ]; then
    inputs=$(find "${dirs[@]}" -type f | wc -l)
    if [ $rc -eq 0 ]; then what="ok: $inputs inputs in $ms ms"; else what="FAILED (exit $rc), see $log"; failed=1; fi
  else
    new=$(( $(ls "Fuzz/artifacts/$t" | wc -l) - before ))
    if [ $rc -eq 0 ] && [ $new -eq 0 ]; then
      what="none"
    else
      failed=1
      kind=$(grep -m1 -oE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer): [a-z-]+|Fatal error: .*|fuzz invariant: .*' "$log" | head -1)
      what="$new new artifact(s) in Fuzz/artifacts/$t/: ${kind:-exit $rc} (log $log)"
    fi
  fi
  printf '%-10s %12s %10s %8s %8s %7s  %s\n' "$t" "${execs:--}" "${rate:--}" "${cov:--}" "${ft:--}" "${corp:--}" "$what"
done
exit $failed
