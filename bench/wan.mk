# make bench-wan: agent and OpenSSH over emulated long, slow paths between the device and the
# relay (bench/wan.py, bench/linkemu.py; docs/PERFORMANCE.md, "Long paths"). Included by the
# top-level Makefile. About 12 minutes for the four default paths; WAN_PATHS=100:20 (round trip
# ms : rate Mbit/s, comma-separated) picks paths for a quick run. Tables on stdout, every sample
# in build/bench-wan-results.json.

.PHONY: bench-wan bench-linkemu
bench-wan: build/agent-x86_64
	@if [ ! -x /usr/sbin/sshd ] || [ ! -x /usr/bin/ssh ] || ! command -v ss >/dev/null; then \
	    echo "bench-wan: installing openssh-server, openssh-client and iproute2 (apt)" >&2; \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server openssh-client iproute2 >/dev/null; \
	fi
	timeout --signal=TERM --kill-after=20 1800 python3 bench/wan.py --agent build/agent-x86_64 \
	    $(if $(WAN_PATHS),--paths $(WAN_PATHS))

# The emulator alone: a 64-byte ping, bulk each way and the queue's delay on each default path.
bench-linkemu:
	python3 bench/linkemu.py --check $(if $(WAN_PATHS),--paths $(WAN_PATHS))
