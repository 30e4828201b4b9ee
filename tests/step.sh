#!/usr/bin/env bash
# tests/step.sh NAME COMMAND...: runs one step of `make test`, showing its output
# and keeping a copy in build/test-logs/NAME.log for tests/summary.sh.
set -uo pipefail
name=$1; shift
mkdir -p build/test-logs
"$@" 2>&1 | tee "build/test-logs/$name.log"
exit "${PIPESTATUS[0]}"
