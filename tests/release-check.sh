#!/usr/bin/env bash
# Runs selftest, keygen and id with each release binary (ARM under qemu-user)
# and checks that every architecture prints the same ID for the same key file.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/agent-release.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
declare -A run=([x86_64]="" [aarch64]="qemu-aarch64-static" [armv7]="qemu-arm-static")
pass=0; fail=0
ok()   { echo "ok   $*"; pass=$((pass+1)); }
bad()  { echo "FAIL $*"; fail=$((fail+1)); }

# One key made by the first architecture; every architecture must read it the same.
first=$1
${run[$first]} build/agent-$first keygen --identity "$tmp/shared.pem" >"$tmp/id-$first" 2>/dev/null
for a in "$@"; do
  bin=build/agent-$a
  if file "$bin" | grep -q 'statically linked'; then ok "$a: $(file -b "$bin" | cut -d, -f1-2), statically linked"; else bad "$a: not static: $(file -b "$bin")"; fi
  if out=$(timeout 120 ${run[$a]} "$bin" selftest 2>&1); then ok "$a: selftest ($(echo "$out" | grep '^ok   tls' | sed 's/^ok   tls: //'))"; else bad "$a: selftest"; echo "$out"; fi
  if id1=$(${run[$a]} "$bin" keygen --identity "$tmp/key-$a.pem" 2>/dev/null) && [ ${#id1} -eq 32 ]; then
    mode=$(stat -c %a "$tmp/key-$a.pem")
    id2=$(${run[$a]} "$bin" id --identity "$tmp/key-$a.pem")
    if [ "$id1" = "$id2" ] && [ "$mode" = 600 ]; then ok "$a: keygen/id ($id1, mode $mode)"; else bad "$a: keygen gave $id1, id gave $id2, mode $mode"; fi
  else
    bad "$a: keygen"
  fi
  idshared=$(${run[$a]} "$bin" id --identity "$tmp/shared.pem")
  if [ "$idshared" = "$(cat "$tmp/id-$first")" ]; then ok "$a: same ID for the shared key ($idshared)"; else bad "$a: shared key gave $idshared, expected $(cat "$tmp/id-$first")"; fi
  if ${run[$a]} "$bin" --version | grep -qE '^agent .*mbedTLS 3\.6\.[0-9]+\)'; then ok "$a: --version"; else bad "$a: --version"; fi
done
echo "release checks: $pass passed, $fail failed"
[ $fail -eq 0 ]
