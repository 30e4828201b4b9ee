# agent: build, test, demo, benchmarks.
#
#   make demo     build, then run relay + reverse + forward on 127.0.0.1 (the README's main command)
#   make test     everything CI checks (the README's test command)
#   make release  static release binaries build/agent-{x86_64,aarch64,armv7}
#   make host     host debug build (.build/debug/agent)
#   make bench    benchmarks side by side with OpenSSH (see docs/PERFORMANCE.md)
#   make bench-scale  idle devices from bench/loadgen beside a live stream, kill -9 of the relay

SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: all deps host unit test test-release test-integration sizes demo clean

all: release

deps:
	@bash cross/deps.sh

include cross/release.mk
include cross/host.mk
include cross/interop/interop.mk
include cross/p256/p256.mk
include cross/chachapoly/chachapoly.mk
include cross/sha256/sha256.mk
include bench/bench.mk
include bench/wan.mk
include Fuzz/fuzz.mk
include packaging/packaging.mk

host: deps host-mbedtls
	swift build

# Sources/modules.txt holds: listed modules only, imports declared, the release build's
# single-module form typechecks (tests/check-modules.sh).
.PHONY: check-modules
check-modules: deps host-mbedtls
	bash tests/check-modules.sh

unit: deps host-mbedtls
	swift test --disable-xctest 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\]'; exit $${PIPESTATUS[0]}

# The release binaries: selftest, keygen and id natively (x86_64) and under
# qemu-user (aarch64, armv7); the same key must give the same ID everywhere.
test-release: $(RELEASE_BINS)
	bash tests/release-check.sh $(RELEASE_ARCHES)

sizes: $(RELEASE_BINS)
	@bash tests/sizes.sh $(RELEASE_BINS)

# Real agent processes on 127.0.0.1 (bounded in time): tests/integration.
test-integration: build/agent-x86_64
	AGENT_BIN=$(CURDIR)/build/agent-x86_64 python3 -m pytest -q -p no:cacheprovider tests/integration

# The README's main command: relay, device and operator on loopback, a page fetched through the tunnel.
demo: deps build/agent-x86_64
	@bash scripts/demo.sh build/agent-x86_64

# Each step's output is also kept in build/test-logs/ and summed up at the end.
test: deps
	@rm -rf build/test-logs
	@bash tests/step.sh modules $(MAKE) --no-print-directory check-modules
	@bash tests/step.sh unit $(MAKE) --no-print-directory unit
	$(MAKE) release
	@bash tests/step.sh chachapoly $(MAKE) --no-print-directory test-chachapoly
	@bash tests/step.sh p256 $(MAKE) --no-print-directory test-p256
	@bash tests/step.sh sha256 $(MAKE) --no-print-directory test-sha256
	@bash tests/step.sh release $(MAKE) --no-print-directory test-release
	@bash tests/step.sh integration $(MAKE) --no-print-directory test-integration
	@bash tests/step.sh fuzz $(MAKE) --no-print-directory fuzz-regress
	@bash tests/step.sh packaging $(MAKE) --no-print-directory test-packaging
	$(MAKE) sizes
	@bash tests/summary.sh

clean:
	rm -rf .build .build-cross build
