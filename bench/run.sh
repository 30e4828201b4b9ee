#!/usr/bin/env bash
# Runs the benchmarks (bench/bench.py) against a static release build; `make bench` calls it.
#   bash bench/run.sh [AGENT_BINARY] [bench.py options, e.g. --quick]
# Installs what the benchmark needs when it is missing: the `cryptography` Python package
# (bench/idle_devices.py) and Debian's OpenSSH client and server (the comparison).
set -euo pipefail
cd "$(dirname "$0")/.."
agent=${1:-build/agent-x86_64}
shift || true
start=$(date +%s)

if ! python3 -c 'import cryptography' 2>/dev/null; then
    echo "bench: installing the cryptography package (pip)" >&2
    python3 -m pip install --quiet cryptography
fi
if [ ! -x /usr/sbin/sshd ] || [ ! -x /usr/bin/ssh ]; then
    echo "bench: installing openssh-server and openssh-client (apt)" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server openssh-client >/dev/null
fi

# Bounded: the harness stops everything it started when it ends or is interrupted.
timeout --signal=TERM --kill-after=20 900 python3 bench/bench.py --agent "$agent" "$@"
echo "make bench: $(( $(date +%s) - start )) s in all (run.sh)"
