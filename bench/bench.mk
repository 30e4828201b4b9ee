# make bench: agent side by side with OpenSSH on 127.0.0.1 (docs/PERFORMANCE.md).
# Included by the top-level Makefile. Prints a table; all figures also go to
# build/bench-results.json. About 2.5 minutes on a 2-core machine.

.PHONY: bench
bench: build/agent-x86_64
	@bash bench/run.sh build/agent-x86_64

# Instruction counts per operation and process under valgrind (callgrind), about a minute.
.PHONY: bench-profile
bench-profile: build/agent-x86_64
	python3 bench/profile.py --agent build/agent-x86_64.unstripped

# The load generator (bench/loadgen.c): idle devices from one C process with OpenSSL.
# Installs Debian's libssl-dev (the OpenSSL headers) when they are missing.
build/loadgen: bench/loadgen.c
	@mkdir -p build
	@if [ ! -f /usr/include/openssl/ssl.h ]; then \
	    echo "bench: installing libssl-dev (apt)" >&2; \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q libssl-dev >/dev/null; \
	fi
	$(CC) -O2 -Wall -Wextra -o $@ bench/loadgen.c -lssl -lcrypto

# The generator's behaviour against a real relay (bench/loadgen_check.py, ~30 s): pre-enrolled
# keys admitted without enrollment, WELCOME IDs, open enrollment, kill -9 and all back, ticket
# resumption against openssl s_server.
.PHONY: bench-loadgen-check
bench-loadgen-check: build/agent-x86_64 build/loadgen
	timeout --signal=TERM --kill-after=20 300 python3 bench/loadgen_check.py --agent build/agent-x86_64 --loadgen build/loadgen

# Idle devices beside a live stream (bench/scale.py, bench/loadgen.c): first and returning
# admissions per second, the round trip at 0 and at each count of idle devices, the relay's
# idle CPU and RSS per device, the time until all are back after a kill -9 of the relay.
# SCALE_COUNTS=10000,100000 (default; a count the machine's open-file limit cannot hold runs
# at the most it can). BASELINE=path/to/old/agent runs an older relay first in the same run.
# Bounded: the harness stops everything it started; timeout kills it after 25 minutes.
SCALE_COUNTS ?= 10000,100000
.PHONY: bench-scale
bench-scale: build/agent-x86_64 build/loadgen
	timeout --signal=TERM --kill-after=20 1500 python3 bench/scale.py --agent build/agent-x86_64 \
	    --loadgen build/loadgen $(if $(BASELINE),--baseline $(BASELINE)) --counts $(SCALE_COUNTS)
