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

# Idle devices beside a live stream (bench/scale.py): the round trip at 0 and at N idle
# devices, the relay's idle CPU and RSS per device. BASELINE=path/to/old/agent runs an
# older relay first in the same run, for a before/after table. DEVICES=N (default 3000).
.PHONY: bench-scale
bench-scale: build/agent-x86_64
	python3 bench/scale.py --agent build/agent-x86_64 $(if $(BASELINE),--baseline $(BASELINE)) --devices $(or $(DEVICES),3000)
