#!/usr/bin/env bash
# A local demonstration of the tunnel on 127.0.0.1: a relay, a device (reverse)
# exposing a small web server, an operator (forward) fetching a page from it
# end to end encrypted. Fresh state in a temporary folder; everything is
# stopped at the end. Usage: scripts/demo.sh [path/to/agent]
set -euo pipefail
AGENT=${1:-build/agent-x86_64}
AGENT=$(cd "$(dirname "$AGENT")" && pwd)/$(basename "$AGENT")
DIR=$(mktemp -d /tmp/agent-demo.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
cd "$DIR"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*" >&2; }
# Shows a background command (tokens shortened: they are credentials) and starts it.
bg() {
  local log=$1; shift
  printf '$ %s 2>%s &\n' "${*/#$AGENT/agent}" "$log" | sed -E 's/(at1\.[A-Za-z0-9_-]{6})[A-Za-z0-9_.-]*/\1.../g'
  "$@" 2>"$log" >"$log.out" & PIDS+=($!)
}
wait_for() {  # wait_for FILE REGEX
  for _ in $(seq 1 100); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1"; cat "$1"; exit 1
}

RELAY_PORT=$(free_port); WEB_PORT=$(free_port); LOCAL_PORT=$(free_port)
mkdir web && echo "<h1>Hello from the device behind NAT</h1>" > web/index.html

say "A web service on the device, reachable only on its loopback"
bg web.log python3 -m http.server --bind 127.0.0.1 --directory web "$WEB_PORT"

say "Identities: each agent has one P-256 key; its ID is derived from the public key"
show agent keygen --identity device.pem
DEVICE=$("$AGENT" keygen --identity device.pem 2>/dev/null); echo "device ID:   $DEVICE"
show agent keygen --identity operator.pem
OPERATOR=$("$AGENT" keygen --identity operator.pem 2>/dev/null); echo "operator ID: $OPERATOR"

say "Enrollment tokens, signed with the relay's secret (valid 10 minutes)"
show agent token --secret enroll.secret --valid 600 --device "$DEVICE" ">" device.token
"$AGENT" token --secret enroll.secret --valid 600 --device "$DEVICE" > device.token 2>/dev/null
show agent token --secret enroll.secret --valid 600 --role operator --device "$OPERATOR" ">" operator.token
"$AGENT" token --secret enroll.secret --valid 600 --role operator --device "$OPERATOR" > operator.token 2>/dev/null
echo "device token: $(cut -c1-40 device.token)..."

say "The relay (its key and certificate are created in relay-state/; it prints its pin)"
bg relay.log "$AGENT" --role relay --listen "127.0.0.1:$RELAY_PORT" --state relay-state --enroll-secret enroll.secret
wait_for relay.log.out '^pin '
PIN=$(awk '/^pin/{print $2}' relay.log.out); echo "relay pin: $PIN"

say "The device: phones home, admits only the operator's key, serves loopback targets"
echo "$OPERATOR" > authorized_keys
bg device.log "$AGENT" --role reverse --relay "127.0.0.1:$RELAY_PORT" --relay-pin "$PIN" --identity device.pem \
  --token "$(cat device.token)" --authorized-keys authorized_keys
wait_for device.log tunnel_up

say "The operator: a local port that leads to 127.0.0.1:$WEB_PORT on the device"
bg operator.log "$AGENT" --role forward --relay "127.0.0.1:$RELAY_PORT" --relay-pin "$PIN" --identity operator.pem \
  --token "$(cat operator.token)" --listen "127.0.0.1:$LOCAL_PORT" --device "$DEVICE" --target "127.0.0.1:$WEB_PORT"
wait_for operator.log tunnel_up

say "Fetch the page through the tunnel"
printf '$ python3 -c "urllib.request.urlopen(\\"http://127.0.0.1:%s/\\")"\n' "$LOCAL_PORT"
PAGE=$(python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$LOCAL_PORT/', timeout=10).read().decode())")
echo "$PAGE"
echo "$PAGE" | grep -q "Hello from the device" || { echo "demo FAILED: page not received"; exit 1; }

say "What the logs say"
for f in relay device operator; do echo "-- $f"; cut -d' ' -f2- "$f.log" | sed 's/^/   /'; done

say "The relay joined the stream but holds no key to read it: the page went through"
echo "an end-to-end TLS session between the operator and the device (see docs/SECURITY.md)."
echo
echo "demo passed"
