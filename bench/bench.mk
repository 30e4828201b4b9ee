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
