#!/usr/bin/env bash
# bench/admission_profile.sh AGENT_UNSTRIPPED [PORT] [N]: user-space instructions per full
# admission of a relay (docs/PERFORMANCE.md, "The hello on the relay's TLS key, and the
# admission end to end"). The relay runs under valgrind's callgrind on 127.0.0.1 with open
# enrollment; bench/loadgen (make build/loadgen) connects 5 devices to warm up, the counters
# are zeroed, N more devices (default 40) are admitted one at a time, the counters dumped.
# Prints the instructions per admission and where the callgrind file is. Everything it
# starts is stopped by PID; the relay's state lives in a temporary directory.
set -u
bin=$1; port=${2:-18443}; n=${3:-40}
here=$(cd "$(dirname "$0")/.." && pwd)
lg=$here/build/loadgen
st=$(mktemp -d); out=$(mktemp -d)
valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" "$bin" --role relay --listen 127.0.0.1:"$port" \
    --state "$st" --open-enrollment --log-level warn > "$out/relay.log" 2>&1 &
vp=$!
for _ in $(seq 1 150); do grep -q "pin sha256" "$out/relay.log" 2>/dev/null && break; sleep 0.2; done
pin=$(grep -o "sha256:[0-9a-f]*" "$out/relay.log" | head -1)
[ -n "$pin" ] || { echo "relay did not start: $out/relay.log" >&2; kill "$vp"; exit 1; }
"$lg" --relay 127.0.0.1:"$port" --pin "$pin" --count 5 --index-base 0 --hold 2 --concurrency 1 > /dev/null 2>&1
callgrind_control -z "$vp" > /dev/null
"$lg" --relay 127.0.0.1:"$port" --pin "$pin" --count "$n" --index-base 100 --hold 6 --concurrency 1 --rate 20 \
    > "$out/loadgen.log" 2>&1
callgrind_control -d "$vp" > /dev/null
sleep 0.5
kill "$vp"; wait "$vp" 2>/dev/null
f=$(ls "$out"/cg.*.1 | head -1)
total=$(callgrind_annotate "$f" 2>/dev/null | grep -m1 "PROGRAM TOTALS" | awk '{gsub(",", "", $1); print $1}')
admitted=$(grep -o "admissions [0-9]*" "$out/loadgen.log" | tail -1 | cut -d" " -f2)
echo "$bin: $((total / ${admitted:-$n})) instructions per admission (${admitted:-?} admissions); callgrind file $f"
rm -rf "$st"
